// Causal softmax attention with RoPE, grouped KV heads and a KV cache (see attention.h).
// Dimension letters: B batch, T time, D model width, H query heads, HK key/value heads,
// Dh head dim, N sequences, L cached tokens per sequence.
#include "modules/attention/attention.h"

#include <algorithm>

#include "core/varlen.h"
#include "kernels/mechanism.h"
#include "modules/rope.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::modules {

namespace {

// The checked sizes of a config (ValueError naming the offending key otherwise).
Attention::Sizes attention_sizes(const AttentionConfig& c, const ModelDims& dims) {
  Attention::Sizes s;
  s.D = dims.d_model;
  LNX_CHECK(s.D >= 1, ValueError, "[attention] d_model = {}: expected >= 1", s.D);
  LNX_CHECK(c.num_heads >= 1, ValueError, "[attention] num_heads = {}: expected >= 1", c.num_heads);
  s.H = c.num_heads;
  s.HK = c.num_kv_heads == 0 ? s.H : c.num_kv_heads;
  LNX_CHECK(s.HK >= 1 && s.H % s.HK == 0, ValueError, "[attention] num_kv_heads = {} does not divide num_heads = {}",
            c.num_kv_heads, s.H);
  if (c.head_dim == 0) {
    LNX_CHECK(s.D % s.H == 0, ValueError, "[attention] num_heads = {} does not divide d_model = {} (or set head_dim)",
              s.H, s.D);
    s.Dh = s.D / s.H;
  } else {
    s.Dh = c.head_dim;
  }
  LNX_CHECK(s.Dh >= 2 && s.Dh % 2 == 0, ValueError, "[attention] head_dim = {}: RoPE needs an even head dim >= 2",
            s.Dh);
  LNX_CHECK(c.rope_dim == 0 || (c.rope_dim >= 2 && c.rope_dim % 2 == 0 && c.rope_dim <= s.Dh), ValueError,
            "[attention] rope_dim = {}: expected 0 (all) or an even number of dims from 2 to head_dim = {}", c.rope_dim,
            s.Dh);
  LNX_CHECK(c.rope_theta > 0, ValueError, "[attention] rope_theta = {}: expected > 0", c.rope_theta);
  LNX_CHECK(c.window >= 0, ValueError, "[attention] window = {}: expected >= 0 (0 = unlimited)", c.window);
  check_chunk_size("attention", c.chunk_size);
  return s;
}

// Valid rows of each sequence's cache: "cache_lengths" [N] when the state has it (ragged
// caches are right-padded), else the cache's length for every sequence, else 0.
std::vector<int64_t> cache_lengths(const core::LayerState* state, int64_t N) {
  const Tensor k_cache = state ? state->get("k_cache") : Tensor();
  if (!k_cache.defined()) return std::vector<int64_t>(static_cast<size_t>(N), 0);
  LNX_CHECK(k_cache.dim() == 4 && k_cache.size(0) == N, ShapeError,
            "[attention] k_cache is {} but the call has {} sequences", shape_str(k_cache.shape()), N);
  const Tensor lengths = state->get("cache_lengths");
  if (!lengths.defined()) return std::vector<int64_t>(static_cast<size_t>(N), k_cache.size(1));
  LNX_CHECK(lengths.dim() == 1 && lengths.size(0) == N && !is_floating(lengths.dtype()), ShapeError,
            "[attention] cache_lengths must be [N={}] integers, got {} {}", N, dtype_name(lengths.dtype()),
            shape_str(lengths.shape()));
  std::vector<int64_t> out = to_dtype(lengths, DType::i64).to_vector<int64_t>();
  for (int64_t l : out)
    LNX_CHECK(l >= 0 && l <= k_cache.size(1), ValueError, "[attention] cache length {} outside the cache's {} rows", l,
              k_cache.size(1));
  return out;
}

// A sliding window of W keys needs only the last W − 1 of them for the next token: keeps each
// sequence's last `keep` valid rows (right-padded again), so decoding costs O(window).
void trim_to_window(core::LayerState& state, std::vector<int64_t>& lengths, int64_t keep) {
  const int64_t longest = lengths.empty() ? 0 : *std::max_element(lengths.begin(), lengths.end());
  if (longest <= keep) return;
  for (const char* name : {"k_cache", "v_cache"}) {
    const Tensor cache = state.get(name);  // [N, L, HK, Dh]
    TensorList rows;
    for (size_t n = 0; n < lengths.size(); ++n) {
      const int64_t len = lengths[n], kept = std::min(len, keep);
      const Tensor row =
          slice(slice(cache, 0, static_cast<int64_t>(n), static_cast<int64_t>(n) + 1), 1, len - kept, len);
      rows.push_back(pad(row, {{0, 0}, {0, std::min(longest, keep) - kept}, {0, 0}, {0, 0}}));
    }
    state.set(name, concat(rows, 0));
  }
  for (auto& len : lengths) len = std::min(len, keep);
}

}  // namespace

