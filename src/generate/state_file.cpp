// Session state files (see session.h for the layout): save, load with validation, and the
// model fingerprint that ties a state to the model that produced it.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/config.h"
#include "generate/session.h"
#include "io/safetensors.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::generate {

namespace {

constexpr const char* kFormat = "linearnexus-generation-state";
constexpr const char* kVersion = "2";  // 2: generator states stored, fingerprint covers the weights

std::string config_yaml(const models::LMModel& model) {
  return core::to_yaml_string(models::model_config_to_yaml(model.config()));
}

std::string mixers_of(const models::LMModel& model) {
  std::string s;
  for (size_t i = 0; i < model.num_blocks(); ++i) s += (i ? "," : "") + model.block(i).mixer_name();
  return s;
}

DType model_dtype(const models::LMModel& model) { return model.parameters().items().front().second.dtype(); }

// The first line where two texts differ, as "line L: 'a' vs 'b'" (for mismatch messages).
std::string first_difference(const std::string& a, const std::string& b) {
  std::istringstream sa(a), sb(b);
  std::string la, lb;
  for (int line = 1;; ++line) {
    const bool ha = static_cast<bool>(std::getline(sa, la)), hb = static_cast<bool>(std::getline(sb, lb));
    if (!ha && !hb) return "no line differs";
    if (!ha) la = "<end>";
    if (!hb) lb = "<end>";
    if (la != lb) return "line " + std::to_string(line) + ": file '" + la + "', model '" + lb + "'";
  }
}

const std::string& meta(const SafetensorsFile& f, const std::string& path, const std::string& key) {
  const auto it = f.metadata.find(key);
  LNX_CHECK(it != f.metadata.end(), IOError, "[generate] {}: the state file has no '{}' metadata", path, key);
  return it->second;
}

const Tensor& tensor(const SafetensorsFile& f, const std::string& path, const std::string& name, const Shape& shape) {
  LNX_CHECK(f.tensors.contains(name), IOError, "[generate] {}: the state file has no tensor '{}'", path, name);
  const Tensor& t = f.tensors.at(name);
  LNX_CHECK(t.shape() == shape, IOError, "[generate] {}: tensor '{}' is {}, expected {}", path, name,
            shape_str(t.shape()), shape_str(shape));
  return t;
}

std::vector<int64_t> ints(const SafetensorsFile& f, const std::string& path, const std::string& name, int64_t n) {
  const Tensor& t = tensor(f, path, name, {n});
  LNX_CHECK(!is_floating(t.dtype()), IOError, "[generate] {}: tensor '{}' must be integer, is {}", path, name,
            dtype_name(t.dtype()));
  return to_dtype(t, DType::i64).to_vector<int64_t>();
}

// FNV-1a 64 of bytes, continuing from h.
uint64_t fnv1a(const void* data, size_t n, uint64_t h = 1469598103934665603ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

std::string hex64(uint64_t h) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016" PRIx64, h);
  return hex;
}

}  // namespace

// A checksum of every tensor's name, dtype, shape and bytes: the safetensors reader catches a
// malformed file, this catches flipped bits in the data (which would silently change tokens).
std::string state_file_checksum(const TensorDict& tensors) {
  uint64_t h = fnv1a("", 0);
  for (const auto& [name, t] : tensors) {
    const std::string head = name + ":" + dtype_name(t.dtype()) + shape_str(t.shape()) + ";";
    h = fnv1a(head.data(), head.size(), h);
    const Tensor c = contiguous(t);
    h = fnv1a(c.raw_data(), c.nbytes(), h);
  }
  return hex64(h);
}

