// Internal to gla's fast forms: the checked inputs, the autodiff wiring the recurrent and
// chunk forms share, and small vector helpers.
#pragma once

#include <functional>
#include <limits>
#include <string>
#include <utility>

#include "kernels/common/layout.h"
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace lnx::kernels::gla_detail {

// Inputs after validation, detached and contiguous (the fast forms work on raw pointers).
struct Args {
  SequenceLayout L;
  Tensor q, k, v, g, h0;  // h0 may be undefined
  double scale = 1.0;
  bool output_final_state = true;
};

// Validates q, k [B,T,H,K], v [B,T,H,V], g [B,T,H,K] and initial_state [N,H,K,V] (optional).
Args parse_args(const std::string& op, const TensorDict& inputs, const MechanismOptions& options);

struct Grads {
  Tensor dq, dk, dv, dg, dh0;  // dh0 undefined without an initial state
};

// The backward of a fast form: given do and dfinal (undefined = zero).
using Backward = std::function<Grads(const Tensor& d_o, const Tensor& d_final)>;

// Wraps the forward's outputs (o, final state) as the form's result and, when an input needs a
// gradient, records a node named op (inputs q, k, v, g, initial_state) whose vjp calls backward.
MechanismOutputs run_and_record(const std::string& op, const TensorDict& inputs, const Args& args,
                                Tensor o, Tensor final_state, Backward backward);

// True when grad mode is on and one of the inputs (q, k, v, g, initial_state) needs a gradient.
bool wants_grad(const TensorDict& inputs);

// Sets flush-to-zero / denormals-are-zero for this thread while in scope: strongly negative
// gates make products far below the normal range, and denormal arithmetic is slow. Values
// below ~1e-38 do not matter next to the O(1) terms they are summed with.
class FlushDenormals {
 public:
#if defined(__x86_64__) || defined(__i386__)
  FlushDenormals() : old_(_mm_getcsr()) { _mm_setcsr(old_ | 0x8040u); }
  ~FlushDenormals() { _mm_setcsr(old_); }
 private:
  unsigned old_;
#endif
 public:
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;
};

// Σ a⊙b with 16 independent partial sums (so it vectorises without reassociation flags).
template <typename T> inline T dot(const T* a, const T* b, int64_t n) {
  T lanes[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) lanes[l] += a[i + l] * b[i + l];
  T s = 0;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int l = 0; l < 16; ++l) s += lanes[l];
  return s;
}

// y += alpha · x
template <typename T> inline void axpy(T alpha, const T* x, T* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

// Values below the normal range become 0 (keeps running products of gates out of denormals).
template <typename T> inline T flush(T x) { return x < std::numeric_limits<T>::min() ? T(0) : x; }

}  // namespace lnx::kernels::gla_detail
