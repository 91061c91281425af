// NURI_HOST_DEVICE marks a function that both the CPU kernels and the CUDA kernels compile, so
// that a formula is written once and both backends compute the same expression.
#pragma once

#ifdef __CUDACC__
#define NURI_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define NURI_HOST_DEVICE inline
#endif
