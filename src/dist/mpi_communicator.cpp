// The MPI backend of Communicator (built when CMake found MPI: LNX_HAVE_MPI).
#ifdef LNX_HAVE_MPI

#include <sched.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <thread>

#include "dist/request_internal.h"
#include "tensor/cpu/parallel.h"
#include "tensor/error.h"

namespace lnx::dist {

namespace {

using Clock = std::chrono::steady_clock;

// Bytes per message of a large broadcast or gather (MPI counts are int).
constexpr int64_t kPiece = int64_t{1} << 30;

MPI_Datatype mpi_type(DType d, const char* what) {
  switch (d) {
    case DType::f32:
      return MPI_FLOAT;
    case DType::f64:
      return MPI_DOUBLE;
    case DType::i32:
      return MPI_INT32_T;
    case DType::i64:
      return MPI_INT64_T;
  }
  throw DTypeError(fmt::format("[dist] {}: dtype {} cannot be communicated", what, dtype_name(d)));
}

int as_int(int64_t n, const char* what) {
  LNX_CHECK(n >= 0 && n <= INT_MAX, ValueError, "[dist] {}: count {} is outside what one MPI call takes", what, n);
  return static_cast<int>(n);
}

class MpiWorld final : public Communicator {
 public:
  MpiWorld() {
    int ready = 0;
    MPI_Initialized(&ready);
    if (!ready) {
      // Only this (the main) thread calls MPI; OpenMP workers and the data loader never do.
      int provided = 0;
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      owns_init_ = true;
      if (provided < MPI_THREAD_FUNNELED)
        throw DistributedError(
            "[dist] this MPI library does not support MPI_THREAD_FUNNELED (MPI calls from the main thread of a "
            "threaded process)");
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    const int expected = launched_ranks();
    if (expected > 1 && size_ != expected)
      throw DistributedError(fmt::format(
          "[dist] the launcher started {} ranks but MPI sees {}: each process initialised MPI alone (with srun, pass "
          "--mpi=pmix or --mpi=pmi2)",
          expected, size_));
    // Threads per rank, unless the user chose them: the cores the launcher bound this rank to,
    // or, when it is not bound (it may run on every core), the machine's cores divided among
    // the ranks on it.
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
    if (!std::getenv("OMP_NUM_THREADS")) {
      const int machine = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
      int allowed = machine;
      cpu_set_t set;
      if (sched_getaffinity(0, sizeof(set), &set) == 0) allowed = CPU_COUNT(&set);
      set_num_threads(allowed < machine ? allowed : std::max(1, machine / std::max(1, local_size_)));
    }
  }
  ~MpiWorld() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owns_init_ && !finalized) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  Request allreduce_sum_start(void* data, int64_t count, DType dtype, const char* what) override {
    Request r = make(what);
    check(MPI_Iallreduce(MPI_IN_PLACE, data, as_int(count, what), mpi_type(dtype, what), MPI_SUM, MPI_COMM_WORLD,
                         &impl(r).request),
          what);
    return r;
  }

  Request reduce_scatter_sum_start(const void* send, void* recv, const std::vector<int64_t>& counts, DType dtype,
                                   const char* what) override {
    Request r = make(what);
    set_counts(impl(r), counts, what);
    check(MPI_Ireduce_scatter(send, recv, impl(r).counts.data(), mpi_type(dtype, what), MPI_SUM, MPI_COMM_WORLD,
                              &impl(r).request),
          what);
    return r;
  }

  Request allgather_start(const void* send, void* recv, const std::vector<int64_t>& counts, DType dtype,
                          const char* what) override {
    Request r = make(what);
    Request::Impl& i = impl(r);
    set_counts(i, counts, what);
    const char* mine = static_cast<const char*>(recv) +
                       static_cast<size_t>(i.displacements[static_cast<size_t>(rank_)]) * dtype_size(dtype);
    check(MPI_Iallgatherv(send == mine ? MPI_IN_PLACE : send, i.counts[static_cast<size_t>(rank_)],
                          mpi_type(dtype, what), recv, i.counts.data(), i.displacements.data(), mpi_type(dtype, what),
                          MPI_COMM_WORLD, &i.request),
          what);
    return r;
  }

  bool test(Request& r) override {
    if (!r.active()) return true;
    int done = 0;
    check(MPI_Test(&impl(r).request, &done, MPI_STATUS_IGNORE), impl(r).what.c_str());
    if (done) release(r);
    return done != 0;
  }

