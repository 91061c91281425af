// The main of the GoogleTest binaries: OpenBLAS on the kernels this CPU can run (as the nuri
// command does), then every test.
#include <gtest/gtest.h>

#include "kernels/cpu/blas.h"

int main(int argc, char** argv) {
  nuri::cpu::reexec_for_blas_core(argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
