// Test entry point. Loads BLAS up front so its one log line (when the environment asks for
// slower GEMM kernels and we override it) appears once at the top of the run.
#include <gtest/gtest.h>

#include "tensor/cpu/blas.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  lnx::blas_info();
  return RUN_ALL_TESTS();
}
