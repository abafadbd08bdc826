#include "models/checkpoint.h"

#include <cmath>

#include <filesystem>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "core/config.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "models/hf/hf.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::models {

namespace fs = std::filesystem;

void check_finite_parameters(const TensorDict& params, const std::string& what) {
  for (const auto& [name, p] : params) {
    if (!is_floating(p.dtype())) continue;
    // In the tensor's own precision (a copy of a large embedding in f64 would cost gigabytes).
    const Tensor c =
        (p.dtype() == DType::f32 || p.dtype() == DType::f64 ? p.detach() : to_dtype(p.detach(), DType::f32))
            .contiguous();
    int64_t bad = 0;
    if (c.dtype() == DType::f64) {
      const double* v = c.data<double>();
      for (int64_t i = 0; i < c.numel(); ++i) bad += std::isfinite(v[i]) ? 0 : 1;
    } else {
      const float* v = c.data<float>();
      for (int64_t i = 0; i < c.numel(); ++i) bad += std::isfinite(v[i]) ? 0 : 1;
    }
    LNX_CHECK(bad == 0, ValueError, "[checkpoint] {}: parameter '{}' {} has {} non-finite values (NaN or inf)", what,
              name, shape_str(p.shape()), bad);
  }
}

void save_model(const LMModel& model, const std::string& dir, const std::map<std::string, std::string>& metadata,
                const std::function<void(const std::string& tmp_dir)>& extra_files) {
  check_finite_parameters(model.parameters(), fmt::format("refusing to save '{}'", dir));
  io::write_directory_atomic("checkpoint", dir, [&](const std::string& tmp) {
    std::map<std::string, std::string> meta = metadata;
    meta["format"] = "linearnexus";
    meta["dtype"] = dtype_name(model.dtype());
    save_safetensors(tmp + "/model.safetensors", model.parameters(), meta);
    io::write_file_atomic("checkpoint", tmp + "/config.yaml",
                          core::to_yaml_string(model_config_to_yaml(model.config())) + "\n");
    if (extra_files) extra_files(tmp);
  });
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
  check_finite_parameters(file.tensors, fmt::format("'{}'", path));
  module.for_each_parameter([&](const std::string& name, Tensor& slot) {
    Tensor owned = clone(file.tensors.at(name));  // own storage, not the file's mapping
    owned.set_requires_grad();
    slot = owned;
  });
}

namespace {

// A config whose model cannot fit in the directory's weight files is refused before the model is
// allocated: a corrupt or crafted config (d_model: 65536 next to a few KB of weights) would cost
// gigabytes before the shape mismatch showed. The bound is what every model has: embeddings
// (and an untied head), and per block a norm and a projection of at least d_model, in 16 bits.
void check_weights_can_hold(const ModelConfig& c, const std::string& dir) {
  uintmax_t bytes = 0;
  bool found = false;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".safetensors" && e.is_regular_file(ec)) {
      found = true;
      bytes += e.file_size(ec);
    }
  if (!found) return;  // no weights at all: the loader names the missing file
  const double d = static_cast<double>(c.d_model);
  const double parameters =
      d * static_cast<double>(c.vocab_size) * (c.tie_embeddings ? 1 : 2) + 2.0 * d * static_cast<double>(c.n_layer);
  LNX_CHECK(2.0 * parameters <= static_cast<double>(bytes), ValueError,
            "[checkpoint] '{}': its config describes a model of at least {:.0f} parameters ({:.0f} bytes even in 16 "
            "bits), but its .safetensors files hold {} bytes",
            dir, parameters, 2.0 * parameters, bytes);
}

}  // namespace

std::unique_ptr<LMModel> load_model(const std::string& dir) {
  const ModelConfig config = load_directory_config(dir);
  if (hf::is_hf_directory(dir)) {
    check_weights_can_hold(config, dir);
    return hf::load_model(dir);
  }
  const SafetensorsFile file = load_safetensors(dir + "/model.safetensors");  // IOError when missing
  check_weights_can_hold(config, dir);
  auto model = LMModel::for_loading(config);
  // A model saved after to(f64) loads as f64.
  const auto dtype = file.metadata.find("dtype");
  if (dtype != file.metadata.end() && dtype->second == dtype_name(DType::f64)) model->to(DType::f64);
  load_weights(*model, dir + "/model.safetensors");
  return model;
}

ModelConfig load_directory_config(const std::string& dir) {
  if (hf::is_hf_directory(dir)) return hf::load_config(dir);
  LNX_CHECK(fs::is_directory(dir), IOError, "[checkpoint] '{}' is not a checkpoint directory", dir);
  return load_model_config(dir + "/config.yaml");
}

}  // namespace lnx::models
