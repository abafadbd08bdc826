// Indexing: index_select, gather, embedding, one_hot. Indices are validated up front (a bad
// index is a ValueError naming the value and its position, never a wild read). Forwards copy
// rows in parallel; vjps scatter-add the gradient into zeros, split over threads so that no
// two threads write the same element (repeated indices accumulate in index order, so results
// do not depend on the thread count).
#include <cstring>

#include "tensor/cpu/loops.h"
#include "tensor/ops.h"

namespace lnx {

namespace {

// Position of flat element i of shape as text: "5" for 0-d/1-d, "[1,2]" otherwise.
std::string position_str(int64_t i, const Shape& shape) {
  if (shape.size() <= 1) return std::to_string(i);
  std::vector<int64_t> idx(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    idx[d] = shape[d] == 0 ? 0 : i % shape[d];
    i = shape[d] == 0 ? 0 : i / shape[d];
  }
  return fmt::format("[{}]", fmt::join(idx, ","));
}

// The indices as a contiguous i64 tensor, each checked to lie in [0, limit). what(value,
// position) writes the error message for the first bad one.
template <typename Msg>
Tensor checked_indices(const Tensor& index, const char* op, const char* name, int64_t limit, Msg&& what) {
  LNX_CHECK(index.defined(), ValueError, "[{}] {} is undefined", op, name);
  LNX_CHECK(index.dtype() == DType::i32 || index.dtype() == DType::i64, DTypeError,
            "[{}] {} must be i32 or i64, got {} {}", op, name, dtype_name(index.dtype()), shape_str(index.shape()));
  // Always a private copy: vjps keep it, and a later write to the caller's index tensor must
  // not turn into an unchecked scatter in backward.
  Tensor idx = index.dtype() == DType::i64 ? clone(index.detach()) : to_dtype(index.detach(), DType::i64);
  const int64_t* p = idx.data<int64_t>();
  const int64_t n = idx.numel();
  for (int64_t i = 0; i < n; ++i)
    if (p[i] < 0 || p[i] >= limit) throw ValueError(what(p[i], position_str(i, idx.shape())));
  return idx;
}

// Copies element rows of `bytes` bytes: dst row r ← src row rows[r].
void copy_rows(const char* src, char* dst, const int64_t* rows, int64_t n, size_t bytes) {
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain * 4 / static_cast<int64_t>(std::max<size_t>(bytes, 1)));
  parallel_for(n, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) std::memcpy(dst + r * bytes, src + rows[r] * bytes, bytes);
  });
}

// dx [A, N, C] += scatter of g [A, M, C] along the middle axis: dx[a, idx[m], c] += g[a, m, c].
// Threads own disjoint a's when there are enough of them, else disjoint column ranges.
template <typename T>
void index_add_middle(T* dx, const T* g, const int64_t* idx, int64_t A, int64_t N, int64_t M, int64_t C) {
  auto body = [&](int64_t a0, int64_t a1, int64_t c0, int64_t c1) {
    for (int64_t a = a0; a < a1; ++a)
      for (int64_t m = 0; m < M; ++m) {
        T* drow = dx + (a * N + idx[m]) * C;
        const T* grow = g + (a * M + m) * C;
        for (int64_t c = c0; c < c1; ++c) drow[c] += grow[c];
      }
  };
  const int64_t work = A * M * C;
  const int64_t grain_a = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(M * C, 1));
  if (A >= num_threads() || work < kElementwiseGrain) {
    parallel_for(A, grain_a, [&](int64_t b, int64_t e) { body(b, e, 0, C); });
  } else {
    const int64_t grain_c = std::max<int64_t>(16, kElementwiseGrain / std::max<int64_t>(A * M, 1));
    parallel_for(C, grain_c, [&](int64_t b, int64_t e) { body(0, A, b, e); });
  }
}

// Element offsets (with strides st) of the coordinates of dims [d0, d1) of shape, for every
// flat index over those dims in row-major order.
std::vector<int64_t> coord_offsets(const Shape& shape, const Strides& st, int64_t d0, int64_t d1) {
  int64_t count = 1;
  for (int64_t d = d0; d < d1; ++d) count *= shape[d];
  std::vector<int64_t> off(count);
  for (int64_t i = 0; i < count; ++i) {
    int64_t rem = i, o = 0;
    for (int64_t d = d1 - 1; d >= d0; --d) {
      o += (rem % shape[d]) * st[d];
      rem /= shape[d];
    }
    off[i] = o;
  }
  return off;
}

}  // namespace

