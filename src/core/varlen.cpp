#include "core/varlen.h"

#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::core {

Packing packing_from_mask(const Tensor& mask) {
  LNX_CHECK(mask.defined() && mask.dim() == 2, ShapeError, "[packing_from_mask] mask must be [B, T], got {}",
            mask.defined() ? shape_str(mask.shape()) : std::string("an undefined tensor"));
  Packing p;
  p.B = mask.size(0);
  p.T = mask.size(1);
  const std::vector<double> m = to_dtype(mask, DType::f64).to_vector<double>();
  std::vector<int64_t> gather, scatter(static_cast<size_t>(p.B * p.T));
  for (int64_t b = 0; b < p.B; ++b) {
    int64_t len = 0;
    for (int64_t t = 0; t < p.T; ++t) {
      const double v = m[static_cast<size_t>(b * p.T + t)];
      LNX_CHECK(v == 0.0 || v == 1.0, ValueError, "[packing_from_mask] mask entries must be 0 or 1, got {} at [{}, {}]",
                v, b, t);
      if (v == 1.0) {
        scatter[static_cast<size_t>(b * p.T + t)] = static_cast<int64_t>(gather.size());
        gather.push_back(b * p.T + t);
        ++len;
      } else {
        scatter[static_cast<size_t>(b * p.T + t)] = -1;
      }
    }
    p.lengths.push_back(len);
  }
  p.P = static_cast<int64_t>(gather.size());
  for (auto& s : scatter)
    if (s < 0) s = p.P;  // the zero row appended by unpack
  p.cu_seqlens = cu_seqlens_from_lengths(p.lengths);
  p.gather_index = from_vector(gather, {p.P});
  p.scatter_index = from_vector(scatter, {p.B * p.T});
  return p;
}

Tensor cu_seqlens_from_lengths(const std::vector<int64_t>& lengths) {
  std::vector<int64_t> cu{0};
  for (int64_t len : lengths) {
    LNX_CHECK(len >= 0, ValueError, "[cu_seqlens_from_lengths] negative length {}", len);
    cu.push_back(cu.back() + len);
  }
  return from_vector(cu, {static_cast<int64_t>(cu.size())});
}

std::vector<int64_t> lengths_from_cu_seqlens(const Tensor& cu_seqlens, const char* op) {
  LNX_CHECK(cu_seqlens.dim() == 1 && cu_seqlens.size(0) >= 1 &&
                (cu_seqlens.dtype() == DType::i32 || cu_seqlens.dtype() == DType::i64),
            ValueError, "[{}] cu_seqlens must be a 1-d i32/i64 tensor of N+1 offsets, got {} {}", op,
            dtype_name(cu_seqlens.dtype()), shape_str(cu_seqlens.shape()));
  const std::vector<int64_t> cu = to_dtype(cu_seqlens, DType::i64).to_vector<int64_t>();
  LNX_CHECK(cu[0] == 0, ValueError, "[{}] cu_seqlens must start at 0, got {}", op, cu[0]);
  std::vector<int64_t> lengths;
  for (size_t i = 1; i < cu.size(); ++i) {
    LNX_CHECK(cu[i] >= cu[i - 1], ValueError, "[{}] cu_seqlens must not decrease ({} after {})", op, cu[i], cu[i - 1]);
    lengths.push_back(cu[i] - cu[i - 1]);
  }
  return lengths;
}

Tensor pack(const Tensor& x, const Packing& p) {
  LNX_CHECK(x.dim() >= 2 && x.size(0) == p.B && x.size(1) == p.T, ShapeError,
            "[pack] x must be [{}, {}, …] like the mask, got {}", p.B, p.T, shape_str(x.shape()));
  Shape flat = x.shape();
  flat.erase(flat.begin());
  flat[0] = p.B * p.T;
  Tensor rows = index_select(reshape(x, flat), 0, p.gather_index);
  return unsqueeze(rows, 0);
}

Tensor unpack(const Tensor& y, const Packing& p) {
  LNX_CHECK(y.dim() >= 2 && y.size(0) == 1 && y.size(1) == p.P, ShapeError,
            "[unpack] y must be [1, {}, …] (the packed tokens), got {}", p.P, shape_str(y.shape()));
  Tensor rows = squeeze(y, 0);
  Shape zshape = rows.shape();
  zshape[0] = 1;
  Tensor with_zero = concat({rows, zeros(zshape, y.dtype())}, 0);
  Tensor out = index_select(with_zero, 0, p.scatter_index);
  Shape full = y.shape();
  full[0] = p.B;
  full[1] = p.T;
  return reshape(out, full);
}

}  // namespace lnx::core
