// Error checks for CUDA runtime calls and kernel launches.
#pragma once

#include <cuda_runtime.h>

#include "kernels/error.h"

namespace nuri::cuda {

// What a CUDA runtime status says; a library (cuBLAS, NCCL) adds the same two overloads for its
// own status type so that NURI_CUDA_CHECK serves its calls too.
inline bool succeeded(cudaError_t status) {
  return status == cudaSuccess;
}
inline const char* describe(cudaError_t status) {
  return cudaGetErrorString(status);
}

}  // namespace nuri::cuda

// Throws nuri::Error naming the call and the library's message when a call fails. The runtime's
// last error is cleared first, so that the next launch check does not blame an unrelated kernel.
#define NURI_CUDA_CHECK(call)                                                                    \
  do {                                                                                           \
    const auto nuri_status = (call);                                                             \
    if (!::nuri::cuda::succeeded(nuri_status)) {                                                 \
      static_cast<void>(cudaGetLastError());                                                     \
      ::nuri::fail(#call, " failed: ", ::nuri::cuda::describe(nuri_status), " (", __FILE__, ":", \
                   __LINE__, ")");                                                               \
    }                                                                                            \
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
