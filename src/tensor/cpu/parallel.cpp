#include "tensor/cpu/parallel.h"

#include <atomic>

#include "tensor/cpu/blas.h"
#include "tensor/error.h"

namespace lnx {

namespace {
std::atomic<int>& thread_count() {
  static std::atomic<int> n{omp_get_max_threads()};
  return n;
}
}  // namespace

int num_threads() { return thread_count().load(std::memory_order_relaxed); }

void set_num_threads(int n) {
  LNX_CHECK(n >= 1, ValueError, "[set_num_threads] expected n >= 1, got {}", n);
  thread_count() = n;
  omp_set_num_threads(n);
  blas_set_num_threads(n);
}

}  // namespace lnx
