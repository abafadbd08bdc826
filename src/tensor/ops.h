// The op library. Every op validates its inputs (shapes, axes, dtypes) and broadcasts, then
// runs its CPU kernel and, in grad mode, records its vjp (forward and vjp sit side by side in
// tensor/ops/<family>.cpp). Binary ops need equal dtypes (no silent promotion); scalars take
// the tensor's dtype.
//
// Dimension letters used in comments: N rows (all leading dims flattened), C classes, D
// feature dim, V vocabulary, M/K/N matmul dims.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "tensor/autograd.h"
#include "tensor/tensor.h"

namespace lnx {

// ---- views and layout (tensor/ops/views.cpp) ----
Tensor reshape(const Tensor& x, const Shape& shape);  // one dim may be -1; copies if not viewable
Tensor flatten(const Tensor& x, int64_t start_axis = 0, int64_t end_axis = -1);
Tensor permute(const Tensor& x, const std::vector<int64_t>& order);
Tensor transpose(const Tensor& x, int64_t a, int64_t b);
// Elements start, start+step, … < stop along axis (negative start/stop count from the end).
Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t stop, int64_t step = 1);
Tensor select(const Tensor& x, int64_t axis, int64_t index);  // drops the axis
Tensor expand(const Tensor& x, const Shape& shape);           // broadcast view (stride 0)
Tensor broadcast_to(const Tensor& x, const Shape& shape);     // = expand
Tensor squeeze(const Tensor& x, int64_t axis);
Tensor unsqueeze(const Tensor& x, int64_t axis);
Tensor contiguous(const Tensor& x);             // x itself (a new handle) if already contiguous
Tensor clone(const Tensor& x);                  // always a fresh contiguous copy
Tensor to_dtype(const Tensor& x, DType dtype);  // gradient flows between float dtypes
// Sums x down to shape (the reverse of broadcasting); used by broadcasting vjps.
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- joining, padding, masks (tensor/ops/layout.cpp) ----
Tensor concat(const TensorList& xs, int64_t axis);
TensorList split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis);
// pads: (before, after) per axis from the first axis; missing trailing axes are not padded.
Tensor pad(const Tensor& x, const std::vector<std::pair<int64_t, int64_t>>& pads, double value = 0.0);
// Keeps elements on or below (tril) / above (triu) diagonal k of the last two axes; zeros
// the rest.
Tensor tril(const Tensor& x, int64_t k = 0);
Tensor triu(const Tensor& x, int64_t k = 0);

// ---- elementwise unary (tensor/ops/unary.cpp) ----
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor silu(const Tensor& x);  // x·σ(x)
// silu(gate)·up (SwiGLU's gating; gate and up of one shape) as one pass forward and one back.
Tensor swiglu(const Tensor& gate, const Tensor& up);
Tensor softplus(const Tensor& x);    // log(1+eˣ), stable for large |x|
Tensor logsigmoid(const Tensor& x);  // −softplus(−x)
Tensor gelu(const Tensor& x);        // tanh approximation (GPT-2's)
Tensor gelu_erf(const Tensor& x);    // exact x·Φ(x)
Tensor relu(const Tensor& x);
Tensor elu(const Tensor& x, double alpha = 1.0);
Tensor clamp(const Tensor& x, std::optional<double> lo, std::optional<double> hi);
Tensor pow(const Tensor& x, double exponent);
Tensor square(const Tensor& x);

// ---- elementwise binary, broadcasting (tensor/ops/binary.cpp) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);      // a > 0 where b is differentiated
Tensor maximum(const Tensor& a, const Tensor& b);  // ties send the gradient to a
Tensor minimum(const Tensor& a, const Tensor& b);
// cond (any dtype; nonzero = true) picks a, else b; all three broadcast together.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// Comparisons (not differentiable) give 1/0 in a's dtype.
Tensor greater(const Tensor& a, const Tensor& b);
Tensor less(const Tensor& a, const Tensor& b);
Tensor equal(const Tensor& a, const Tensor& b);

Tensor add(const Tensor& a, double b);
Tensor sub(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor div(const Tensor& a, double b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);

// ---- reductions and scans (tensor/ops/reduce.cpp) ----
// axes empty = all axes.
Tensor sum(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
// Gradient goes to the first maximal element along the reduced axes.
Tensor max(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t axis, bool keepdim = false);  // i64, not differentiable
Tensor cumsum(const Tensor& x, int64_t axis, bool reverse = false);  // inclusive

// ---- normalisation and losses (tensor/ops/normalization.cpp) ----
Tensor softmax(const Tensor& x, int64_t axis = -1);
Tensor log_softmax(const Tensor& x, int64_t axis = -1);
// Mean cross-entropy of logits [..., C] against integer targets [...]; targets equal to
// ignore_index are skipped (mean over the others; 0 if none). Fused and stable.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100);
// x / sqrt(Σx² + eps) along axis.
Tensor l2_normalize(const Tensor& x, int64_t axis = -1, double eps = 1e-6);
// x / sqrt(mean(x²) + eps) · weight over the last axis; weight [D] may be undefined.
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps = 1e-6);

// ---- matmul (tensor/ops/matmul.cpp) ----
// a [..., M, K] @ b [..., K, N] → [..., M, N]; leading dims broadcast; 1-d operands are
// promoted as in numpy. Transposed views go to BLAS as transposes, without copies.
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- indexing (tensor/ops/indexing.cpp) ----
// out[…, i, …] = x[…, index[i], …] along axis; index is 1-d integer.
Tensor index_select(const Tensor& x, int64_t axis, const Tensor& index);
// out has index's shape: out[i][j][k] = x[i][index[i][j][k]][k] for axis 1 (torch.gather).
Tensor gather(const Tensor& x, int64_t axis, const Tensor& index);
// weight [V, D], ids [...] → [..., D]; backward scatter-adds rows.
Tensor embedding(const Tensor& weight, const Tensor& ids);
Tensor one_hot(const Tensor& ids, int64_t num_classes, DType dtype = DType::f32);

}  // namespace lnx
