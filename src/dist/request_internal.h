// What a Request holds (private to dist/): the MPI request and what the arrays of a vector
// collective need to outlive it.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "dist/communicator.h"

#ifdef LNX_HAVE_MPI
#include <mpi.h>
#endif

namespace lnx::dist {

struct Request::Impl {
  std::string what;  // the collective, for a timeout's message
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::vector<int> counts, displacements;  // vector collectives read them until they complete
#ifdef LNX_HAVE_MPI
  MPI_Request request = MPI_REQUEST_NULL;
#endif
};

// Whether a launcher started this process, and as how many ranks (1 when it does not say).
bool launched();
int launched_ranks();

// The single-rank communicator (communicator.cpp) and the MPI one (mpi_communicator.cpp).
Communicator& single_rank_communicator();
#ifdef LNX_HAVE_MPI
Communicator* mpi_world_communicator();  // null when no launcher started this process
#endif

}  // namespace lnx::dist
