// Hugging Face directories in and out (hf.h): the architecture table, config.json, and the
// weights (one file or shards), mapped by name.
#include "models/hf/hf.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "io/atomic_file.h"
#include "io/read_file.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "models/hf/hf_internal.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::models::hf {

namespace fs = std::filesystem;

namespace {

Json read_json(const std::string& path) {
  const std::string text = io::read_file("hf", path, uint64_t{64} << 20);  // a FIFO or directory: IOError
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(fmt::format("[hf] '{}' is not valid JSON: {}", path, e.what()));
  }
}

// PyTorch keeps a depthwise Conv1d's weight as [C, 1, W]; ours is [C, W].
Shape hf_shape(const std::string& ours, const Shape& shape) {
  const std::string suffix = "conv1d.weight";
  if (shape.size() == 2 && ours.size() >= suffix.size() &&
      ours.compare(ours.size() - suffix.size(), suffix.size(), suffix) == 0)
    return {shape[0], 1, shape[1]};
  return shape;
}

// Every tensor of dir's checkpoint: model.safetensors, or the shards listed by
// model.safetensors.index.json.
TensorDict read_weights(const std::string& dir) {
  const std::string single = dir + "/model.safetensors", index = dir + "/model.safetensors.index.json";
  if (fs::exists(index)) {
    const Json j = read_json(index);
    LNX_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), ValueError,
              "[hf] '{}' has no weight_map object", index);
    std::map<std::string, std::set<std::string>> by_file;  // shard → the names the index puts there
    for (const auto& [name, file] : j["weight_map"].items()) {
      LNX_CHECK(file.is_string(), ValueError, "[hf] '{}': the shard of '{}' is not a file name", index, name);
      const std::string f = file.get<std::string>();
      LNX_CHECK(!f.empty() && f.find('/') == std::string::npos && f != "." && f != "..", ValueError,
                "[hf] '{}': shard '{}' of '{}' is not a file name in the directory", index, f, name);
      by_file[f].insert(name);
    }
    TensorDict all;
    for (const auto& [file, names] : by_file) {
      const std::string path = dir + "/" + file;
      LNX_CHECK(fs::exists(path), IOError, "[hf] '{}' lists shard '{}', which is missing", index, file);
      SafetensorsFile shard = load_safetensors(path);
      for (const auto& name : names)
        LNX_CHECK(shard.tensors.contains(name), ValueError, "[hf] '{}' lists '{}' in '{}', which does not hold it",
                  index, name, file);
      for (auto& [name, t] : shard.tensors) {
        LNX_CHECK(names.count(name), ValueError, "[hf] shard '{}' holds '{}', which '{}' does not list there", path,
                  name, index);
        all.insert(name, t);
      }
    }
    return all;
  }
  LNX_CHECK(fs::exists(single), IOError, "[hf] '{}' has neither model.safetensors nor model.safetensors.index.json",
            dir);
  return load_safetensors(single).tensors;
}

// Replaces every parameter of model with its tensor from the checkpoint; every problem is
// collected and reported at once.
void assign_weights(LMModel& model, const Architecture& arch, TensorDict weights, const std::string& dir) {
  std::vector<std::string> problems;
  std::set<std::string> used;
  const DType dtype = model.dtype();
  model.for_each_parameter([&](const std::string& ours, Tensor& slot) {
    const std::string name = arch.tensor_name(model.config(), ours);
    if (!weights.contains(name)) {
      problems.push_back(fmt::format("missing '{}' {} (our {})", name, shape_str(hf_shape(ours, slot.shape())), ours));
      return;
    }
    used.insert(name);
    const Tensor& t = weights.at(name);
    if (t.shape() != hf_shape(ours, slot.shape())) {
      problems.push_back(fmt::format("'{}' is {} in the checkpoint, expected {}", name, shape_str(t.shape()),
                                     shape_str(hf_shape(ours, slot.shape()))));
      return;
    }
    if (!is_floating(t.dtype())) {
      problems.push_back(fmt::format("'{}' is {}, expected floating point", name, dtype_name(t.dtype())));
      return;
    }
    Tensor owned = clone(reshape(to_dtype(t, dtype), slot.shape()));  // own storage, not the mapping
    owned.set_requires_grad();
    slot = owned;
  });
  // A tied head may be stored too; it must then be the embedding.
  const std::string head = arch.tensor_name(model.config(), "lm_head.weight");
  if (model.config().tie_embeddings && weights.contains(head) && !used.count(head)) {
    used.insert(head);
    const Tensor& t = weights.at(head);
    if (t.shape() != model.embeddings->weight.shape() ||
        max(abs(sub(to_dtype(t, dtype), model.embeddings->weight.detach()))).item() != 0.0)
      problems.push_back(fmt::format("'{}' differs from the embedding, but tie_word_embeddings is true", head));
  }
  for (const auto& [name, t] : weights)
    if (!used.count(name)) problems.push_back(fmt::format("unexpected tensor '{}' {}", name, shape_str(t.shape())));
  if (problems.empty()) return;
  std::string msg = fmt::format("[hf] the weights of '{}' do not match its {} config ({} problems):", dir,
                                arch.model_type, problems.size());
  const size_t shown = std::min<size_t>(problems.size(), 40);
  for (size_t i = 0; i < shown; ++i) msg += "\n  " + problems[i];
  if (shown < problems.size()) msg += fmt::format("\n  … and {} more", problems.size() - shown);
  throw ValueError(msg);
}

}  // namespace

