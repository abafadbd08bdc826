#include "modules/rope.h"

#include <cmath>

#include "core/varlen.h"
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

Tensor apply_rope(const Tensor& x, const Tensor& positions, const std::vector<double>& inv_freq) {
  LNX_CHECK(x.dim() == 4 && x.size(-1) % 2 == 0 && static_cast<size_t>(x.size(3) / 2) == inv_freq.size(), ShapeError,
            "[rope] x must be [B, T, H, D] with D = 2 · {} frequencies, got {}", inv_freq.size(), shape_str(x.shape()));
  const int64_t B = x.size(0), T = x.size(1), D = x.size(3), half = D / 2;
  LNX_CHECK(positions.dim() == 2 && positions.size(0) == B && positions.size(1) == T, ShapeError,
            "[rope] positions must be [B={}, T={}], got {}", B, T, shape_str(positions.shape()));
  const std::vector<int64_t> pos = to_dtype(positions, DType::i64).to_vector<int64_t>();
  std::vector<double> c(static_cast<size_t>(B * T * half)), s(c.size());
  for (size_t r = 0; r < pos.size(); ++r)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(pos[r]) * inv_freq[static_cast<size_t>(i)];
      c[r * static_cast<size_t>(half) + static_cast<size_t>(i)] = std::cos(angle);
      s[r * static_cast<size_t>(half) + static_cast<size_t>(i)] = std::sin(angle);
    }
  const Tensor cos_t = to_dtype(from_vector(c, {B, T, 1, half}), x.dtype());
  const Tensor sin_t = to_dtype(from_vector(s, {B, T, 1, half}), x.dtype());
  const Tensor x1 = slice(x, 3, 0, half), x2 = slice(x, 3, half, D);
  return concat({sub(mul(x1, cos_t), mul(x2, sin_t)), add(mul(x2, cos_t), mul(x1, sin_t))}, 3);
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
