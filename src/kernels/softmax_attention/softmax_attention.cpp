// softmax_attention: causal softmax attention, the quadratic baseline the linear mechanisms are
// measured against.
//   o_i = Σ_j softmax_j(scale · q_i·k_j) v_j   over the keys j the query i sees:
//   j ≤ i (causal) and, with the option window = W > 0, j > i − W (sliding window).
// Grouped KV heads: k [B,T,HK,K], v [B,T,HK,V] with H divisible by HK; query head h uses kv
// head h / (H/HK). A KV cache (k_cache [N,Tc,HK,K], v_cache [N,Tc,HK,V]) holds the keys and
// values of Tc earlier tokens of every sequence: new query i is at position Tc + i and sees
// the cache as well (the window counts cache positions too). Attention has no [N,H,K,V]
// state: its "state" is the cache, returned as MechanismOutputs::extra_state {"k_cache",
// "v_cache"} = [cache; new keys] (when every sequence has the same length; with cu_seqlens and
// unequal lengths it is left out).
//   reference — per sequence: scores, mask, softmax, matmul, with tensor ops (autodiff).
//   chunk     — tiled (flash-attention style) online softmax, memory linear in T (chunk.cpp).
//   recurrent — decoding against the cache, one query row at a time (recurrent.cpp).
// The fast forms build the key buffer (each sequence's cache, then its new keys) with tensor
// ops and run a primitive over q and that buffer; autodiff carries the buffer's gradient to
// k, v and the caches, and the extra state (views of the buffer) keeps its gradients flowing.
#include <limits>

#include "kernels/builtin.h"
#include "kernels/common/registration.h"
#include "kernels/softmax_attention/softmax_attention_internal.h"

