#include "tensor/cpu/loops.h"

#include <cstring>

namespace lnx {

Strides broadcast_strides(const Tensor& t, const Shape& out) {
  Strides st(out.size(), 0);
  const size_t off = out.size() - t.shape().size();
  for (size_t i = 0; i < t.shape().size(); ++i)
    st[off + i] = t.shape()[i] == 1 ? 0 : t.strides()[i];
  return st;
}

void copy_into(const Tensor& src, const Tensor& dst) {
  LNX_CHECK(src.shape() == dst.shape(), ShapeError, "[copy] source is {} but destination is {}",
            shape_str(src.shape()), shape_str(dst.shape()));
  if (src.dtype() == dst.dtype() && src.is_contiguous() && dst.is_contiguous()) {
    const char* s = static_cast<const char*>(src.raw_data());
    char* d = static_cast<char*>(dst.raw_data());
    const size_t es = dtype_size(src.dtype());
    parallel_for(src.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) {
      std::memcpy(d + b * es, s + b * es, (e - b) * es);
    });
    return;
  }
  dispatch_all(src.dtype(), [&]<typename TS>() {
    dispatch_all(dst.dtype(), [&]<typename TD>() {
      const TS* sp = static_cast<const TS*>(src.raw_data());
      TD* dp = static_cast<TD*>(dst.raw_data());
      for_each_row<2>(src.shape(), {src.strides(), dst.strides()},
                      [&](const std::array<int64_t, 2>& off, int64_t n,
                          const std::array<int64_t, 2>& st) {
                        const TS* s = sp + off[0];
                        TD* d = dp + off[1];
                        if (st[0] == 1 && st[1] == 1) {
                          for (int64_t i = 0; i < n; ++i) d[i] = static_cast<TD>(s[i]);
                        } else {
                          for (int64_t i = 0; i < n; ++i)
                            d[i * st[1]] = static_cast<TD>(s[i * st[0]]);
                        }
                      });
    });
  });
}

}  // namespace lnx
