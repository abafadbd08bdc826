// Weights stored smaller for generation: bf16 (the top 16 bits of each f32, rounded to nearest
// even) or int8 with one f32 scale per output row (weight-only, symmetric: w ≈ q · scale,
// scale = max|w_row| / 127). Decoding reads every weight once per token, so its speed is the
// weight bytes over the memory bandwidth: half the bytes (bf16) or a quarter (int8) is that
// much faster. Products are computed in f32 from the weights expanded in registers.
// Letters: M rows of x (tokens), I input features, O output features (weight rows).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lnx {

enum class WeightFormat { f32, bf16, int8 };
WeightFormat parse_weight_format(const std::string& name);  // "f32" | "bf16" | "int8", ValueError otherwise
const char* weight_format_name(WeightFormat f);

// Memory for packed weights: blocks of 2 MiB and more are 2 MiB-aligned and offered to the
// kernel as transparent huge pages (madvise), so that streaming a model's weights once per
// token does not take a TLB miss every 4 KiB (where THP is off, plain pages, as before).
void* allocate_weight_bytes(size_t bytes);
void free_weight_bytes(void* p) noexcept;
template <class T> struct WeightAllocator {
  using value_type = T;
  WeightAllocator() = default;
  template <class U> WeightAllocator(const WeightAllocator<U>&) {}  // NOLINT(google-explicit-constructor)
  T* allocate(size_t n) { return static_cast<T*>(allocate_weight_bytes(n * sizeof(T))); }
  void deallocate(T* p, size_t) noexcept { free_weight_bytes(p); }
  template <class U> bool operator==(const WeightAllocator<U>&) const { return true; }
};

struct PackedWeight {
  WeightFormat format = WeightFormat::bf16;               // bf16 or int8
  int64_t rows = 0, cols = 0;                             // O, I
  std::vector<uint16_t, WeightAllocator<uint16_t>> bf16;  // [O, I] (bf16)
  std::vector<int8_t, WeightAllocator<int8_t>> q;         // [O, I] (int8)
  std::vector<float> scales;                              // [O] (int8)
  int64_t bytes() const;                                  // what one pass over the weight reads
  float at(int64_t o, int64_t i) const;                   // the weight as the products see it
};

// w [O, I] row-major f32 (non-finite values are refused: a scale would spread them to the row).
PackedWeight pack_weight(const float* w, int64_t rows, int64_t cols, WeightFormat format);

// y[M, O] = x[M, I] · Wᵀ (row-major, contiguous). The weight is streamed once per 8 rows of x;
// above 32 rows it is expanded to f32 once and the product is an sgemm.
void packed_matmul(const float* x, int64_t M, const PackedWeight& w, float* y);

// y_j[M, O_j] = x[M, I] · W_jᵀ for weights that multiply the same x (equal I): one streamed
// pass over all of them (a layer's projections in one parallel region), or one product each
// where packed_matmul would expand them (above 32 rows) or their formats differ.
void packed_matmul_group(const float* x, int64_t M, const std::vector<const PackedWeight*>& ws,
                         const std::vector<float*>& ys);

// The memory read bandwidth, GB/s, on all threads: sums of a buffer far larger than the caches
// (the ceiling of decoding, which streams the weights once per token).
double measure_read_gbps(int64_t bytes = int64_t{512} << 20);

}  // namespace lnx