// Projections as fla's Attention (biases only when asked); weights N(0, init_std²) as fla's
// _init_weights, biases 0, QK-norm weights 1.
Attention::Attention(const AttentionConfig& c, const ModelDims& dims, Generator& gen)
    : sizes_(attention_sizes(c, dims)),
      q_proj(add_module("q_proj",
                        std::make_unique<Linear>(sizes_.D, sizes_.H * sizes_.Dh, c.qkv_bias, gen, dims.init_std))),
      k_proj(add_module("k_proj",
                        std::make_unique<Linear>(sizes_.D, sizes_.HK * sizes_.Dh, c.qkv_bias, gen, dims.init_std))),
      v_proj(add_module("v_proj",
                        std::make_unique<Linear>(sizes_.D, sizes_.HK * sizes_.Dh, c.qkv_bias, gen, dims.init_std))),
      o_proj(
          add_module("o_proj", std::make_unique<Linear>(sizes_.H * sizes_.Dh, sizes_.D, c.o_bias, gen, dims.init_std))),
      rope_theta_(c.rope_theta),
      rope_dim_(c.rope_dim == 0 ? sizes_.Dh : c.rope_dim),
      window_(c.window),
      chunk_size_(c.chunk_size) {
  RopeScaling scaling;
  scaling.type = c.rope_scaling;
  scaling.factor = c.rope_scaling_factor;
  scaling.low_freq_factor = c.rope_low_freq_factor;
  scaling.high_freq_factor = c.rope_high_freq_factor;
  scaling.original_context = static_cast<double>(c.rope_original_context);
  inv_freq_ = rope_inv_freq(rope_dim_, rope_theta_, scaling);
  if (c.output_gate)
    g_proj =
        &add_module("g_proj", std::make_unique<Linear>(sizes_.D, sizes_.H * sizes_.Dh, c.qkv_bias, gen, dims.init_std));
  if (c.qk_norm) {
    q_norm = &add_module("q_norm", std::make_unique<RMSNorm>(sizes_.Dh, dims.norm_eps, dims.zero_centered_norm));
    k_norm = &add_module("k_norm", std::make_unique<RMSNorm>(sizes_.Dh, dims.norm_eps, dims.zero_centered_norm));
  }
}