std::string model_fingerprint(const models::LMModel& model) {
  // FNV-1a 64 over the config YAML, then "name:shape;" and the weights' bytes of every parameter
  // (a word at a time: a model of a few hundred MB hashes in a fraction of a second), so a state
  // is only continued by the very model that made it.
  const std::string yaml = config_yaml(model);
  uint64_t h = fnv1a(yaml.data(), yaml.size());
  for (const auto& [name, p] : model.parameters()) {
    const std::string entry = name + ":" + shape_str(p.shape()) + ";";
    h = fnv1a(entry.data(), entry.size(), h);
    const Tensor c = contiguous(p.detach());
    const auto* bytes = static_cast<const unsigned char*>(c.raw_data());
    const size_t n = c.nbytes(), words = n / 8;
    for (size_t i = 0; i < words; ++i) {
      uint64_t w;
      std::memcpy(&w, bytes + 8 * i, 8);
      h = (h ^ w) * 1099511628211ull;
    }
    h = fnv1a(bytes + 8 * words, n - 8 * words, h);
  }
  // Packed generation weights compute other logits: a state continues only under the format that
  // made it (f32 adds nothing, so older files keep their fingerprint).
  if (model.weight_format() != WeightFormat::f32) {
    const std::string format = std::string("weights:") + weight_format_name(model.weight_format()) + ";";
    h = fnv1a(format.data(), format.size(), h);
  }
  return hex64(h);
}

std::string tokenizer_fingerprint(const std::string& tokenizer_json_path) {
  std::ifstream in(tokenizer_json_path, std::ios::binary);
  LNX_CHECK(in.good(), IOError, "[generate] cannot read tokenizer '{}'", tokenizer_json_path);
  uint64_t h = fnv1a("", 0);
  std::vector<char> buffer(1 << 16);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    h = fnv1a(buffer.data(), static_cast<size_t>(in.gcount()), h);
  }
  LNX_CHECK(in.eof(), IOError, "[generate] cannot read tokenizer '{}'", tokenizer_json_path);
  return hex64(h);
}

void Session::save(const std::string& path, const std::string& tokenizer) const {
  LNX_CHECK(!state_.empty(), ValueError, "[generate] nothing to save: the session has not been prefilled");
  const int64_t N = num_sequences();
  TensorDict tensors;
  for (size_t i = 0; i < state_.layers.size(); ++i)
    for (const auto& [name, t] : state_.layers[i].tensors)
      tensors.insert("layers." + std::to_string(i) + "." + name, t);
  tensors.insert("seen", from_vector(state_.seen, {N}));
  TensorList rows;
  for (const Tensor& l : logits_) rows.push_back(unsqueeze(l, 0));
  tensors.insert("logits", concat(rows, 0));  // [N, V]
  std::vector<int64_t> all, counts, seeds, draws, seeded, gen_states;
  for (int64_t n = 0; n < N; ++n) {
    const auto& t = tokens_[static_cast<size_t>(n)];
    all.insert(all.end(), t.begin(), t.end());
    counts.push_back(static_cast<int64_t>(t.size()));
    const Sampler& s = samplers_[static_cast<size_t>(n)];
    seeds.push_back(static_cast<int64_t>(s.seed));  // bit pattern kept (two's complement)
    draws.push_back(static_cast<int64_t>(s.draws));
    seeded.push_back(s.seeded ? 1 : 0);
    // The generator's words, bit patterns kept: loading sets them (no replay of the draws).
    const Generator::State g = s.gen.state();
    for (uint64_t w : g.s) gen_states.push_back(static_cast<int64_t>(w));
    gen_states.push_back(g.has_spare ? 1 : 0);
    int64_t spare_bits = 0;
    std::memcpy(&spare_bits, &g.spare, sizeof spare_bits);
    gen_states.push_back(spare_bits);
  }
  tensors.insert("tokens", from_vector(all, {static_cast<int64_t>(all.size())}));
  tensors.insert("token_counts", from_vector(counts, {N}));
  tensors.insert("generator_seeds", from_vector(seeds, {N}));
  tensors.insert("generator_draws", from_vector(draws, {N}));
  tensors.insert("generator_seeded", from_vector(seeded, {N}));
  tensors.insert("generator_state", from_vector(gen_states, {N * 6}));
  const std::map<std::string, std::string> metadata = {
      {"format", kFormat},
      {"version", kVersion},
      {"fingerprint", model_fingerprint(*model_)},
      {"tokenizer", tokenizer},
      {"n_layer", std::to_string(model_->num_blocks())},
      {"mixers", mixers_of(*model_)},
      {"vocab_size", std::to_string(model_->config().vocab_size)},
      {"dtype", dtype_name(model_dtype(*model_))},
      {"num_sequences", std::to_string(N)},
      {"config", config_yaml(*model_)},
      {"checksum", state_file_checksum(tensors)},
  };
  save_safetensors(path, tensors, metadata);  // atomic (temporary file, fsync, rename)
}

