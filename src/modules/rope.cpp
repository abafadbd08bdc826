#include "modules/rope.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/varlen.h"
#include "tensor/autograd.h"
#include "tensor/cpu/parallel.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::modules {

std::vector<double> rope_inv_freq(int64_t D, double theta, const RopeScaling& s) {
  const int64_t half = D / 2;
  std::vector<double> f(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i)
    f[static_cast<size_t>(i)] = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(D));
  if (s.type == "none") return f;
  LNX_CHECK(s.factor > 0, ValueError, "[rope] scaling factor = {}: expected > 0", s.factor);
  if (s.type == "linear") {
    for (double& x : f) x /= s.factor;
    return f;
  }
  LNX_CHECK(s.type == "llama3", ValueError, "[rope] unknown scaling '{}' (none, linear, llama3)", s.type);
  LNX_CHECK(s.high_freq_factor > s.low_freq_factor && s.low_freq_factor > 0 && s.original_context > 0, ValueError,
            "[rope] llama3 scaling needs 0 < low_freq_factor ({}) < high_freq_factor ({}) and original_context > 0",
            s.low_freq_factor, s.high_freq_factor);
  const double low_wavelen = s.original_context / s.low_freq_factor,
               high_wavelen = s.original_context / s.high_freq_factor;
  for (double& x : f) {
    const double wavelen = 2 * M_PI / x;
    if (wavelen < high_wavelen) continue;  // high frequencies: kept
    if (wavelen > low_wavelen) {           // low frequencies: interpolated positions
      x /= s.factor;
      continue;
    }
    const double smooth = (s.original_context / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    x = (1 - smooth) * x / s.factor + smooth * x;
  }
  return f;
}

Tensor apply_rope(const Tensor& x, const Tensor& positions, double theta) {
  LNX_CHECK(x.dim() == 4 && x.size(-1) % 2 == 0, ShapeError, "[rope] x must be [B, T, H, D] with D even, got {}",
            shape_str(x.shape()));
  return apply_rope(x, positions, rope_inv_freq(x.size(3), theta));
}

namespace {

// y = x rotated pair by pair: for i < half, (y_i, y_{i+half}) = R(sign · angle) (x_i, x_{i+half}),
// the angle's cos and sin in row table_row[r] of the tables (token r of [B·T]). sign = −1 is the
// inverse rotation: the vjp. x, y [B·T, H, D] contiguous; tables [rows, half].
template <typename T> void rotate_pairs(const T* x, T* y, const T* cos_t, const T* sin_t,
                                        const std::vector<int64_t>& table_row, int64_t H, int64_t D, T sign) {
  const int64_t half = D / 2, tokens = static_cast<int64_t>(table_row.size());
  parallel_for(tokens, std::max<int64_t>(1, 4096 / std::max<int64_t>(H * D, 1)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* c = cos_t + table_row[static_cast<size_t>(r)] * half;
      const T* s = sin_t + table_row[static_cast<size_t>(r)] * half;
      for (int64_t h = 0; h < H; ++h) {
        const T* xr = x + (r * H + h) * D;
        T* yr = y + (r * H + h) * D;
        for (int64_t i = 0; i < half; ++i) {
          const T x1 = xr[i], x2 = xr[i + half], si = sign * s[i];
          yr[i] = x1 * c[i] - x2 * si;
          yr[i + half] = x2 * c[i] + x1 * si;
        }
      }
    }
  });
}

}  // namespace