  void wait(Request& r) override {
    if (!r.active()) return;
    Request::Impl& i = impl(r);
    // Spin for the first half millisecond (yielding, in case ranks share a core): most
    // collectives of a step finish within microseconds of each other, and a sleep costs tens of
    // them. Then sleep in growing steps up to a millisecond, leaving the cores to the others.
    const auto started = Clock::now();
    const auto deadline = started + std::chrono::duration<double>(timeout_s_);
    int64_t sleeps = 0;
    for (;;) {
      int done = 0;
      check(MPI_Test(&i.request, &done, MPI_STATUS_IGNORE), i.what.c_str());
      if (done) break;
      if (Clock::now() - started < std::chrono::microseconds(500))
        std::this_thread::yield();
      else
        std::this_thread::sleep_for(std::chrono::microseconds(std::min<int64_t>(1000, 10 * ++sleeps)));
      if (Clock::now() > deadline)
        throw DistributedError(fmt::format(
            "[dist] {} did not complete within {:g} s (train.collective_timeout): another rank died, hangs or "
            "stopped early; see its output",
            i.what, timeout_s_));
    }
    release(r);
  }

  void broadcast(std::string& bytes, int root, const char* what) override {
    int64_t n = static_cast<int64_t>(bytes.size());
    Request r = make(what);
    check(MPI_Ibcast(&n, 1, MPI_INT64_T, root, MPI_COMM_WORLD, &impl(r).request), what);
    wait(r);
    bytes.resize(static_cast<size_t>(n));
    for (int64_t at = 0; at < n; at += kPiece) {
      Request piece = make(what);
      check(MPI_Ibcast(bytes.data() + at, static_cast<int>(std::min(kPiece, n - at)), MPI_BYTE, root, MPI_COMM_WORLD,
                       &impl(piece).request),
            what);
      wait(piece);
    }
  }

  std::vector<std::string> gather(const std::string& bytes, int root, const char* what) override {
    int64_t n = static_cast<int64_t>(bytes.size());
    std::vector<int64_t> sizes(static_cast<size_t>(size_));
    Request r = make(what);
    check(MPI_Igather(&n, 1, MPI_INT64_T, sizes.data(), 1, MPI_INT64_T, root, MPI_COMM_WORLD, &impl(r).request), what);
    wait(r);
    std::vector<std::string> all;
    if (rank_ == root) all.resize(static_cast<size_t>(size_));
    // Point to point in pieces, one sender at a time.
    for (int from = 0; from < size_; ++from) {
      if (from == root) {
        if (rank_ == root) all[static_cast<size_t>(root)] = bytes;
        continue;
      }
      if (rank_ != root && rank_ != from) continue;
      const int64_t total = rank_ == root ? sizes[static_cast<size_t>(from)] : n;
      if (rank_ == root) all[static_cast<size_t>(from)].resize(static_cast<size_t>(total));
      for (int64_t at = 0; at < total; at += kPiece) {
        const int len = static_cast<int>(std::min(kPiece, total - at));
        Request piece = make(what);
        if (rank_ == root)
          check(MPI_Irecv(all[static_cast<size_t>(from)].data() + at, len, MPI_BYTE, from, kGatherTag, MPI_COMM_WORLD,
                          &impl(piece).request),
                what);
        else
          check(MPI_Isend(bytes.data() + at, len, MPI_BYTE, root, kGatherTag, MPI_COMM_WORLD, &impl(piece).request),
                what);
        wait(piece);
      }
    }
    return all;
  }

  void barrier(const char* what) override {
    Request r = make(what);
    check(MPI_Ibarrier(MPI_COMM_WORLD, &impl(r).request), what);
    wait(r);
  }

  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this satisfies [[noreturn]]
  }

 private:
  static constexpr int kGatherTag = 7301;

  static Request make(const char* what) { return make_request(what); }
  static Request::Impl& impl(Request& r) { return state_of(r); }
  static void release(Request& r) { finish(r); }
  void set_counts(Request::Impl& i, const std::vector<int64_t>& counts, const char* what) const {
    LNX_CHECK(static_cast<int>(counts.size()) == size_, ValueError, "[dist] {}: {} counts for {} ranks", what,
              counts.size(), size_);
    int64_t at = 0;
    for (int64_t c : counts) {
      i.counts.push_back(as_int(c, what));
      i.displacements.push_back(as_int(at, what));
      at += c;
    }
  }
  void check(int rc, const char* what) const {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    throw DistributedError(fmt::format("[dist] {} failed: {}", what, std::string(text, len)));
  }

  int rank_ = 0, size_ = 1, local_size_ = 1;
  bool owns_init_ = false;
};

}  // namespace

Communicator* mpi_world_communicator() {
  if (!launched()) return nullptr;
  static MpiWorld world;  // finalised at exit
  return &world;
}

}  // namespace lnx::dist

#endif  // LNX_HAVE_MPI
