// Counter-based randomness for the data pipeline: every random choice is a pure function of
// (seed, counters…), never of a generator's running state, so batch k can be rebuilt alone —
// which is what makes resuming at step k see exactly the batches an uninterrupted run sees,
// and lets a prefetch thread run ahead without changing anything.
#pragma once

#include <cstdint>

namespace lnx::data {

// splitmix64's output function: a bijective 64-bit mixer with good avalanche.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A 64-bit hash of a seed and up to three counters (chained, so (a, b) and (b, a) differ).
inline uint64_t counter_hash(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ a);
  h = splitmix64(h ^ b);
  return splitmix64(h ^ c);
}

// Maps a 64-bit hash to [0, n) by a 128-bit multiply (Lemire); bias <= n / 2^64, negligible.
inline uint64_t below(uint64_t hash, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(hash) * n) >> 64);
}

// A 64-bit hash to a double in [0, 1) (53 random bits).
inline double unit_interval(uint64_t hash) { return static_cast<double>(hash >> 11) * 0x1.0p-53; }

// A seeded random permutation of [0, n) evaluated one element at a time in O(1) memory:
// a 4-round Feistel network on the smallest even bit width covering n, with cycle walking
// (re-apply until the value lands below n; expected < 4 steps since the domain is < 4n).
class FeistelPermutation {
 public:
  FeistelPermutation(uint64_t n, uint64_t seed) : n_(n), seed_(seed) {
    while ((uint64_t(1) << (2 * half_bits_)) < n_) ++half_bits_;
    mask_ = (uint64_t(1) << half_bits_) - 1;
  }
  // The element at position i (0 <= i < n).
  uint64_t operator()(uint64_t i) const {
    uint64_t x = i;
    do x = encrypt(x);
    while (x >= n_);
    return x;
  }

 private:
  uint64_t encrypt(uint64_t x) const {
    uint64_t left = x >> half_bits_, right = x & mask_;
    for (uint64_t round = 0; round < 4; ++round) {
      const uint64_t next = left ^ (counter_hash(seed_, round, right) & mask_);
      left = right;
      right = next;
    }
    return (left << half_bits_) | right;
  }
  uint64_t n_, seed_;
  int half_bits_ = 1;
  uint64_t mask_ = 1;
};

}  // namespace lnx::data
