// Kernel declaration and dispatch: every op has one CPU and one CUDA kernel with the same
// signature, in namespaces nuri::cpu and nuri::cuda, found by the op's name.
#pragma once

#include "kernels/error.h"
#include "kernels/profiler.h"

// Declares kernel `name` with parameter list `params` for both backends.
#define NURI_KERNEL(name, params) \
  namespace cpu {                 \
  void name params;               \
  }                               \
  namespace cuda {                \
  void name params;               \
  }

namespace nuri::detail {
// Throws the error for a CUDA tensor reaching a kernel that this build or op lacks.
[[noreturn]] void no_cuda_kernel(const char* kernel);
}  // namespace nuri::detail

// Runs the kernel of the backend that owns `device`, timed while the kernel profiler runs (the
// scope lives until the end of the full expression, so it spans the call and the evaluation of
// its arguments).
#ifdef NURI_WITH_CUDA
#define NURI_DISPATCH(device, kernel, ...) \
  (::nuri::KernelScope(#kernel, (device)), \
   (device).is_cuda() ? ::nuri::cuda::kernel(__VA_ARGS__) : ::nuri::cpu::kernel(__VA_ARGS__))
#else
#define NURI_DISPATCH(device, kernel, ...)                                               \
  (::nuri::KernelScope(#kernel, (device)), (device).is_cuda()                            \
                                               ? ::nuri::detail::no_cuda_kernel(#kernel) \
                                               : ::nuri::cpu::kernel(__VA_ARGS__))
#endif
