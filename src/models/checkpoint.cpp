#include "models/checkpoint.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "core/config.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::models {

namespace fs = std::filesystem;

namespace {

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return;  // best effort: the data is written; durability needs the sync
  (void)::fsync(fd);
  ::close(fd);
}

std::string parent_of(const std::string& path) {
  const fs::path p = fs::absolute(path).parent_path();
  return p.empty() ? "." : p.string();
}

}  // namespace

void save_model(const LMModel& model, const std::string& dir, const std::map<std::string, std::string>& metadata,
                const std::function<void(const std::string& tmp_dir)>& extra_files) {
  LNX_CHECK(!dir.empty(), ValueError, "[checkpoint] empty directory name");
  const std::string clean = fs::path(dir).lexically_normal().string();
  const std::string base = clean.back() == '/' ? clean.substr(0, clean.size() - 1) : clean;
  const std::string tmp = base + ".tmp." + std::to_string(::getpid());
  std::error_code ec;
  // Leftovers of saves killed half-way (other pids) are removed.
  const fs::path parent = fs::path(base).has_parent_path() ? fs::path(base).parent_path() : fs::path(".");
  const std::string stem = fs::path(base).filename().string() + ".tmp.";
  for (const auto& entry : fs::directory_iterator(parent, ec))
    if (entry.path().filename().string().rfind(stem, 0) == 0) fs::remove_all(entry.path(), ec);
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  LNX_CHECK(!ec, IOError, "[checkpoint] cannot create '{}': {}", tmp, ec.message());
  try {
    std::map<std::string, std::string> meta = metadata;
    meta["format"] = "linearnexus";
    meta["dtype"] = dtype_name(model.dtype());
    save_safetensors(tmp + "/model.safetensors", model.parameters(), meta);
    io::write_file_atomic("checkpoint", tmp + "/config.yaml",
                          core::to_yaml_string(model_config_to_yaml(model.config())) + "\n");
    if (extra_files) extra_files(tmp);
    fsync_path(tmp, true);
    if (fs::exists(base)) {
      LNX_CHECK(fs::is_directory(base), IOError, "[checkpoint] '{}' exists and is not a directory", base);
      // One atomic swap: base gets the new checkpoint, tmp the old one. Filesystems without
      // the exchange get two renames; a kill between them leaves the old checkpoint complete
      // under base.old.<pid> and the new one under the temporary name.
      if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, base.c_str(), RENAME_EXCHANGE) != 0) {
        if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
          throw IOError(fmt::format("[checkpoint] cannot replace '{}': {}", base, std::strerror(errno)));
        const std::string old = base + ".old." + std::to_string(::getpid());
        if (::rename(base.c_str(), old.c_str()) != 0 || ::rename(tmp.c_str(), base.c_str()) != 0)
          throw IOError(fmt::format("[checkpoint] cannot replace '{}': {}", base, std::strerror(errno)));
        fs::remove_all(old, ec);
      } else {
        fs::remove_all(tmp, ec);
      }
    } else if (::rename(tmp.c_str(), base.c_str()) != 0) {
      throw IOError(fmt::format("[checkpoint] cannot create '{}': {}", base, std::strerror(errno)));
    }
    fsync_path(parent_of(base), true);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

void load_weights(modules::Module& module, const std::string& path) {
  SafetensorsFile file = load_safetensors(path);
  std::vector<std::string> problems;
  TensorDict expected = module.parameters();
  for (const auto& [name, t] : file.tensors)
    if (!expected.contains(name))
      problems.push_back(fmt::format("unexpected tensor '{}' {}", name, shape_str(t.shape())));
  for (const auto& [name, p] : expected) {
    if (!file.tensors.contains(name)) {
      problems.push_back(fmt::format("missing '{}' {}", name, shape_str(p.shape())));
      continue;
    }
    const Tensor& t = file.tensors.at(name);
    if (t.shape() != p.shape())
      problems.push_back(
          fmt::format("'{}' is {} in the file but {} in the model", name, shape_str(t.shape()), shape_str(p.shape())));
    else if (t.dtype() != p.dtype())
      problems.push_back(fmt::format("'{}' is {} in the file but {} in the model", name, dtype_name(t.dtype()),
                                     dtype_name(p.dtype())));
  }
  if (!problems.empty()) {
    std::string msg = fmt::format("[checkpoint] '{}' does not match the model ({} problems):", path, problems.size());
    for (const auto& p : problems) msg += "\n  " + p;
    throw ValueError(msg);
  }
  module.for_each_parameter([&](const std::string& name, Tensor& slot) {
    Tensor owned = clone(file.tensors.at(name));  // own storage, not the file's mapping
    owned.set_requires_grad();
    slot = owned;
  });
}

std::unique_ptr<LMModel> load_model(const std::string& dir) {
  LNX_CHECK(fs::is_directory(dir), IOError, "[checkpoint] '{}' is not a checkpoint directory", dir);
  const ModelConfig config = load_model_config(dir + "/config.yaml");
  auto model = std::make_unique<LMModel>(config);
  // A model saved after to(f64) loads as f64.
  const SafetensorsFile file = load_safetensors(dir + "/model.safetensors");
  const auto dtype = file.metadata.find("dtype");
  if (dtype != file.metadata.end() && dtype->second == dtype_name(DType::f64)) model->to(DType::f64);
  load_weights(*model, dir + "/model.safetensors");
  return model;
}

}  // namespace lnx::models
