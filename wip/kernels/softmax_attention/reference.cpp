// The definition of softmax_attention, with tensor ops (autodiff gives the gradients): per
// sequence, scores = scale·Q Kᵀ over its cache and new keys, the causal / sliding-window mask,
// softmax, and the weighted sum of the values. Run in f64 it is what the fast forms are
// tested against.
#include <limits>

#include "kernels/softmax_attention/args.h"
#include "kernels/softmax_attention/softmax_attention.h"

namespace lnx::kernels {

using namespace attention_detail;

MechanismOutputs softmax_attention_reference(const TensorDict& in, const MechanismOptions& opt) {
  const std::string op = "softmax_attention_reference";
  Args a = parse_args(op, in, opt);
  const Layout& L = a.L;
  const DType dtype = a.q.dtype();
  // kv head of every query head, to expand the grouped keys and values to H heads.
  std::vector<int64_t> head(L.H);
  for (int64_t h = 0; h < L.H; ++h) head[h] = h / L.group();
  const Tensor head_index = from_vector<int64_t>(head, {L.H});
  const Tensor qf = reshape(a.q, {L.B * L.T, L.H, L.K});
  const Tensor ninf = full({1}, -std::numeric_limits<double>::infinity(), dtype);
  TensorList outputs;
  for (int64_t n = 0; n < L.N; ++n) {
    const int64_t len = L.qlen(n), keys = L.klen(n);
    if (len == 0) continue;
    Tensor q = permute(slice(qf, 0, L.qoff[n], L.qoff[n + 1]), {1, 0, 2});  // [H, len, K]
    Tensor k = index_select(slice(a.kall, 0, L.koff[n], L.koff[n + 1]), 1, head_index);  // [keys, H, K]
    Tensor v = index_select(slice(a.vall, 0, L.koff[n], L.koff[n + 1]), 1, head_index);  // [keys, H, V]
    Tensor scores = mul(matmul(q, permute(k, {1, 2, 0})), a.scale);  // [H, len, keys]
    std::vector<double> visible(static_cast<size_t>(len * keys), 0.0);
    for (int64_t i = 0; i < len; ++i) {
      auto [lo, hi] = L.keys_of(i);
      for (int64_t j = lo; j < hi; ++j) visible[i * keys + j] = 1.0;
    }
    Tensor mask = from_vector<double>(visible, {len, keys}).to(dtype);
    Tensor p = softmax(where(mask, scores, ninf), -1);
    outputs.push_back(permute(matmul(p, permute(v, {1, 0, 2})), {1, 0, 2}));  // [len, H, V]
  }
  MechanismOutputs out;
  out.o = outputs.empty() ? zeros({L.B, L.T, L.H, L.V}, dtype)
                          : reshape(concat(outputs, 0), {L.B, L.T, L.H, L.V});
  out.extra_state = a.extra_state;
  return out;
}

}  // namespace lnx::kernels