MixerOutput Attention::forward(const MixerInput& in) const {
  const CallShape shape = call_shape(in);
  const auto [D, H, HK, Dh] = sizes_;
  LNX_CHECK(in.x.size(2) == D, ShapeError, "[attention] x is {}: expected [B, T, {}]", shape_str(in.x.shape()), D);
  const int64_t B = in.x.size(0), T = in.x.size(1);
  Tensor q = reshape(q_proj.forward(in.x), {B, T, H, Dh});   // [B, T, H, Dh]
  Tensor k = reshape(k_proj.forward(in.x), {B, T, HK, Dh});  // [B, T, HK, Dh]
  Tensor v = reshape(v_proj.forward(in.x), {B, T, HK, Dh});  // [B, T, HK, Dh]

  const Tensor k_cache = in.state ? in.state->get("k_cache") : Tensor();  // [N, L, HK, Dh]
  const Tensor v_cache = in.state ? in.state->get("v_cache") : Tensor();
  LNX_CHECK(k_cache.defined() == v_cache.defined(), ValueError,
            "[attention] the state has only one of k_cache, v_cache");
  const std::vector<int64_t> cached = cache_lengths(in.state, shape.N);  // [N] valid cache rows
  // Positions continue from the tokens each sequence has seen (in.seen, else the state's
  // "positions"; a state without them holds every earlier token, so its cache length).
  MixerOutput result;
  std::vector<int64_t> start = sequence_positions(in, result.state);
  if (in.seen.empty() && !(in.state && in.state->has("positions"))) {
    start = cached;
    MixerInput counted = in;
    counted.seen = cached;
    sequence_positions(counted, result.state);
  }
  const Tensor pos = token_positions(B, T, in.cu_seqlens, start);  // [B, T]
  if (q_norm) {
    q = q_norm->forward(q);
    k = k_norm->forward(k);
  }
  auto rotate = [&, Dh = Dh](const Tensor& x) {  // x [B, T, heads, Dh]; Dh copied: clang 14 cannot capture a binding
    if (rope_dim_ == Dh) return apply_rope(x, pos, inv_freq_);
    return concat({apply_rope(slice(x, 3, 0, rope_dim_), pos, inv_freq_), slice(x, 3, rope_dim_, Dh)}, 3);
  };
  q = rotate(q);
  k = rotate(k);  // cached keys carry their rotation

  // The call's tokens of sequence n: a batch row, or a segment of the packed row.
  std::vector<int64_t> offsets(1, 0);
  for (int64_t n = 0; n < shape.N; ++n) offsets.push_back(offsets.back() + (in.cu_seqlens.defined() ? 0 : T));
  if (in.cu_seqlens.defined()) {
    const std::vector<int64_t> lengths = core::lengths_from_cu_seqlens(in.cu_seqlens, "attention");
    for (int64_t n = 0; n < shape.N; ++n) offsets[n + 1] = offsets[n] + lengths[n];
  }
  auto segment = [&](const Tensor& t, int64_t n) {  // [1, len_n, …]
    return in.cu_seqlens.defined() ? slice(t, 1, offsets[n], offsets[n + 1]) : slice(t, 0, n, n + 1);
  };

  kernels::MechanismOptions opt;  // scale: the kernel's default Dh^-1/2
  opt.chunk_size = chunk_size_;
  opt.output_final_state = true;
  opt.set("window", window_);
  const kernels::Form form = call_mode(in) == core::Mode::recurrent ? kernels::Form::recurrent : kernels::Form::chunk;
  auto attend = [&](const Tensor& qs, const Tensor& ks, const Tensor& vs, const Tensor& kc, const Tensor& vc,
                    const Tensor& cu) {
    TensorDict inputs{{"q", qs}, {"k", ks}, {"v", vs}};
    if (kc.defined() && kc.size(1) > 0) {
      inputs.insert("k_cache", kc);
      inputs.insert("v_cache", vc);
    }
    kernels::MechanismOptions o = opt;
    o.cu_seqlens = cu;
    return kernels::run("softmax_attention", form, inputs, o);
  };

  const bool same_cache_length = std::all_of(cached.begin(), cached.end(), [&](int64_t l) { return l == cached[0]; });
  Tensor o;  // [B, T, H, Dh]
  if (same_cache_length) {
    // One kernel call over every sequence (the cache rows beyond the common length are padding).
    const int64_t L = cached.empty() ? 0 : cached[0];
    Tensor kc = k_cache.defined() ? slice(k_cache, 1, 0, L) : Tensor();
    Tensor vc = v_cache.defined() ? slice(v_cache, 1, 0, L) : Tensor();
    kernels::MechanismOutputs out = attend(q, k, v, kc, vc, in.cu_seqlens);
    o = out.o;
    if (out.extra_state.contains("k_cache")) {  // every sequence has the same length now
      result.state.set("k_cache", out.extra_state.at("k_cache"));
      result.state.set("v_cache", out.extra_state.at("v_cache"));
    }
  } else {
    // Caches of different lengths: one kernel call per sequence.
    TensorList parts;
    for (int64_t n = 0; n < shape.N; ++n) {
      if (offsets[n + 1] == offsets[n]) continue;
      Tensor kc = slice(slice(k_cache, 0, n, n + 1), 1, 0, cached[n]);
      Tensor vc = slice(slice(v_cache, 0, n, n + 1), 1, 0, cached[n]);
      parts.push_back(attend(segment(q, n), segment(k, n), segment(v, n), kc, vc, Tensor()).o);
    }
    o = parts.empty() ? zeros({B, T, H, Dh}, q.dtype()) : concat(parts, in.cu_seqlens.defined() ? 1 : 0);
  }
  std::vector<int64_t> now(cached);
  for (int64_t n = 0; n < shape.N; ++n) now[n] += offsets[n + 1] - offsets[n];
  if (!result.state.has("k_cache")) {
    // Ragged caches: each sequence's old rows and new keys, right-padded to the longest.
    const int64_t longest = shape.N == 0 ? 0 : *std::max_element(now.begin(), now.end());
    auto build = [&](const Tensor& old, const Tensor& fresh) {
      TensorList rows;
      for (int64_t n = 0; n < shape.N; ++n) {
        Tensor row = segment(fresh, n);  // [1, len_n, HK, Dh]
        if (old.defined() && cached[n] > 0) row = concat({slice(slice(old, 0, n, n + 1), 1, 0, cached[n]), row}, 1);
        rows.push_back(pad(row, {{0, 0}, {0, longest - now[n]}, {0, 0}, {0, 0}}));
      }
      return concat(rows, 0);  // [N, longest, HK, Dh]
    };
    result.state.set("k_cache", build(k_cache, k));
    result.state.set("v_cache", build(v_cache, v));
  }
  if (window_ > 0) trim_to_window(result.state, now, window_ - 1);
  result.state.set("cache_lengths", from_vector(now, {shape.N}));
  Tensor merged = reshape(o, {B, T, H * Dh});
  if (g_proj) merged = mul(merged, sigmoid(g_proj->forward(in.x)));  // gated attention
  result.y = o_proj.forward(merged);                                 // [B, T, D]
  return result;
}

