// Transcendental functions written so GCC vectorises them (branch-free selects, fma, no
// errno): glibc's expf is a scalar call in a loop, which would make exp-based ops (exp,
// sigmoid, silu, softmax) compute-bound at a tenth of memory bandwidth. f32 only: f64 is the
// reference dtype and keeps the libm functions.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace lnx {

// eˣ for float, relative error within ~2 ulp over the normal range. Results that would be
// subnormal flush to 0; overflow gives +inf; NaN propagates.
//   x = n·ln2 + r with n = round(x/ln2), |r| ≤ ln2/2; eʳ by its Taylor series to degree 7
//   (the first omitted term, r⁸/8! < 6e-9, is below float precision); 2ⁿ built in the
//   exponent bits.
inline float exp_f32(float x) {
  constexpr float kHi = 88.7228394f, kLo = -87.3365479f;  // ln(FLT_MAX), ln(FLT_MIN)
  float xc = x > kHi ? kHi : x;
  xc = xc < kLo ? kLo : xc;
  // Round to nearest by adding 1.5·2²³: the sum's low mantissa bits are then the integer.
  constexpr float kRound = 12582912.0f;
  const float shifted = std::fma(xc, 1.44269504088896341f, kRound);
  const float n = shifted - kRound;
  // ln2 split in a part with few mantissa bits (n·hi is exact) and the remainder.
  float r = std::fma(n, -0.693359375f, xc);
  r = std::fma(n, 2.12194440054690583e-4f, r);
  float p = 1.0f / 5040.0f;
  p = std::fma(p, r, 1.0f / 720.0f);
  p = std::fma(p, r, 1.0f / 120.0f);
  p = std::fma(p, r, 1.0f / 24.0f);
  p = std::fma(p, r, 1.0f / 6.0f);
  p = std::fma(p, r, 0.5f);
  p = std::fma(p, r, 1.0f);
  p = std::fma(p, r, 1.0f);
  // 2ⁿ as two factors so that n = 128 (x just below ln(FLT_MAX)) does not overflow the scale.
  const int32_t ni = std::bit_cast<int32_t>(shifted) - std::bit_cast<int32_t>(kRound);
  const int32_t n1 = ni >> 1, n2 = ni - n1;
  float y = p * std::bit_cast<float>((n1 + 127) << 23) * std::bit_cast<float>((n2 + 127) << 23);
  y = x > kHi ? INFINITY : y;
  y = x < kLo ? 0.0f : y;
  y = x != x ? x : y;
  return y;
}

// Dispatch helpers: the vectorisable form for float, libm for double.
inline float fast_exp(float x) { return exp_f32(x); }
inline double fast_exp(double x) { return std::exp(x); }

}  // namespace lnx
