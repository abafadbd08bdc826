// Storage: one block of bytes that tensors view. Blocks come from a caching allocator:
// glibc hands large blocks back to the OS on free, so without a cache every large tensor
// would page-fault anew (DESIGN.md §9). Storage can also wrap foreign memory (a mapped file)
// with a release callback.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "tensor/device.h"

namespace lnx {

class Storage {
 public:
  // Fresh uninitialised block of nbytes (64-byte aligned) from the caching allocator.
  explicit Storage(size_t nbytes);
  // Wraps memory owned elsewhere; release() runs when the last tensor viewing it is gone.
  Storage(void* data, size_t nbytes, std::function<void()> release);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }  // the CPU allocator's blocks: Device::cpu

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  size_t block_bytes_ = 0;  // size class of the cached block (0 for foreign memory)
  Device device_ = Device::cpu;
  std::function<void()> release_;
};

// Statistics and control of the caching allocator.
struct AllocatorStats {
  size_t bytes_in_use = 0;  // held by live storages
  size_t bytes_cached = 0;  // free blocks kept for reuse
  size_t peak_bytes_in_use = 0;
};
AllocatorStats allocator_stats();
void empty_allocator_cache();  // returns every cached block to the OS
void reset_allocator_peak();   // peak_bytes_in_use restarts from bytes_in_use

}  // namespace lnx
