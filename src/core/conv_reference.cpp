// causal_conv1d_reference composed of differentiable tensor ops: prepend the cache, sum W
// shifted slices scaled by the kernel's columns. Also the argument checks both forms share.
// The fused primitive (causal_conv1d) is in conv.cpp.
#include "core/conv.h"
#include "core/varlen.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::core {

namespace detail {

std::vector<int64_t> check_causal_conv1d_args(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                              const Tensor& cache, const Tensor& cu_seqlens) {
  LNX_CHECK(x.defined() && x.dim() == 3, ShapeError, "[causal_conv1d] x must be [B, T, D], got {}",
            x.defined() ? shape_str(x.shape()) : std::string("an undefined tensor"));
  LNX_CHECK(is_floating(x.dtype()), DTypeError, "[causal_conv1d] x must be floating, got {}", dtype_name(x.dtype()));
  const int64_t B = x.size(0), D = x.size(2);
  LNX_CHECK(weight.defined() && weight.dim() == 2 && weight.size(0) == D && weight.size(1) >= 1, ShapeError,
            "[causal_conv1d] weight must be [D={}, W], got {}", D,
            weight.defined() ? shape_str(weight.shape()) : std::string("an undefined tensor"));
  LNX_CHECK(weight.dtype() == x.dtype(), DTypeError, "[causal_conv1d] weight is {} but x is {}",
            dtype_name(weight.dtype()), dtype_name(x.dtype()));
  // Shape and dtype of bias and cache are reported with one message but typed apart.
  LNX_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == D), ShapeError,
            "[causal_conv1d] bias must be [D={}] {}, got {} {}", D, dtype_name(x.dtype()), shape_str(bias.shape()),
            dtype_name(bias.dtype()));
  LNX_CHECK(!bias.defined() || bias.dtype() == x.dtype(), DTypeError,
            "[causal_conv1d] bias must be [D={}] {}, got {} {}", D, dtype_name(x.dtype()), shape_str(bias.shape()),
            dtype_name(bias.dtype()));
  std::vector<int64_t> lengths(static_cast<size_t>(B), x.size(1));
  if (cu_seqlens.defined()) {
    LNX_CHECK(B == 1, ShapeError, "[causal_conv1d] with cu_seqlens x must be packed as [1, T, D], got {}",
              shape_str(x.shape()));
    lengths = lengths_from_cu_seqlens(cu_seqlens, "causal_conv1d");
    int64_t total = 0;
    for (int64_t l : lengths) total += l;
    LNX_CHECK(total == x.size(1), ValueError, "[causal_conv1d] cu_seqlens ends at {} but x has T = {}", total,
              x.size(1));
  }
  const int64_t N = static_cast<int64_t>(lengths.size()), W = weight.size(1);
  LNX_CHECK(
      !cache.defined() || (cache.dim() == 3 && cache.size(0) == N && cache.size(1) == W - 1 && cache.size(2) == D),
      ShapeError, "[causal_conv1d] cache must be [N={}, W-1={}, D={}] {}, got {} {}", N, W - 1, D,
      dtype_name(x.dtype()), shape_str(cache.shape()), dtype_name(cache.dtype()));
  LNX_CHECK(!cache.defined() || cache.dtype() == x.dtype(), DTypeError,
            "[causal_conv1d] cache must be [N={}, W-1={}, D={}] {}, got {} {}", N, W - 1, D, dtype_name(x.dtype()),
            shape_str(cache.shape()), dtype_name(cache.dtype()));
  return lengths;
}

}  // namespace detail

namespace {

// One batch of sequences [B, T, D] with cache [B, W−1, D].
ConvOutput conv_dense(const Tensor& x, const Tensor& weight, const Tensor& bias, bool silu_activation,
                      const Tensor& cache) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2), W = weight.size(1);
  Tensor prev = cache.defined() ? cache : zeros({B, W - 1, D}, x.dtype());
  Tensor xp = W > 1 ? concat({prev, x}, 1) : x;  // [B, T+W−1, D]
  Tensor y;
  for (int64_t w = 0; w < W; ++w) {
    Tensor term = mul(slice(xp, 1, w, w + T), select(weight, 1, w));
    y = y.defined() ? add(y, term) : term;
  }
  if (bias.defined()) y = add(y, bias);
  if (silu_activation) y = silu(y);
  return {y, slice(xp, 1, T, T + W - 1)};
}

}  // namespace

ConvOutput causal_conv1d_reference(const Tensor& x, const Tensor& weight, const Tensor& bias, bool silu_activation,
                                   const Tensor& cache, const Tensor& cu_seqlens) {
  const std::vector<int64_t> lengths = detail::check_causal_conv1d_args(x, weight, bias, cache, cu_seqlens);
  if (!cu_seqlens.defined()) return conv_dense(x, weight, bias, silu_activation, cache);
  const int64_t N = static_cast<int64_t>(lengths.size());
  TensorList ys, caches;
  int64_t start = 0;
  for (int64_t n = 0; n < N; ++n) {
    const int64_t len = lengths[static_cast<size_t>(n)];
    Tensor cn = cache.defined() ? slice(cache, 0, n, n + 1) : Tensor();
    ConvOutput part = conv_dense(slice(x, 1, start, start + len), weight, bias, silu_activation, cn);
    if (len > 0) ys.push_back(part.y);
    caches.push_back(part.cache);
    start += len;
  }
  Tensor y = ys.empty() ? zeros(x.shape(), x.dtype()) : concat(ys, 1);
  return {y, concat(caches, 0)};
}

}  // namespace lnx::core