Tensor index_select(const Tensor& x, int64_t axis, const Tensor& index) {
  LNX_CHECK(x.defined(), ValueError, "[index_select] x is undefined");
  LNX_CHECK(x.dim() >= 1, ShapeError, "[index_select] cannot index a 0-d tensor");
  const int64_t ax = normalize_axis(axis, x.dim(), "index_select");
  LNX_CHECK(index.defined() && index.dim() == 1, ShapeError, "[index_select] index must be 1-d, got {}",
            index.defined() ? shape_str(index.shape()) : std::string("undefined"));
  const int64_t N = x.shape()[ax];
  Tensor idx = checked_indices(index, "index_select", "index", N, [&](int64_t v, const std::string& pos) {
    return fmt::format(
        "[index_select] index {} at position {} is out of range for axis {} of "
        "size {} (shape {})",
        v, pos, axis, N, shape_str(x.shape()));
  });
  const int64_t M = idx.numel();
  int64_t A = 1, C = 1;
  for (int64_t d = 0; d < ax; ++d) A *= x.shape()[d];
  for (int64_t d = ax + 1; d < x.dim(); ++d) C *= x.shape()[d];
  Shape out_shape = x.shape();
  out_shape[ax] = M;
  Tensor y = Tensor::empty(out_shape, x.dtype());
  if (y.numel() > 0) {
    Tensor xc = x.detach().contiguous();
    const int64_t* ip = idx.data<int64_t>();
    const size_t row = static_cast<size_t>(C) * dtype_size(x.dtype());
    const char* xp = static_cast<const char*>(xc.raw_data());
    char* yp = static_cast<char*>(y.raw_data());
    // Row (a, m) of y ← row (a, idx[m]) of x.
    const int64_t grain = std::max<int64_t>(1, kElementwiseGrain * 4 / static_cast<int64_t>(std::max<size_t>(row, 1)));
    parallel_for(A * M, grain, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t a = r / M, m = r % M;
        std::memcpy(yp + r * row, xp + (a * N + ip[m]) * row, row);
      }
    });
  }
  if (needs_grad({x}))
    record("index_select", {x}, {&y}, [in = x.shape(), idx, A, N, M, C](const VjpContext& c) -> TensorList {
      Tensor g = c.grad().contiguous();
      Tensor dx = zeros(in, g.dtype());
      dispatch_float(g.dtype(), "index_select", [&]<typename T>() {
        index_add_middle<T>(dx.data<T>(), g.data<T>(), idx.data<int64_t>(), A, N, M, C);
      });
      return {dx};
    });
  return y;
}