const std::vector<Architecture>& architectures() {
  static const std::vector<Architecture> table = [] {
    std::vector<Architecture> t;
    add_llama_architectures(t);
    add_mamba_architectures(t);
    add_bamba_architecture(t);
    add_qwen3_next_architecture(t);
    return t;
  }();
  return table;
}

const Architecture& architecture(const std::string& model_type, const std::string& where) {
  for (const auto& a : architectures())
    if (a.model_type == model_type) return a;
  throw ValueError(fmt::format("[hf] {}: model_type '{}' is not supported (supported: {})", where, model_type,
                               fmt::join(model_types(), ", ")));
}

std::vector<std::string> model_types() {
  std::vector<std::string> out;
  for (const auto& a : architectures()) out.push_back(a.model_type);
  return out;
}

bool is_hf_directory(const std::string& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::is_regular_file(dir + "/config.json", ec) &&
         !fs::exists(dir + "/config.yaml", ec);
}

ModelConfig load_config(const std::string& dir) {
  const std::string path = dir + "/config.json";
  LNX_CHECK(fs::is_regular_file(path), IOError, "[hf] '{}' has no config.json", dir);
  ConfigReader r(read_json(path), path);
  const std::string type = r.string("model_type");
  const Architecture& arch = architecture(type, path);
  ignore_common_keys(r);
  ModelConfig c = arch.import_config(r);
  r.finish();
  c.name = type;
  try {
    c.validate();
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("[hf] {}: the model it describes is not valid: {}", path, e.what()));
  }
  return c;
}

std::unique_ptr<LMModel> load_model(const std::string& dir) {
  const ModelConfig config = load_config(dir);
  const std::string type = config.name;
  auto model = LMModel::for_loading(config);
  const Architecture& arch = architecture(type, dir);
  TensorDict weights = read_weights(dir);
  if (arch.unfuse) weights = arch.unfuse(config, weights);
  assign_weights(*model, arch, std::move(weights), dir);
  check_finite_parameters(model->parameters(), fmt::format("'{}'", dir));
  return model;
}

std::string export_type(const ModelConfig& config, std::string* why) {
  for (const auto& a : architectures()) {
    try {
      a.export_config(config);
      return a.model_type;
    } catch (const ValueError& e) {
      if (why) *why += fmt::format("\n  {}: {}", a.model_type, e.what());
    }
  }
  return "";
}

void save_model(const LMModel& model, const std::string& dir, const std::string& model_type,
                const std::function<void(const std::string& tmp_dir)>& extra_files) {
  std::string why;
  const std::string type = model_type.empty() ? export_type(model.config(), &why) : model_type;
  LNX_CHECK(!type.empty(), ValueError, "[hf] no Hugging Face architecture expresses model '{}':{}", model.config().name,
            why);
  const Architecture& arch = architecture(type, "export");
  const Json config = arch.export_config(model.config());
  TensorDict tensors;
  for (const auto& [ours, p] : model.parameters())
    tensors.insert(arch.tensor_name(model.config(), ours),
                   reshape(to_dtype(p.detach(), DType::f32), hf_shape(ours, p.shape())));
  if (arch.fuse) tensors = arch.fuse(model.config(), tensors);
  io::write_directory_atomic("hf", dir, [&](const std::string& tmp) {
    save_safetensors(tmp + "/model.safetensors", tensors, {{"format", "pt"}});
    io::write_file_atomic("hf", tmp + "/config.json", config.dump(2) + "\n");
    if (extra_files) extra_files(tmp);
  });
}

}  // namespace lnx::models::hf