core::LayerState Attention::select_sequence(const core::LayerState& state, int64_t n) const {
  core::LayerState one = Mixer::select_sequence(state, n);
  if (!one.has("k_cache")) return one;
  const int64_t len = cache_lengths(&state, state.get("k_cache").size(0))[static_cast<size_t>(n)];
  one.set("k_cache", slice(one.get("k_cache"), 1, 0, len));
  one.set("v_cache", slice(one.get("v_cache"), 1, 0, len));
  return one;
}

double Attention::flops_per_token(int64_t context) const {
  const auto [D, H, HK, Dh] = sizes_;
  const double weights = static_cast<double>(D) * (H * Dh) * (g_proj ? 3 : 2) + static_cast<double>(D) * (HK * Dh) * 2;
  // Mean over positions i = 1 … C of the keys query i sees, min(i, W).
  const double C = static_cast<double>(std::max<int64_t>(context, 1));
  double keys = (C + 1) / 2;
  if (window_ > 0 && C > static_cast<double>(window_)) {
    const double W = static_cast<double>(window_);
    keys = (W * (W + 1) / 2 + (C - W) * W) / C;
  }
  return 2 * weights + 4.0 * Dh * H * keys;
}

MixerSpec attention_mixer() {
  MixerSpec s;
  s.name = "attention";
  s.description =
      "Llama-style causal softmax attention (fla attn layer): q/k/v projections, grouped KV heads, "
      "RoPE, optional sliding window, o_proj; KV cache state";
  s.kernel = "softmax_attention";
  s.defaults = AttentionConfig{};
  s.block_mlp = true;
  // Presets: heads of 32 (tiny) or 64 (small) dims, half as many KV heads when even.
  s.preset_options = [](int64_t d, PresetScale scale) -> MixerConfig {
    AttentionConfig c;
    c.num_heads = preset_num_heads(d, scale);
    if (c.num_heads % 2 == 0) c.num_kv_heads = c.num_heads / 2;
    c.head_dim = preset_head_dim(scale);
    return c;
  };
  s.make = [](const MixerConfig& c, const ModelDims& dims, Generator& gen) -> std::unique_ptr<Mixer> {
    return std::make_unique<Attention>(c.as<AttentionConfig>(), dims, gen);
  };
  return s;
}

}  // namespace lnx::modules
