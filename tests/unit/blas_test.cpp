// OpenBLAS runs kernels this CPU can use: where it fell back to old ones on a CPU model newer than
// it knows, the test binary's main has run it again with better ones.
#include <gtest/gtest.h>

#include <cstdlib>

#include "kernels/cpu/blas.h"

namespace nuri {
namespace {

TEST(Blas, RunsKernelsThatThisCpuCanUse) {
  const std::string core = cpu::blas_core();
  EXPECT_FALSE(core.empty());
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  if (forced != nullptr && !cpu::better_blas_core().empty())
    GTEST_SKIP() << "OPENBLAS_CORETYPE=" << forced << " chooses the kernels (" << core << ")";
  EXPECT_EQ(cpu::better_blas_core(), "") << "OpenBLAS runs its " << core << " kernels";
}

}  // namespace
}  // namespace nuri