Session Session::load(const models::LMModel& model, const std::string& path, const std::string& tokenizer) {
  const SafetensorsFile f = load_safetensors(path);  // IOError for truncated / malformed files
  LNX_CHECK(meta(f, path, "format") == kFormat, IOError, "[generate] {}: not a generation state file (format '{}')",
            path, meta(f, path, "format"));
  LNX_CHECK(meta(f, path, "version") == kVersion, IOError,
            "[generate] {}: state file version {} is not supported (expected {})", path, meta(f, path, "version"),
            kVersion);
  LNX_CHECK(meta(f, path, "checksum") == state_file_checksum(f.tensors), IOError,
            "[generate] {}: the state file is corrupted (its checksum {} does not match its data's {})", path,
            meta(f, path, "checksum"), state_file_checksum(f.tensors));
  // The model must be the one that wrote the state: name the first thing that differs.
  const std::string n_layer = std::to_string(model.num_blocks());
  LNX_CHECK(meta(f, path, "n_layer") == n_layer, ValueError,
            "[generate] {}: the state was saved from a model with {} layers ({}), this model has {} ({})", path,
            meta(f, path, "n_layer"), meta(f, path, "mixers"), n_layer, mixers_of(model));
  LNX_CHECK(meta(f, path, "mixers") == mixers_of(model), ValueError,
            "[generate] {}: the state was saved from a model with mixers {}, this model has {}", path,
            meta(f, path, "mixers"), mixers_of(model));
  LNX_CHECK(meta(f, path, "config") == config_yaml(model), ValueError,
            "[generate] {}: the state was saved from a model with another config ({})", path,
            first_difference(meta(f, path, "config"), config_yaml(model)));
  LNX_CHECK(meta(f, path, "fingerprint") == model_fingerprint(model), ValueError,
            "[generate] {}: model fingerprint {} in the file, {} for this model (the state was made by another model: "
            "its weights, parameter names or shapes differ, or its --weights format)",
            path, meta(f, path, "fingerprint"), model_fingerprint(model));
  // Token ids mean nothing under another tokenizer (files from before the tokenizer was recorded
  // have no entry; an empty one means the writer did not know it).
  const auto saved_tokenizer = f.metadata.find("tokenizer");
  LNX_CHECK(tokenizer.empty() || saved_tokenizer == f.metadata.end() || saved_tokenizer->second.empty() ||
                saved_tokenizer->second == tokenizer,
            ValueError,
            "[generate] {}: the state was made with another tokenizer (fingerprint {} in the file, {} for this "
            "model's tokenizer.json)",
            path, saved_tokenizer->second, tokenizer);
  const std::string dtype = dtype_name(model_dtype(model));
  LNX_CHECK(meta(f, path, "dtype") == dtype, ValueError,
            "[generate] {}: the state holds {} tensors but the model runs in {} (convert the model with to())", path,
            meta(f, path, "dtype"), dtype);

  const std::string& count_text = meta(f, path, "num_sequences");
  int64_t N = 0;
  try {
    N = std::stoll(count_text);
  } catch (const std::exception&) {
    N = 0;
  }
  LNX_CHECK(N >= 1 && N <= (int64_t{1} << 32), IOError, "[generate] {}: bad num_sequences '{}'", path, count_text);
  const std::vector<int64_t> seen = ints(f, path, "seen", N);  // N is no larger than the file holds
  Session s(model, N);
  s.state_.layers.resize(model.num_blocks());
  s.state_.seen = seen;
  for (const auto& [name, t] : f.tensors) {
    if (name.rfind("layers.", 0) != 0) continue;
    const size_t dot = name.find('.', 7);
    // "layers.<i>.<name>": i decimal, below the model's layer count.
    bool ok = dot != std::string::npos && dot > 7 && dot - 7 <= 6 && dot + 1 < name.size();
    size_t layer = 0;
    for (size_t c = 7; ok && c < dot; ++c) {
      ok = name[c] >= '0' && name[c] <= '9';
      layer = layer * 10 + static_cast<size_t>(name[c] - '0');
    }
    LNX_CHECK(ok && layer < model.num_blocks(), IOError, "[generate] {}: state tensor '{}' names no layer of the model",
              path, name);
    LNX_CHECK(t.dim() >= 1 && t.size(0) == N, IOError, "[generate] {}: state tensor '{}' is {}, expected {} sequences",
              path, name, shape_str(t.shape()), N);
    s.state_.layers[layer].set(name.substr(dot + 1), t.clone());  // own storage, not the file mapping
  }
  const int64_t V = model.config().vocab_size;
  const Tensor& logits = tensor(f, path, "logits", {N, V});
  LNX_CHECK(logits.dtype() == model_dtype(model), IOError, "[generate] {}: logits are {}, expected {}", path,
            dtype_name(logits.dtype()), dtype);
  const std::vector<int64_t> counts = ints(f, path, "token_counts", N);
  // Every count is bounded by the tokens the file holds, so the sum cannot overflow.
  const int64_t stored = f.tensors.contains("tokens") ? f.tensors.at("tokens").numel() : 0;
  int64_t total = 0;
  for (int64_t c : counts) {
    LNX_CHECK(c >= 1 && c <= stored - total, IOError,
              "[generate] {}: bad token count {} (the file holds {} tokens, {} of them already counted)", path, c,
              stored, total);
    total += c;
  }
  const std::vector<int64_t> all = ints(f, path, "tokens", total);
  const std::vector<int64_t> seeds = ints(f, path, "generator_seeds", N), draws = ints(f, path, "generator_draws", N),
                             seeded = ints(f, path, "generator_seeded", N),
                             gen_states = ints(f, path, "generator_state", N * 6);
  for (int64_t n = 0; n < N; ++n)
    LNX_CHECK(seen[n] == counts[n], IOError, "[generate] {}: sequence {} has seen {} tokens but the file lists {}",
              path, n, seen[n], counts[n]);
  for (size_t i = 0; i < s.state_.layers.size(); ++i)
    LNX_CHECK(!s.state_.layers[i].empty(), IOError, "[generate] {}: the state file has no tensors for layer {}", path,
              i);
  int64_t at = 0;
  for (int64_t n = 0; n < N; ++n) {
    s.logits_[static_cast<size_t>(n)] = clone(select(logits, 0, n));
    auto& toks = s.tokens_[static_cast<size_t>(n)];
    for (int64_t i = 0; i < counts[n]; ++i, ++at) {
      LNX_CHECK(all[at] >= 0 && all[at] < V, IOError, "[generate] {}: token {} is outside the vocabulary [0, {})", path,
                all[at], V);
      toks.push_back(static_cast<int32_t>(all[at]));
    }
    const int64_t* w = gen_states.data() + 6 * n;
    LNX_CHECK(draws[n] >= 0 && (seeded[n] == 0 || seeded[n] == 1) && (w[4] == 0 || w[4] == 1) &&
                  (w[0] | w[1] | w[2] | w[3]) != 0,
              IOError, "[generate] {}: bad generator state of sequence {}", path, n);
    Sampler& g = s.samplers_[static_cast<size_t>(n)];
    g.seeded = seeded[n] == 1;
    g.seed = static_cast<uint64_t>(seeds[n]);
    // Set, not replayed: loading is linear in the file's size whatever the draws count says.
    Generator::State st{};
    for (int i = 0; i < 4; ++i) st.s[i] = static_cast<uint64_t>(w[i]);
    st.has_spare = w[4] == 1;
    std::memcpy(&st.spare, &w[5], sizeof st.spare);
    g.gen.set_state(st);
    g.draws = static_cast<uint64_t>(draws[n]);
  }
  return s;
}

}  // namespace lnx::generate
