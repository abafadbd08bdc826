#include "kernels/common/layout.h"

#include <cmath>

namespace lnx::kernels {

SequenceLayout check_qkv(const std::string& op, const Tensor& q, const Tensor& k, const Tensor& v,
                         const Tensor& cu_seqlens) {
  LNX_CHECK(q.defined() && k.defined() && v.defined(), ValueError, "[{}] q, k and v are required", op);
  LNX_CHECK(q.dim() == 4, ShapeError, "[{}] q is {}: expected [B,T,H,K]", op, shape_str(q.shape()));
  LNX_CHECK(is_floating(q.dtype()), DTypeError, "[{}] q is {}: expected f32 or f64", op,
            dtype_name(q.dtype()));
  LNX_CHECK(k.dtype() == q.dtype() && v.dtype() == q.dtype(), DTypeError,
            "[{}] q is {} but k is {} and v is {}: all must have one dtype", op,
            dtype_name(q.dtype()), dtype_name(k.dtype()), dtype_name(v.dtype()));
  LNX_CHECK(k.shape() == q.shape(), ShapeError, "[{}] q is {} but k is {}: k must match q", op,
            shape_str(q.shape()), shape_str(k.shape()));
  LNX_CHECK(v.dim() == 4 && v.size(0) == q.size(0) && v.size(1) == q.size(1) && v.size(2) == q.size(2),
            ShapeError, "[{}] q is {} but v is {}: expected [B,T,H,V] with q's B, T, H", op,
            shape_str(q.shape()), shape_str(v.shape()));
  SequenceLayout L;
  L.B = q.size(0), L.T = q.size(1), L.H = q.size(2), L.K = q.size(3), L.V = v.size(3);
  if (!cu_seqlens.defined()) {
    L.N = L.B;
    for (int64_t b = 0; b <= L.B; ++b) L.offsets.push_back(b * L.T);
    return L;
  }
  LNX_CHECK(cu_seqlens.dtype() == DType::i32 || cu_seqlens.dtype() == DType::i64, DTypeError,
            "[{}] cu_seqlens is {}: expected i32 or i64", op, dtype_name(cu_seqlens.dtype()));
  LNX_CHECK(cu_seqlens.dim() == 1 && cu_seqlens.size(0) >= 2, ShapeError,
            "[{}] cu_seqlens is {}: expected [N+1] with N >= 1", op, shape_str(cu_seqlens.shape()));
  LNX_CHECK(L.B == 1, ShapeError, "[{}] q is {}: packed sequences (cu_seqlens) need B = 1", op,
            shape_str(q.shape()));
  L.offsets = cu_seqlens.to_vector<int64_t>();
  L.N = static_cast<int64_t>(L.offsets.size()) - 1;
  LNX_CHECK(L.offsets.front() == 0, ValueError, "[{}] cu_seqlens starts at {}, expected 0", op,
            L.offsets.front());
  for (int64_t n = 0; n < L.N; ++n)
    LNX_CHECK(L.offsets[n + 1] >= L.offsets[n], ValueError,
              "[{}] cu_seqlens is not non-decreasing: entry {} is {} after {}", op, n + 1,
              L.offsets[n + 1], L.offsets[n]);
  LNX_CHECK(L.offsets.back() == L.T, ValueError,
            "[{}] cu_seqlens ends at {} but q has T = {} tokens", op, L.offsets.back(), L.T);
  return L;
}

void check_shape(const std::string& op, const std::string& what, const Tensor& x,
                 const Shape& shape, DType dtype) {
  LNX_CHECK(x.defined(), ValueError, "[{}] {} is required", op, what);
  LNX_CHECK(x.shape() == shape, ShapeError, "[{}] {} is {}: expected {}", op, what,
            shape_str(x.shape()), shape_str(shape));
  LNX_CHECK(x.dtype() == dtype, DTypeError, "[{}] {} is {}: expected {} like q", op, what,
            dtype_name(x.dtype()), dtype_name(dtype));
}

void check_initial_state(const std::string& op, const Tensor& h0, const SequenceLayout& L,
                         DType dtype) {
  if (!h0.defined()) return;
  check_shape(op, "initial_state", h0, {L.N, L.H, L.K, L.V}, dtype);
}

double resolve_scale(const MechanismOptions& options, int64_t K) {
  return options.scale ? *options.scale : 1.0 / std::sqrt(static_cast<double>(K));
}

void check_chunk_size(const std::string& op, int64_t chunk_size) {
  LNX_CHECK(chunk_size >= 1 && (chunk_size & (chunk_size - 1)) == 0, ValueError,
            "[{}] chunk_size is {}: expected a power of two", op, chunk_size);
}

}  // namespace lnx::kernels
