#include "modules/linear_attn/linear_attention.h"

#include <cmath>

#include "core/varlen.h"
#include "kernels/mechanism.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::modules {

namespace {

// Running key sums z_t = z_prev + Σ_{s ≤ t} k_s within each sequence: k [B, T, H, K], z_prev
// [N, H, K] → z [B, T, H, K] and the final sums [N, H, K].
std::pair<Tensor, Tensor> key_sums(const Tensor& k, const Tensor& z_prev, const Tensor& cu_seqlens) {
  const int64_t T = k.size(1);
  if (!cu_seqlens.defined()) {
    Tensor z = add(cumsum(k, 1), unsqueeze(z_prev, 1));
    return {z, T > 0 ? select(z, 1, T - 1) : z_prev};
  }
  TensorList parts, finals;
  int64_t start = 0, n = 0;
  for (int64_t len : core::lengths_from_cu_seqlens(cu_seqlens, "linear_attention")) {
    const Tensor z0 = slice(z_prev, 0, n, n + 1);  // [1, H, K]
    if (len > 0) {
      Tensor z = add(cumsum(slice(k, 1, start, start + len), 1), unsqueeze(z0, 1));  // [1, len, H, K]
      parts.push_back(z);
      finals.push_back(select(z, 1, len - 1));
    } else {
      finals.push_back(z0);
    }
    start += len;
    ++n;
  }
  return {parts.empty() ? zeros_like(k) : concat(parts, 1), concat(finals, 0)};
}

}  // namespace

void linear_attn_head_dims(const char* who, int64_t num_heads, int64_t head_dim, double expand_k, double expand_v,
                           int64_t D, int64_t& K, int64_t& V) {
  LNX_CHECK(D > 0, ValueError, "[{}] d_model = {} must be positive", who, D);
  LNX_CHECK(num_heads > 0, ValueError, "[{}] num_heads = {} must be positive", who, num_heads);
  LNX_CHECK(head_dim >= 0, ValueError, "[{}] head_dim = {} must be >= 0", who, head_dim);
  const double key_width = head_dim > 0 ? static_cast<double>(head_dim * num_heads) : expand_k * D;
  const double base = head_dim > 0 ? static_cast<double>(head_dim * num_heads) : static_cast<double>(D);
  const double value_width = expand_v * base;
  for (auto [what, w] : {std::pair{"key width", key_width}, std::pair{"value width", value_width}}) {
    const int64_t r = std::llround(w);
    LNX_CHECK(w > 0 && std::abs(w - static_cast<double>(r)) < 1e-9 && r % num_heads == 0, ValueError,
              "[{}] num_heads = {} does not divide the {} {} (d_model = {}, head_dim = {}, expand_k = {}, "
              "expand_v = {})",
              who, num_heads, what, w, D, head_dim, expand_k, expand_v);
  }
  K = std::llround(key_width) / num_heads;
  V = std::llround(value_width) / num_heads;
}

Tensor linear_attention_feature_map(const std::string& name, const Tensor& x) {
  if (name == "identity") return x;
  if (name == "relu") return relu(x);
  if (name == "elu_plus_one" || name == "elu") return add(elu(x), 1.0);  // fla's "elu": elu(x) + 1 > 0
  if (name == "silu") return silu(x);
  throw ValueError(fmt::format(
      "[linear_attention] unknown feature_map '{}'; valid: identity, relu, elu_plus_one (or elu, fla's name), silu",
      name));
}

// Linear weights ~ N(0, init_std²) and the norm's weight 1, as fla's _init_weights does.
LinearAttention::LinearAttention(const LinearAttentionConfig& config, const ModelDims& dims, int64_t K, int64_t V,
                                 Generator& gen)
    : q_proj(add_module("q_proj",
                        std::make_unique<Linear>(dims.d_model, config.num_heads * K, false, gen, dims.init_std))),
      k_proj(add_module("k_proj",
                        std::make_unique<Linear>(dims.d_model, config.num_heads * K, false, gen, dims.init_std))),
      v_proj(add_module("v_proj",
                        std::make_unique<Linear>(dims.d_model, config.num_heads * V, false, gen, dims.init_std))),
      norm(add_module("norm", std::make_unique<RMSNorm>(V, dims.norm_eps))),
      o_proj(add_module("o_proj",
                        std::make_unique<Linear>(config.num_heads * V, dims.d_model, false, gen, dims.init_std))),
      config_(config),
      H_(config.num_heads),
      K_(K),
      V_(V) {}

