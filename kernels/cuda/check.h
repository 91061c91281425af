// Error checks for CUDA runtime calls and kernel launches.
#pragma once

#include <cuda_runtime.h>

#include "kernels/error.h"

// Throws nuri::Error naming the call and CUDA's message when a runtime call fails.
#define NURI_CUDA_CHECK(call)                                                                \
  do {                                                                                       \
    const cudaError_t nuri_status = (call);                                                  \
    if (nuri_status != cudaSuccess)                                                          \
      ::nuri::fail(#call, " failed: ", cudaGetErrorString(nuri_status), " (", __FILE__, ":", \
                   __LINE__, ")");                                                           \
  } while (0)

// Checks the last kernel launch.
#define NURI_CUDA_CHECK_LAUNCH() NURI_CUDA_CHECK(cudaGetLastError())

namespace nuri::cuda {

// Blocks of `threads` threads to cover n elements, capped to what a grid may hold.
inline unsigned grid_for(int64_t n, unsigned threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 * 32 ? 65535 * 32 : blocks));
}

}  // namespace nuri::cuda
