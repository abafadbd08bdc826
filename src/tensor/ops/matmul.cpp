// matmul: a [..., M, K] @ b [..., K, N] → [..., M, N] through BLAS GEMM.
//
// Leading (batch) dims broadcast as in numpy, without materialising the broadcast: each
// batch entry's matrices are found by offset (stride 0 where an operand is broadcast). A
// matrix BLAS can read in place — row-major with any leading dimension, or a transposed view
// (unit stride along rows) — goes to BLAS as it is, as CblasNoTrans/CblasTrans with its lda;
// only other layouts are copied. When b is one matrix shared by every batch entry and a's
// batch entries are evenly spaced rows, the whole batch is a single GEMM of [batch·M, K]
// rows. Otherwise small matrices run one GEMM per thread over the batch (OpenBLAS runs
// single-threaded inside our parallel regions) and large ones one after another, each using
// every thread inside BLAS.
#include <algorithm>

#include "tensor/cpu/blas.h"
#include "tensor/cpu/loops.h"
#include "tensor/ops.h"
#include "tensor/profile.h"

namespace lnx {

namespace {

// Below this many multiply-adds per matrix a batch is split over threads.
constexpr int64_t kSmallGemm = 64 * 64 * 64;

struct MatLayout {
  Transpose trans = Transpose::No;
  int64_t ld = 0;
  bool ok = false;
};

// How BLAS (row-major) can read a [rows, cols] matrix with element strides (rs, cs) without
// a copy, if it can.
MatLayout blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  if (cols <= 1 || cs == 1) {  // rows of adjacent elements, rs apart
    const int64_t ld = rows <= 1 ? std::max<int64_t>(1, cols) : rs;
    if (ld >= std::max<int64_t>(1, cols)) return {Transpose::No, ld, true};
  }
  if (rows <= 1 || rs == 1) {  // a transposed view: columns of adjacent elements, cs apart
    const int64_t ld = cols <= 1 ? std::max<int64_t>(1, rows) : cs;
    if (ld >= std::max<int64_t>(1, rows)) return {Transpose::Yes, ld, true};
  }
  return {};
}

struct Operand {
  Tensor t;  // [batch..., rows, cols] (a view of the input, or a contiguous copy)
  MatLayout layout;
  Strides batch_strides;  // in the broadcast batch shape; 0 where broadcast
};

Operand prepare(const Tensor& x, const Shape& batch) {
  Operand o;
  o.t = x;
  const int64_t nd = x.dim();
  const int64_t rows = x.shape()[nd - 2], cols = x.shape()[nd - 1];
  o.layout = blas_layout(rows, cols, x.strides()[nd - 2], x.strides()[nd - 1]);
  if (!o.layout.ok) {
    o.t = x.contiguous();
    o.layout = blas_layout(rows, cols, o.t.strides()[nd - 2], o.t.strides()[nd - 1]);
  }
  // Batch strides aligned to the broadcast batch shape.
  const int64_t nb = static_cast<int64_t>(batch.size()), own = nd - 2;
  o.batch_strides.assign(batch.size(), 0);
  for (int64_t d = 0; d < own; ++d) {
    const int64_t bd = nb - own + d;
    if (o.t.shape()[d] != 1) o.batch_strides[bd] = o.t.strides()[d];
  }
  return o;
}

// Element offset of batch entry i (row-major over batch) for each operand.
std::vector<int64_t> batch_offsets(const Shape& batch, const Strides& strides, int64_t base) {
  const int64_t total = numel_of(batch);
  std::vector<int64_t> off(static_cast<size_t>(total), base);
  for (int64_t i = 0; i < total; ++i) {
    int64_t rem = i, o = base;
    for (int64_t d = static_cast<int64_t>(batch.size()) - 1; d >= 0; --d) {
      o += (rem % batch[d]) * strides[d];
      rem /= batch[d];
    }
    off[i] = o;
  }
  return off;
}

template <typename T>
void matmul_kernel(const Operand& A, const Operand& B, const Shape& batch, int64_t M, int64_t N, int64_t K, T* C) {
  const int64_t nbatch = numel_of(batch);
  if (nbatch == 0 || M == 0 || N == 0) return;
  if (K == 0) {
    std::fill(C, C + nbatch * M * N, T(0));
    return;
  }
  const T* pa = static_cast<const T*>(A.t.storage()->data()) + A.t.offset();
  const T* pb = static_cast<const T*>(B.t.storage()->data()) + B.t.offset();

  // One GEMM for the whole batch: b shared, a NoTrans with its batch entries evenly spaced
  // continuing the row stride.
  if (nbatch > 1 && A.layout.trans == Transpose::No) {
    bool fold = true;
    int64_t ld = A.layout.ld;
    int64_t expected = M > 1 ? ld * M : -1;  // -1: M = 1, the first batch stride sets ld
    for (int64_t d = static_cast<int64_t>(batch.size()) - 1; d >= 0 && fold; --d) {
      if (batch[d] == 1) continue;
      if (B.batch_strides[d] != 0) fold = false;
      if (expected < 0) {
        ld = expected = A.batch_strides[d];
        if (ld < std::max<int64_t>(1, K)) fold = false;
      }
      if (A.batch_strides[d] != expected) fold = false;
      expected *= batch[d];
    }
    if (fold) {
      gemm(Transpose::No, B.layout.trans, nbatch * M, N, K, T(1), pa, ld, pb, B.layout.ld, T(0), C, N);
      return;
    }
  }

  const std::vector<int64_t> oa = batch_offsets(batch, A.batch_strides, 0);
  const std::vector<int64_t> ob = batch_offsets(batch, B.batch_strides, 0);
  auto one = [&](int64_t i) {
    gemm(A.layout.trans, B.layout.trans, M, N, K, T(1), pa + oa[i], A.layout.ld, pb + ob[i], B.layout.ld, T(0),
         C + i * M * N, N);
  };
  const int64_t work = M * N * K;
  if (nbatch >= 2 && work < kSmallGemm) {
    parallel_for(nbatch, std::max<int64_t>(1, (int64_t(1) << 16) / work), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) one(i);
    });
  } else {
    for (int64_t i = 0; i < nbatch; ++i) one(i);
  }
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  ProfileScope profile(ProfileCategory::gemm);
  LNX_CHECK(a.defined() && b.defined(), ValueError, "[matmul] got an undefined tensor");
  blas_info();  // load BLAS here, on the calling thread, not inside a parallel region
  LNX_CHECK(is_floating(a.dtype()) && a.dtype() == b.dtype(), DTypeError,
            "[matmul] a is {} {} but b is {} {}: both must be f32 or both f64", dtype_name(a.dtype()),
            shape_str(a.shape()), dtype_name(b.dtype()), shape_str(b.shape()));
  LNX_CHECK(a.dim() >= 1 && b.dim() >= 1, ShapeError,
            "[matmul] a is {} but b is {}: both operands need at least one dim", shape_str(a.shape()),
            shape_str(b.shape()));
  // 1-d operands: a [K] is a row [1, K], b [K] a column [K, 1]; the added dim is removed
  // from the result.
  const bool a_vec = a.dim() == 1, b_vec = b.dim() == 1;
  const Tensor A = a_vec ? unsqueeze(a.detach(), 0) : a.detach();
  const Tensor B = b_vec ? unsqueeze(b.detach(), 1) : b.detach();
  const int64_t M = A.shape()[A.dim() - 2], K = A.shape()[A.dim() - 1];
  const int64_t KB = B.shape()[B.dim() - 2], N = B.shape()[B.dim() - 1];
  LNX_CHECK(K == KB, ShapeError, "[matmul] a is {} but b is {}: a's last dim ({}) must equal b's {} dim ({})",
            shape_str(a.shape()), shape_str(b.shape()), K, b_vec ? "only" : "second-to-last", KB);
  const Shape batch_a(A.shape().begin(), A.shape().end() - 2);
  const Shape batch_b(B.shape().begin(), B.shape().end() - 2);
  Shape batch;
  try {
    batch = broadcast_shapes(batch_a, batch_b, "matmul");
  } catch (const ShapeError&) {
    throw ShapeError(fmt::format("[matmul] a is {} but b is {}: batch dims {} and {} do not broadcast",
                                 shape_str(a.shape()), shape_str(b.shape()), shape_str(batch_a), shape_str(batch_b)));
  }

  Shape out_shape = batch;
  if (!a_vec) out_shape.push_back(M);
  if (!b_vec) out_shape.push_back(N);
  Tensor y = Tensor::empty(out_shape, a.dtype());  // same memory as [batch, M, N]
  const Operand oa = prepare(A, batch), ob = prepare(B, batch);
  dispatch_float(a.dtype(), "matmul", [&]<typename T>() { matmul_kernel<T>(oa, ob, batch, M, N, K, y.data<T>()); });

  if (needs_grad({a, b}))
    record("matmul", {a, b}, {&y}, [a = a.detach(), b = b.detach(), batch, M, N, K](const VjpContext& c) -> TensorList {
      // With a2, b2 the promoted operands and g2 the gradient as [batch, M, N]:
      // da = g2 @ b2ᵀ, db = a2ᵀ @ g2, each summed back over the batch dims it was broadcast on.
      const Tensor a2 = a.dim() == 1 ? unsqueeze(a, 0) : a;
      const Tensor b2 = b.dim() == 1 ? unsqueeze(b, 1) : b;
      Shape full = batch;
      full.push_back(M);
      full.push_back(N);
      const Tensor g2 = reshape(c.grad(), full);
      Tensor da, db;
      if (c.needs_grad(0)) {
        Tensor da2 = matmul(g2, transpose(b2, -1, -2));
        da = reshape(sum_to(da2, a2.shape()), a.shape());
      }
      if (c.needs_grad(1)) {
        Tensor db2;
        if (b2.dim() == 2 && !batch.empty()) {
          // b was one matrix for the whole batch (so a2 is [batch, M, K]): one GEMM over all
          // rows, [K, rows] @ [rows, N].
          const int64_t rows = numel_of(batch) * M;
          db2 = matmul(transpose(reshape(a2, {rows, K}), 0, 1), reshape(g2, {rows, N}));
        } else {
          db2 = sum_to(matmul(transpose(a2, -1, -2), g2), b2.shape());
        }
        db = reshape(db2, b.shape());
      }
      return {da, db};
    });
  return y;
}

}  // namespace lnx
