// The delta-rule family (delta_rule, gated_delta_rule, kda): one validation path and one
// recurrent kernel for all, the gate being absent, a scalar per token and head, or a vector
// over the key dimension (kda):
//   S' = Diag(exp(g_t)) S_{t−1},  u_t = β_t (v_t − S'ᵀ k_t),  S_t = S' + k_t u_tᵀ,
//   o_t = S_tᵀ (scale·q_t)
// The fast forms run a kernel (recurrent: common/delta_recurrent.cpp; chunk, the WY / UT
// transform: common/wy_transform.cpp, and kda/chunk.cpp for per-key gates) on detached
// contiguous inputs and record one autodiff node whose vjp is the kernel's hand-written
// backward.
#pragma once

#include <functional>
#include <string>

#include "kernels/common/layout.h"

namespace lnx::kernels {

struct DeltaArgs {
  std::string op;  // names the caller in messages, e.g. "chunk_gated_delta_rule"
  SequenceLayout L;
  Tensor q, k, v;  // [B,T,H,K], [B,T,H,K], [B,T,H,V] (q, k L2-normalised if asked)
  Tensor beta;     // [B,T,H]
  Tensor g;        // [B,T,H] or (kda) [B,T,H,K] log gates; undefined for the ungated rule
  Tensor h0;       // [N,H,K,V] or undefined
  double scale = 1.0;
};

enum class DeltaGate { none, scalar, per_key };

// Validates the inputs (q, k, v, beta, g unless gate is none, initial_state) and applies
// options.use_qk_l2norm with differentiable ops (x / sqrt(Σx² + 1e-6) over the last axis).
DeltaArgs delta_args(const std::string& op, const TensorDict& inputs,
                     const MechanismOptions& options, DeltaGate gate);

struct DeltaGrads {
  Tensor dq, dk, dv, dbeta, dg, dh0;  // dg / dh0 undefined when g / h0 are
};

// A fused kernel over detached contiguous inputs. forward writes o [B,T,H,V] and the final
// state [N,H,K,V] and, when keep, returns what backward needs besides the inputs. backward
// gets the output gradients (d_final may be undefined: no gradient from the final state).
struct DeltaKernel {
  std::function<Tensor(const DeltaArgs& a, Tensor& o, Tensor& final_state, bool keep)> forward;
  std::function<DeltaGrads(const DeltaArgs& a, const Tensor& saved, const Tensor& d_o,
                           const Tensor& d_final)>
      backward;
};

DeltaKernel delta_recurrent_kernel();
DeltaKernel delta_chunk_kernel(int64_t chunk_size);

// Runs the kernel and records its vjp when an input needs a gradient.
MechanismOutputs run_delta_kernel(const DeltaArgs& a, const MechanismOptions& options,
                                  const DeltaKernel& kernel);

}  // namespace lnx::kernels