MixerOutput LinearAttention::forward(const MixerInput& in) const {
  const CallShape shape = call_shape(in);
  const int64_t B = in.x.size(0), T = in.x.size(1);
  const std::string& fm = config_.feature_map;
  const Tensor q = linear_attention_feature_map(fm, reshape(q_proj.forward(in.x), {B, T, H_, K_}));  // [B, T, H, K]
  const Tensor k = linear_attention_feature_map(fm, reshape(k_proj.forward(in.x), {B, T, H_, K_}));  // [B, T, H, K]
  const Tensor v = reshape(v_proj.forward(in.x), {B, T, H_, V_});                                    // [B, T, H, V]

  // The kernel's own normalize sums the keys of this call only; the layer normalises instead,
  // with key sums carried in the state.
  MixerOutput result;
  Tensor o = run_state_kernel("linear_attn", {{"q", q}, {"k", k}, {"v", v}}, in, config_.chunk_size,
                              result.state);  // [B, T, H, V]
  if (config_.normalize) {
    Tensor z0 = in.state ? in.state->get("key_sum") : Tensor();  // [N, H, K]
    if (!z0.defined()) z0 = zeros({shape.N, H_, K_}, in.x.dtype());
    auto [z, z_final] = key_sums(k, z0, in.cu_seqlens);  // [B, T, H, K], [N, H, K]
    // o_t / (scale·q_t·z_t + 1e-10), the kernel's normalisation with carried key sums.
    const double scale = 1.0 / std::sqrt(static_cast<double>(K_));
    o = div(o, add(mul(sum(mul(q, z), {-1}, true), scale), 1e-10));
    result.state.set("key_sum", z_final);
  }
  o = reshape(norm.forward(o), {B, T, H_ * V_});  // [B, T, H·V]
  result.y = o_proj.forward(o);                   // [B, T, D]
  return result;
}

double LinearAttention::flops_per_token(int64_t /*context*/) const {
  const double D = static_cast<double>(q_proj.in_features());
  const double HK = static_cast<double>(H_ * K_), HV = static_cast<double>(H_ * V_);
  const double weights = D * HK * 2 + D * HV * 2;  // q, k, v, o projections
  // Recurrent state: update k vᵀ and read Sᵀq, 2·K·V each per head (+ 4·K for the key sums).
  const double kernel = 4.0 * HK * static_cast<double>(V_) + (config_.normalize ? 4.0 * HK : 0.0);
  return 2.0 * weights + kernel;
}

MixerSpec linear_attention_mixer() {
  MixerSpec spec;
  spec.name = "linear_attention";
  spec.description =
      "Linear attention (Katharopoulos et al. 2020; fla LinearAttention): q/k/v proj, feature map on q, k, "
      "linear_attn kernel, optional q.z normalisation, per-head RMSNorm, o_proj";
  spec.kernel = "linear_attn";
  spec.defaults = LinearAttentionConfig{};
  spec.preset_options = [](int64_t d, PresetScale scale) -> MixerConfig {
    LinearAttentionConfig c;
    c.num_heads = preset_num_heads(d, scale);
    c.head_dim = preset_head_dim(scale);
    return c;
  };
  spec.make = [](const MixerConfig& config, const ModelDims& dims, Generator& gen) -> std::unique_ptr<Mixer> {
    const auto& c = config.as<LinearAttentionConfig>();
    int64_t K = 0, V = 0;
    linear_attn_head_dims("linear_attention", c.num_heads, c.head_dim, c.expand_k, c.expand_v, dims.d_model, K, V);
    linear_attention_feature_map(c.feature_map, zeros({1}));  // rejects unknown names
    check_chunk_size("linear_attention", c.chunk_size);
    return std::make_unique<LinearAttention>(c, dims, K, V, gen);
  };
  return spec;
}

}  // namespace lnx::modules
