// The parts of Communicator common to every backend, and the single-rank backend.
#include "dist/communicator.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "dist/request_internal.h"
#include "tensor/error.h"

namespace lnx::dist {

Request::Request() = default;
Request::~Request() {
  // An unfinished collective cannot be freed (MPI's rule) and still reads its count arrays: they
  // are left allocated for the abort that follows.
  if (impl_) static_cast<void>(impl_.release());
}
Request::Request(Request&&) noexcept = default;
Request& Request::operator=(Request&&) noexcept = default;
bool Request::active() const { return impl_ != nullptr; }

Request Communicator::make_request(const char* what) {
  Request r;
  r.impl_ = std::make_unique<Request::Impl>();
  r.impl_->what = what;
  return r;
}

void Communicator::finish(Request& r) { r.impl_.reset(); }

void Communicator::set_timeout(double seconds) {
  LNX_CHECK(seconds > 0, ValueError, "[dist] the collective timeout must be positive, got {} s", seconds);
  timeout_s_ = seconds;
}

void Communicator::wait_all(std::vector<Request>& requests) {
  for (Request& r : requests) wait(r);
}

void Communicator::allreduce_sum(double* data, int64_t count, const char* what) {
  Request r = allreduce_sum_start(data, count, DType::f64, what);
  wait(r);
}

double Communicator::allreduce_sum(double value, const char* what) {
  allreduce_sum(&value, 1, what);
  return value;
}

namespace {

// One rank: every collective is a copy or nothing.
class SingleRank final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  Request allreduce_sum_start(void*, int64_t, DType, const char*) override { return {}; }
  Request reduce_scatter_sum_start(const void* send, void* recv, const std::vector<int64_t>& counts, DType dtype,
                                   const char* what) override {
    copy(send, recv, counts, dtype, what);
    return {};
  }
  Request allgather_start(const void* send, void* recv, const std::vector<int64_t>& counts, DType dtype,
                          const char* what) override {
    copy(send, recv, counts, dtype, what);
    return {};
  }
  bool test(Request&) override { return true; }
  void wait(Request&) override {}
  void broadcast(std::string&, int root, const char* what) override { check_root(root, what); }
  std::vector<std::string> gather(const std::string& bytes, int root, const char* what) override {
    check_root(root, what);
    return {bytes};
  }
  void barrier(const char*) override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }

 private:
  static void check_root(int root, const char* what) {
    LNX_CHECK(root == 0, ValueError, "[dist] {}: root {} of a single rank", what, root);
  }
  static void copy(const void* send, void* recv, const std::vector<int64_t>& counts, DType dtype, const char* what) {
    LNX_CHECK(counts.size() == 1, ValueError, "[dist] {}: {} counts for a single rank", what, counts.size());
    if (send != recv && counts[0] > 0) std::memcpy(recv, send, static_cast<size_t>(counts[0]) * dtype_size(dtype));
  }
};

}  // namespace

// Launchers set these in the processes they start: Open MPI's mpirun, PMI as MPICH's Hydra and
// srun --mpi=pmi2 do, PMIx as srun --mpi=pmix and Open MPI 5 do; srun sets the task count of
// its step whatever the plugin.
int launched_ranks() {
  int n = 1;
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"})
    if (const char* v = std::getenv(name)) n = std::max(n, std::atoi(v));
  return n;
}

bool launched() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK", "SLURM_STEP_NUM_TASKS"})
    if (std::getenv(name)) return true;
  return false;
}

Communicator& single_rank_communicator() {
  static SingleRank single;
  return single;
}

Communicator& Communicator::self() { return single_rank_communicator(); }

Communicator& Communicator::world() {
#ifdef LNX_HAVE_MPI
  if (Communicator* c = mpi_world_communicator()) return *c;
#else
  const int ranks = launched_ranks();
  LNX_CHECK(ranks <= 1, DistributedError,
            "[dist] a launcher started this process as one of {} ranks, but this linearnexus was built without MPI: "
            "install Open MPI (libopenmpi-dev) and rebuild to train across ranks",
            ranks);
#endif
  return single_rank_communicator();
}

void report_and_abort(Communicator& comm, const char* what) {
  std::fflush(stdout);
  fmt::print(stderr, "error: rank {} of {}: {}\n", comm.rank(), comm.size(), what);
  std::fflush(stderr);
  comm.abort(1);
  std::exit(1);  // not reached (abort ends the process); [[noreturn]] through a virtual call
}

}  // namespace lnx::dist