Tensor apply_rope(const Tensor& x, const Tensor& positions, const std::vector<double>& inv_freq) {
  LNX_CHECK(x.dim() == 4 && x.size(-1) % 2 == 0 && static_cast<size_t>(x.size(3) / 2) == inv_freq.size(), ShapeError,
            "[rope] x must be [B, T, H, D] with D = 2 · {} frequencies, got {}", inv_freq.size(), shape_str(x.shape()));
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2), D = x.size(3), half = D / 2;
  LNX_CHECK(positions.dim() == 2 && positions.size(0) == B && positions.size(1) == T, ShapeError,
            "[rope] positions must be [B={}, T={}], got {}", B, T, shape_str(positions.shape()));
  const std::vector<int64_t> pos = to_dtype(positions, DType::i64).to_vector<int64_t>();
  // One table row per distinct position when they span no more than the tokens (the batch rows
  // of a training call share positions 0 … T−1), else one per token.
  const auto [lo, hi] = pos.empty() ? std::pair<int64_t, int64_t>{0, -1}
                                    : std::pair<int64_t, int64_t>{*std::min_element(pos.begin(), pos.end()),
                                                                  *std::max_element(pos.begin(), pos.end())};
  const bool by_position = hi - lo < static_cast<int64_t>(pos.size());
  std::vector<int64_t> table_row(pos.size());
  std::vector<int64_t> row_position;
  if (by_position) {
    for (int64_t p = lo; p <= hi; ++p) row_position.push_back(p);
    for (size_t r = 0; r < pos.size(); ++r) table_row[r] = pos[r] - lo;
  } else {
    row_position = pos;
    for (size_t r = 0; r < pos.size(); ++r) table_row[r] = static_cast<int64_t>(r);
  }
  const int64_t rows = static_cast<int64_t>(row_position.size());
  Tensor cos_t = Tensor::empty({rows, half}, x.dtype()), sin_t = Tensor::empty({rows, half}, x.dtype());
  Tensor xc = x.detach().contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), "rope", [&]<typename F>() {
    F* c = cos_t.data<F>();
    F* s = sin_t.data<F>();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < half; ++i) {
        const double angle =
            static_cast<double>(row_position[static_cast<size_t>(r)]) * inv_freq[static_cast<size_t>(i)];
        c[r * half + i] = static_cast<F>(std::cos(angle));
        s[r * half + i] = static_cast<F>(std::sin(angle));
      }
    rotate_pairs<F>(xc.data<F>(), y.data<F>(), c, s, table_row, H, D, F(1));
  });
  if (needs_grad({x}))
    record("rope", {x}, {&y}, [cos_t, sin_t, table_row = std::move(table_row), H, D](const VjpContext& ctx) {
      const Tensor g = ctx.grad().contiguous();
      Tensor dx = Tensor::empty(g.shape(), g.dtype());
      dispatch_float(g.dtype(), "rope", [&]<typename F>() {
        rotate_pairs<F>(g.data<F>(), dx.data<F>(), cos_t.data<F>(), sin_t.data<F>(), table_row, H, D, F(-1));
      });
      return TensorList{dx};
    });
  return y;
}

Tensor token_positions(int64_t B, int64_t T, const Tensor& cu_seqlens, const std::vector<int64_t>& start) {
  std::vector<int64_t> pos(static_cast<size_t>(B * T));
  if (!cu_seqlens.defined()) {
    LNX_CHECK(start.empty() || static_cast<int64_t>(start.size()) == B, ValueError,
              "[token_positions] {} start positions for {} sequences", start.size(), B);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        pos[static_cast<size_t>(b * T + t)] = (start.empty() ? 0 : start[static_cast<size_t>(b)]) + t;
  } else {
    const std::vector<int64_t> lengths = core::lengths_from_cu_seqlens(cu_seqlens, "token_positions");
    LNX_CHECK(start.empty() || start.size() == lengths.size(), ValueError,
              "[token_positions] {} start positions for {} sequences", start.size(), lengths.size());
    int64_t r = 0;
    for (size_t n = 0; n < lengths.size(); ++n)
      for (int64_t t = 0; t < lengths[n]; ++t) pos[static_cast<size_t>(r++)] = (start.empty() ? 0 : start[n]) + t;
  }
  return from_vector(pos, {B, T});
}

}  // namespace lnx::modules
