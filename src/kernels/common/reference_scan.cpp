#include "kernels/common/reference_scan.h"

namespace lnx::kernels {

MechanismOutputs reference_scan(const SequenceLayout& L, const Tensor& initial_state, DType dtype,
                                bool output_final_state, const ReferenceStep& step) {
  TensorList outputs, finals;
  for (int64_t n = 0; n < L.N; ++n) {
    Tensor S = initial_state.defined() ? select(initial_state, 0, n) : zeros({L.H, L.K, L.V}, dtype);
    for (int64_t row = L.offsets[n]; row < L.offsets[n + 1]; ++row) {
      auto [next, o] = step(row, S);
      S = next;
      outputs.push_back(unsqueeze(o, 0));  // [1, H, V]
    }
    finals.push_back(unsqueeze(S, 0));
  }
  MechanismOutputs out;
  out.o = outputs.empty() ? zeros({L.B, L.T, L.H, L.V}, dtype) : reshape(concat(outputs, 0), {L.B, L.T, L.H, L.V});
  if (output_final_state)
    out.final_state = finals.empty() ? zeros({0, L.H, L.K, L.V}, dtype) : concat(finals, 0);  // N = 0: B = 0
  return out;
}

}  // namespace lnx::kernels
