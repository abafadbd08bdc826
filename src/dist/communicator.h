// Ranks of a data-parallel run and the collectives between them, over MPI (Open MPI, MPICH,
// whatever mpirun or srun launched the processes) when the library was built with it, and a
// single rank otherwise.
//
// Every collective is started non-blocking and waited for with a deadline: a rank that died or
// hangs makes the others throw DistributedError naming the collective after timeout seconds
// instead of waiting forever. Waiting polls (MPI_Test), which also drives the progress of the
// other collectives in flight: Open MPI's shared-memory and TCP transports progress only
// inside MPI calls. Collectives must be started in the same order on every rank (MPI's rule).
//
// Counts are elements of the given dtype (f32, f64, i64) or bytes (i8-free API: std::string).
#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "tensor/dtype.h"

namespace lnx::dist {

class Communicator;

// A collective in flight; wait() it (or let Communicator::wait_all do it) before touching its
// buffers. Moving is allowed, copying is not.
class Request {
 public:
  Request();
  ~Request();
  Request(Request&&) noexcept;
  Request& operator=(Request&&) noexcept;
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;
  bool active() const;
  struct Impl;

 private:
  friend class Communicator;
  std::unique_ptr<Impl> impl_;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  // The processes of this run: MPI_COMM_WORLD when a launcher (mpirun, mpiexec, srun) started
  // the process and the library has MPI; one rank otherwise. MPI is initialised on the first
  // call and finalised at exit. A build without MPI started by a launcher as one of several
  // ranks throws DistributedError (it would otherwise train alone, unaware of the others).
  // When the process was launched by MPI and OMP_NUM_THREADS is not set, each rank's thread
  // count becomes the cores it may run on divided by the ranks on its machine.
  static Communicator& world();
  // Always one rank (a run that must not talk to the others, and the tests' reference).
  static Communicator& self();

  virtual int rank() const = 0;
  virtual int size() const = 0;
  bool root() const { return rank() == 0; }

  // Seconds a collective may wait (default 600). ValueError unless positive.
  void set_timeout(double seconds);
  double timeout() const { return timeout_s_; }

  // ---- non-blocking (in place where one buffer is given) ----
  // data[i] = Σ over ranks of data[i].
  virtual Request allreduce_sum_start(void* data, int64_t count, DType dtype, const char* what) = 0;
  // Reduce-scatter: send holds Σ_r counts[r] elements in rank order; rank r receives into recv
  // the sum over ranks of its own part (counts[r] elements).
  virtual Request reduce_scatter_sum_start(const void* send, void* recv, const std::vector<int64_t>& counts,
                                           DType dtype, const char* what) = 0;
  // All-gather of unequal parts: rank r's counts[r] elements of send land at offset
  // Σ_{q<r} counts[q] of recv on every rank.
  virtual Request allgather_start(const void* send, void* recv, const std::vector<int64_t>& counts, DType dtype,
                                  const char* what) = 0;
  // Whether the collective is done, without waiting; drives its progress (see the banner).
  virtual bool test(Request& request) = 0;
  // Waits until the collective is done; DistributedError after timeout() seconds.
  virtual void wait(Request& request) = 0;
  void wait_all(std::vector<Request>& requests);

  // ---- blocking ----
  void allreduce_sum(double* data, int64_t count, const char* what);
  double allreduce_sum(double value, const char* what);
  // Root's bytes on every rank (any size: sent in pieces).
  virtual void broadcast(std::string& bytes, int root, const char* what) = 0;
  // Every rank's bytes, in rank order, on root (empty elsewhere).
  virtual std::vector<std::string> gather(const std::string& bytes, int root, const char* what) = 0;
  virtual void barrier(const char* what) = 0;
  // Ends every rank of the run with this exit code (MPI_Abort); exits this process when alone.
  [[noreturn]] virtual void abort(int code) = 0;

 protected:
  // For the backends: a fresh request, its state, and its end.
  static Request make_request(const char* what);
  static Request::Impl& state_of(Request& r) { return *r.impl_; }
  static void finish(Request& r);

  double timeout_s_ = 600;
};

[[noreturn]] void report_and_abort(Communicator& comm, const char* what);

// Runs fn() and returns its result. With several ranks an exception does not leave: the rank
// prints "error: rank r of n: <what>" and ends every rank (abort(1)), since the others would
// otherwise wait for it in their next collective until the timeout.
template <class F> auto run_or_abort(Communicator& comm, F&& fn) -> decltype(fn()) {
  if (comm.size() == 1) return fn();
  try {
    return fn();
  } catch (const std::exception& e) {
    report_and_abort(comm, e.what());
  }
}

}  // namespace lnx::dist
