#include "tensor/storage.h"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include "tensor/error.h"
#include "tensor/profile.h"

namespace lnx {
namespace {

// Size classes: 64-byte granularity below 4 KiB, then eight classes per power of two, so a
// reused block wastes at most 12.5%.
size_t size_class(size_t n) {
  if (n <= 4096) return (n + 63) & ~size_t(63);
  size_t p = size_t(1) << (63 - __builtin_clzll(n));  // largest power of two <= n
  size_t step = p / 8;
  return (n + step - 1) / step * step;
}

constexpr size_t kMaxCachedBytes = size_t(4) << 30;

class CachingAllocator {
 public:
  void* allocate(size_t block) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(block);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        stats_.bytes_cached -= block;
        note_in_use(block);
        return p;
      }
    }
    // Linux overcommits: a block larger than the machine would be "allocated" and the process
    // killed when it is touched. Refuse it with an error that says why.
    static const size_t physical = [] {
      const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
      return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : SIZE_MAX;
    }();
    if (block > physical)
      throw Error(fmt::format("[alloc] cannot allocate {:.1f} GiB: more than the machine's {:.1f} GiB of memory",
                              static_cast<double>(block) / (1 << 30), static_cast<double>(physical) / (1 << 30)));
    void* p = std::aligned_alloc(64, block);
    if (!p) {
      empty();  // retry once after handing cached blocks back
      p = std::aligned_alloc(64, block);
    }
    if (!p) throw Error(fmt::format("[alloc] out of memory allocating {} bytes", block));
    std::lock_guard<std::mutex> lock(mu_);
    note_in_use(block);
    return p;
  }

  void deallocate(void* p, size_t block) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.bytes_in_use -= block;
    if (stats_.bytes_cached + block > kMaxCachedBytes) {
      std::free(p);
      return;
    }
    free_[block].push_back(p);
    stats_.bytes_cached += block;
  }

  void empty() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) std::free(p);
    free_.clear();
    stats_.bytes_cached = 0;
  }

  void reset_peak() {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak_bytes_in_use = stats_.bytes_in_use;
  }

  AllocatorStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

 private:
  void note_in_use(size_t block) {
    stats_.bytes_in_use += block;
    if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
  }

  std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  AllocatorStats stats_;
};

CachingAllocator& allocator() {
  static auto* a = new CachingAllocator();  // never destroyed: storages may outlive statics
  return *a;
}

}  // namespace

Storage::Storage(size_t nbytes) : nbytes_(nbytes), block_bytes_(size_class(nbytes ? nbytes : 1)) {
  ProfileScope profile(ProfileCategory::allocation);
  data_ = allocator().allocate(block_bytes_);
}

Storage::Storage(void* data, size_t nbytes, std::function<void()> release)
    : data_(data), nbytes_(nbytes), release_(std::move(release)) {}

Storage::~Storage() {
  if (block_bytes_) {
    allocator().deallocate(data_, block_bytes_);
  } else if (release_) {
    release_();
  }
}

AllocatorStats allocator_stats() { return allocator().stats(); }
void empty_allocator_cache() { allocator().empty(); }
void reset_allocator_peak() { allocator().reset_peak(); }

}  // namespace lnx