namespace lnx::kernels {

namespace softmax_attention_detail {

std::vector<InputSpec> kernel_specs() {
  return {InputSpec::required_input("q", {"B", "T", "H", "K"}, "queries"),
          InputSpec::required_input("keys", {"R", "HK", "K"}, "key buffer: per sequence its cache, then its new keys"),
          InputSpec::required_input("values", {"R", "HK", "V"}, "value buffer, as the keys")};
}

}  // namespace softmax_attention_detail

namespace {

using namespace softmax_attention_detail;

struct SoftmaxAttentionOptions {
  int64_t window = 0;
  template <class V> void visit(V&& v) {
    v("window", window, "sliding window: query i sees keys j with i - window < j <= i (0 = unlimited)",
      core::Bounds{0, 1e12});
  }
};

// The rules the input specs cannot express.
void check_heads_and_caches(const Call& c) {
  LNX_CHECK(c.has("k_cache") == c.has("v_cache"), ValueError, "[{}] {} given without {}: the caches come together",
            c.op, c.has("k_cache") ? "k_cache" : "v_cache", c.has("k_cache") ? "v_cache" : "k_cache");
  const int64_t H = c.layout.H, HK = c.sizes.at("HK");
  LNX_CHECK(HK >= 1 && H % HK == 0, ShapeError, "[{}] q has H = {} heads and k has HK = {}: HK must divide H", c.op, H,
            HK);
}

// The key buffer [R, HK, ·] of a call: per sequence its cache, then its new keys; and the
// extra state (the buffer as [N, Tc + T, HK, ·]) when asked for and every sequence has the
// same length.
struct Buffer {
  Tensor keys;    // [R, HK, K], R = N·Tc + B·T
  Tensor values;  // [R, HK, V]
  KeyBuffer options;
  TensorDict extra_state;  // k_cache [N, Tc + T, HK, K], v_cache [N, Tc + T, HK, V]; or empty
};

Buffer key_buffer(const Call& c) {
  check_heads_and_caches(c);
  const SequenceLayout& S = c.layout;
  const int64_t HK = c.sizes.at("HK");
  Buffer buf;
  buf.options.window = c.options_as<SoftmaxAttentionOptions>().window;
  buf.options.cache_length = c.has("k_cache") ? c.sizes.at("Tc") : 0;
  const Tensor kf = reshape(c["k"], {S.B * S.T, HK, S.K}), vf = reshape(c["v"], {S.B * S.T, HK, S.V});
  if (!c.has("k_cache")) {
    buf.keys = kf, buf.values = vf;
  } else {
    TensorList ks, vs;
    for (int64_t n = 0; n < S.N; ++n) {
      ks.push_back(select(c["k_cache"], 0, n));
      vs.push_back(select(c["v_cache"], 0, n));
      if (S.length(n) > 0) {
        ks.push_back(slice(kf, 0, S.offsets[n], S.offsets[n + 1]));
        vs.push_back(slice(vf, 0, S.offsets[n], S.offsets[n + 1]));
      }
    }
    buf.keys = concat(ks, 0), buf.values = concat(vs, 0);
  }
  bool equal = c.options.output_final_state && S.N > 0;
  for (int64_t n = 1; n < S.N; ++n) equal = equal && S.length(n) == S.length(0);
  if (equal) {
    const int64_t len = buf.options.cache_length + S.length(0);
    buf.extra_state.insert("k_cache", reshape(buf.keys, {S.N, len, HK, S.K}));
    buf.extra_state.insert("v_cache", reshape(buf.values, {S.N, len, HK, S.V}));
  }
  return buf;
}

// The definition, with tensor ops: per sequence, scores = scale·Q Kᵀ over its cache and new
// keys, the causal / sliding-window mask, softmax, and the weighted sum of the values. Run in
// f64 it is what the fast forms are tested against.
MechanismOutputs reference(const Call& c) {
  const Buffer buf = key_buffer(c);
  const Layout L(c.layout, c.sizes.at("HK"), buf.options);
  // kv head of every query head, to expand the grouped keys and values to H heads.
  std::vector<int64_t> head(L.H);
  for (int64_t h = 0; h < L.H; ++h) head[h] = h / L.group();
  const Tensor head_index = from_vector<int64_t>(head, {L.H});
  const Tensor qf = token_rows(c["q"]);
  const Tensor ninf = full({1}, -std::numeric_limits<double>::infinity(), c.dtype);
  TensorList outputs;
  for (int64_t n = 0; n < L.N; ++n) {
    const int64_t len = L.qlen(n), keys = L.klen(n);
    if (len == 0) continue;
    Tensor q = permute(slice(qf, 0, L.qoff[n], L.qoff[n + 1]), {1, 0, 2});                   // [H, len, K]
    Tensor k = index_select(slice(buf.keys, 0, L.koff[n], L.koff[n + 1]), 1, head_index);    // [keys, H, K]
    Tensor v = index_select(slice(buf.values, 0, L.koff[n], L.koff[n + 1]), 1, head_index);  // [keys, H, V]
    Tensor scores = mul(matmul(q, permute(k, {1, 2, 0})), c.scale);                          // [H, len, keys]
    std::vector<double> visible(static_cast<size_t>(len * keys), 0.0);
    for (int64_t i = 0; i < len; ++i) {
      auto [lo, hi] = L.keys_of(i);
      for (int64_t j = lo; j < hi; ++j) visible[i * keys + j] = 1.0;
    }
    Tensor mask = from_vector<double>(visible, {len, keys}).to(c.dtype);
    Tensor p = softmax(where(mask, scores, ninf), -1);
    outputs.push_back(permute(matmul(p, permute(v, {1, 0, 2})), {1, 0, 2}));  // [len, H, V]
  }
  MechanismOutputs out;
  out.o = outputs.empty() ? zeros({L.B, L.T, L.H, L.V}, c.dtype) : reshape(concat(outputs, 0), {L.B, L.T, L.H, L.V});
  out.extra_state = buf.extra_state;
  return out;
}

// ops (the key buffer) → the primitive.
MechanismOutputs fast(const Call& c) {
  const Buffer buf = key_buffer(c);
  const TensorDict in{{"q", c["q"]}, {"keys", buf.keys}, {"values", buf.values}};
  const Primitive& p = c.form == Form::chunk ? chunk_primitive() : recurrent_primitive();
  MechanismOutputs out = run_primitive(p, c.form, in, c.forward_options(), buf.options);
  out.extra_state = buf.extra_state;
  return out;
}

}  // namespace

Mechanism softmax_attention_mechanism() {
  Mechanism m;
  m.name = "softmax_attention";
  m.description =
      "causal softmax attention softmax(scale q k^T) v, tiled with an online softmax; optional sliding "
      "window and grouped KV heads; the recurrent form decodes against a KV cache";
  m.equation = "o_i = sum_j softmax_j(scale q_i . k_j) v_j over i - window < j <= i";
  m.inputs = {
      InputSpec::required_input("q", {"B", "T", "H", "K"}, "queries"),
      InputSpec::required_input("k", {"B", "T", "HK", "K"}, "keys (HK kv heads, HK divides H)"),
      InputSpec::required_input("v", {"B", "T", "HK", "V"}, "values"),
      InputSpec::optional_input("k_cache", {"N", "Tc", "HK", "K"}, "keys of Tc earlier tokens (with v_cache)"),
      InputSpec::optional_input("v_cache", {"N", "Tc", "HK", "V"}, "values of Tc earlier tokens (with k_cache)")};
  m.options = options_schema<SoftmaxAttentionOptions>();
  m.has_recurrent_state = false;
  m.forms = {{Form::reference, reference}, {Form::recurrent, fast}, {Form::chunk, fast}};
  // Grouped KV heads whenever the head count allows: HK = H/2 for even H, else H.
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) {
    const int64_t HK = s.H % 2 == 0 ? s.H / 2 : s.H;
    TensorDict d;
    d.insert("q", randn({s.B, s.T, s.H, s.K}, gen, dtype));
    d.insert("k", randn({s.B, s.T, HK, s.K}, gen, dtype));
    d.insert("v", randn({s.B, s.T, HK, s.V}, gen, dtype));
    return d;
  };
  // Useful FLOPs of the forward (every form): each of the T(T+1)/2 causal (query, key) pairs
  // per sequence and head costs 2K for the score and 2V for its share of P·V; the masked half
  // of the diagonal tiles, the softmax exponentials and the rescaling are not counted.
  m.flops = [](const ProblemSize& s, Form, int64_t) {
    const double pairs = static_cast<double>(s.T) * (static_cast<double>(s.T) + 1) / 2;
    return static_cast<double>(s.B) * s.H * pairs * 2.0 * (s.K + s.V);
  };
  return m;
}

}  // namespace lnx::kernels