Tensor gather(const Tensor& x, int64_t axis, const Tensor& index) {
  LNX_CHECK(x.defined(), ValueError, "[gather] x is undefined");
  LNX_CHECK(index.defined(), ValueError, "[gather] index is undefined");
  LNX_CHECK(x.dim() >= 1, ShapeError, "[gather] cannot gather from a 0-d tensor");
  const int64_t ax = normalize_axis(axis, x.dim(), "gather");
  LNX_CHECK(index.dim() == x.dim(), ShapeError, "[gather] index is {} but x is {}: index needs x's number of dims",
            shape_str(index.shape()), shape_str(x.shape()));
  for (int64_t d = 0; d < x.dim(); ++d)
    LNX_CHECK(d == ax || index.shape()[d] <= x.shape()[d], ShapeError,
              "[gather] index is {} but x is {}: index dim {} must be <= x's", shape_str(index.shape()),
              shape_str(x.shape()), d);
  const int64_t N = x.shape()[ax];
  Tensor idx = checked_indices(index, "gather", "index", N, [&](int64_t v, const std::string& pos) {
    return fmt::format(
        "[gather] index {} at position {} is out of range for axis {} of size {} "
        "(x is {})",
        v, pos, axis, N, shape_str(x.shape()));
  });
  // Index space [A, M, C] (index's dims before ax, at ax, after ax). Element (a, m, c) reads x
  // at aoff[a] + idx·stride[ax] + coff[c], where aoff/coff are the offsets of a's and c's
  // coordinates in x (index dims fit inside x's, so coordinates carry over).
  const Shape& is = index.shape();
  int64_t A = 1, C = 1;
  for (int64_t d = 0; d < ax; ++d) A *= is[d];
  for (int64_t d = ax + 1; d < x.dim(); ++d) C *= is[d];
  const int64_t M = is[ax];
  Tensor y = Tensor::empty(is, x.dtype());
  if (y.numel() > 0) {
    const std::vector<int64_t> aoff = coord_offsets(is, x.strides(), 0, ax);
    const std::vector<int64_t> coff = coord_offsets(is, x.strides(), ax + 1, x.dim());
    const int64_t sa = x.strides()[ax];
    const int64_t* ip = idx.data<int64_t>();
    dispatch_all(x.dtype(), [&]<typename T>() {
      const T* xp = static_cast<const T*>(x.raw_data());
      T* yp = y.data<T>();
      parallel_for(A * M, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(C, 1)), [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          const T* xa = xp + aoff[r / M];
          const int64_t* ir = ip + r * C;
          T* yr = yp + r * C;
          for (int64_t c = 0; c < C; ++c) yr[c] = xa[ir[c] * sa + coff[c]];
        }
      });
    });
  }
  if (needs_grad({x})) {
    record("gather", {x}, {&y},
           [in = x.shape(), is = index.shape(), idx, ax, A, M, C](const VjpContext& c) -> TensorList {
             Tensor g = c.grad().contiguous();
             Tensor dx = zeros(in, g.dtype());
             const std::vector<int64_t> aoff = coord_offsets(is, dx.strides(), 0, ax);
             const std::vector<int64_t> coff = coord_offsets(is, dx.strides(), ax + 1, int64_t(is.size()));
             const int64_t sa = dx.strides()[ax];
             const int64_t* ip = idx.data<int64_t>();
             dispatch_float(g.dtype(), "gather", [&]<typename T>() {
               T* dp = dx.data<T>();
               const T* gp = g.data<T>();
               // Distinct (a, c) write distinct elements of dx: threads own disjoint a's, or
               // disjoint c ranges when there are few a's.
               auto body = [&](int64_t a0, int64_t a1, int64_t c0, int64_t c1) {
                 for (int64_t a = a0; a < a1; ++a) {
                   T* da = dp + aoff[a];
                   for (int64_t m = 0; m < M; ++m) {
                     const int64_t r = a * M + m;
                     for (int64_t cc = c0; cc < c1; ++cc) da[ip[r * C + cc] * sa + coff[cc]] += gp[r * C + cc];
                   }
                 }
               };
               if (A >= num_threads() || A * M * C < kElementwiseGrain)
                 parallel_for(A, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(M * C, 1)),
                              [&](int64_t b, int64_t e) { body(b, e, 0, C); });
               else
                 parallel_for(C, std::max<int64_t>(16, kElementwiseGrain / std::max<int64_t>(A * M, 1)),
                              [&](int64_t b, int64_t e) { body(0, A, b, e); });
             });
             return {dx};
           });
  }
  return y;
}

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  LNX_CHECK(weight.defined(), ValueError, "[embedding] weight is undefined");
  LNX_CHECK(weight.dim() == 2, ShapeError, "[embedding] weight must be [V, D], got {}", shape_str(weight.shape()));
  const int64_t V = weight.shape()[0], D = weight.shape()[1];
  Tensor idx = checked_indices(ids, "embedding", "ids", V, [&](int64_t v, const std::string& pos) {
    return fmt::format("[embedding] id {} at position {} is out of range for a vocabulary of {}", v, pos, V);
  });
  Shape out_shape = ids.shape();
  out_shape.push_back(D);
  Tensor y = Tensor::empty(out_shape, weight.dtype());
  const int64_t n = idx.numel();
  if (y.numel() > 0) {
    Tensor w = weight.detach().contiguous();
    copy_rows(static_cast<const char*>(w.raw_data()), static_cast<char*>(y.raw_data()), idx.data<int64_t>(), n,
              static_cast<size_t>(D) * dtype_size(w.dtype()));
  }
  if (needs_grad({weight}))
    record("embedding", {weight}, {&y}, [V, D, n, idx](const VjpContext& c) -> TensorList {
      Tensor g = c.grad().contiguous();
      Tensor dw = zeros({V, D}, g.dtype());
      const int64_t* ip = idx.data<int64_t>();
      dispatch_float(g.dtype(), "embedding", [&]<typename T>() {
        T* dp = dw.data<T>();
        const T* gp = g.data<T>();
        const int nt = num_threads();
        if (D >= 16 * nt || n * D < kElementwiseGrain) {
          // Threads own disjoint column ranges of every row.
          parallel_for(D, std::max<int64_t>(16, kElementwiseGrain / std::max<int64_t>(n, 1)),
                       [&](int64_t d0, int64_t d1) {
                         for (int64_t i = 0; i < n; ++i) {
                           T* drow = dp + ip[i] * D;
                           const T* grow = gp + i * D;
                           for (int64_t d = d0; d < d1; ++d) drow[d] += grow[d];
                         }
                       });
        } else {
          // Narrow rows: threads own disjoint ranges of vocabulary rows and skip other ids.
          parallel_for(V, 1, [&](int64_t v0, int64_t v1) {
            for (int64_t i = 0; i < n; ++i) {
              const int64_t v = ip[i];
              if (v < v0 || v >= v1) continue;
              T* drow = dp + v * D;
              const T* grow = gp + i * D;
              for (int64_t d = 0; d < D; ++d) drow[d] += grow[d];
            }
          });
        }
      });
      return {dw};
    });
  return y;
}

Tensor one_hot(const Tensor& ids, int64_t num_classes, DType dtype) {
  LNX_CHECK(num_classes >= 1, ValueError, "[one_hot] num_classes must be >= 1, got {}", num_classes);
  Tensor idx = checked_indices(ids, "one_hot", "ids", num_classes, [&](int64_t v, const std::string& pos) {
    return fmt::format("[one_hot] id {} at position {} is out of range for {} classes", v, pos, num_classes);
  });
  Shape out_shape = ids.shape();
  out_shape.push_back(num_classes);
  Tensor y = zeros(out_shape, dtype);
  const int64_t* ip = idx.data<int64_t>();
  dispatch_all(dtype, [&]<typename T>() {
    T* yp = y.data<T>();
    parallel_for(idx.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) yp[i * num_classes + ip[i]] = T(1);
    });
  });
  return y;
}

}  // namespace lnx
