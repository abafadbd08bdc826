#include "tensor/cpu/loops.h"

#include <cstring>

namespace lnx {

Strides broadcast_strides(const Tensor& t, const Shape& out) {
  Strides st(out.size(), 0);
  const size_t off = out.size() - t.shape().size();
  for (size_t i = 0; i < t.shape().size(); ++i) st[off + i] = t.shape()[i] == 1 ? 0 : t.strides()[i];
  return st;
}

namespace {

// Transpose-like copies (the source is contiguous along a dim where the destination is not,
// and the other way round along the last dim): row-by-row copying would read the source one
// element per cache line. Instead copy small square tiles, each of which stays in L1.
// Returns false when the layout is not of that kind.
template <typename TS, typename TD>
bool copy_transposed_tiles(const TS* sp, TD* dp, const Tensor& src, const Tensor& dst) {
  StridedLayout<2> L = coalesce<2>(src.shape(), {src.strides(), dst.strides()});
  const int64_t nd = static_cast<int64_t>(L.shape.size());
  if (nd < 2 || L.strides[1].back() != 1 || L.strides[0].back() == 1) return false;
  int64_t j = -1;
  for (int64_t d = 0; d < nd - 1; ++d)
    if (L.strides[0][d] == 1) j = d;
  if (j < 0) return false;
  // Move dim j next to the last one; the order of the other dims does not matter for a copy.
  Shape shape;
  Strides ss, ds;
  for (int64_t d = 0; d < nd - 1; ++d)
    if (d != j) shape.push_back(L.shape[d]), ss.push_back(L.strides[0][d]), ds.push_back(L.strides[1][d]);
  const int64_t A = L.shape[j], B = L.shape.back();
  const int64_t src_b = L.strides[0].back(), dst_a = L.strides[1][j];
  const int64_t outer = numel_of(shape);
  constexpr int64_t kTile = 8;  // 8 lines per tile: power-of-two strides map every line of a tile to one L1 set
  const int64_t tiles_a = (A + kTile - 1) / kTile, tiles_b = (B + kTile - 1) / kTile;
  const int64_t items = outer * tiles_a * tiles_b;
  parallel_for(items, std::max<int64_t>(1, kElementwiseGrain / (kTile * kTile)), [&](int64_t begin, int64_t end) {
    for (int64_t it = begin; it < end; ++it) {
      int64_t tb = it % tiles_b, ta = (it / tiles_b) % tiles_a, o = it / (tiles_b * tiles_a);
      int64_t so = 0, dofs = 0;
      for (int64_t d = static_cast<int64_t>(shape.size()) - 1, rem = o; d >= 0; --d) {
        int64_t i = rem % shape[d];
        rem /= shape[d];
        so += i * ss[d];
        dofs += i * ds[d];
      }
      const int64_t a0 = ta * kTile, a1 = std::min(A, a0 + kTile);
      const int64_t b0 = tb * kTile, b1 = std::min(B, b0 + kTile);
      for (int64_t b = b0; b < b1; ++b) {
        const TS* s = sp + so + b * src_b;
        TD* d = dp + dofs + b;
        for (int64_t a = a0; a < a1; ++a) d[a * dst_a] = static_cast<TD>(s[a]);
      }
    }
  });
  return true;
}

}  // namespace

void copy_into(const Tensor& src, const Tensor& dst) {
  LNX_CHECK(src.shape() == dst.shape(), ShapeError, "[copy] source is {} but destination is {}", shape_str(src.shape()),
            shape_str(dst.shape()));
  if (src.dtype() == dst.dtype() && src.is_contiguous() && dst.is_contiguous()) {
    const char* s = static_cast<const char*>(src.raw_data());
    char* d = static_cast<char*>(dst.raw_data());
    const size_t es = dtype_size(src.dtype());
    parallel_for(src.numel(), kElementwiseGrain,
                 [&](int64_t b, int64_t e) { std::memcpy(d + b * es, s + b * es, (e - b) * es); });
    return;
  }
  dispatch_all(src.dtype(), [&]<typename TS>() {
    dispatch_all(dst.dtype(), [&]<typename TD>() {
      const TS* sp = static_cast<const TS*>(src.raw_data());
      TD* dp = static_cast<TD*>(dst.raw_data());
      if (copy_transposed_tiles(sp, dp, src, dst)) return;
      for_each_row<2>(src.shape(), {src.strides(), dst.strides()},
                      [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
                        const TS* s = sp + off[0];
                        TD* d = dp + off[1];
                        if (st[0] == 1 && st[1] == 1) {
                          for (int64_t i = 0; i < n; ++i) d[i] = static_cast<TD>(s[i]);
                        } else {
                          for (int64_t i = 0; i < n; ++i) d[i * st[1]] = static_cast<TD>(s[i * st[0]]);
                        }
                      });
    });
  });
}

}  // namespace lnx
