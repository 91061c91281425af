// The cuBLASLt GEMM wrapper shared by the GEMM-based CUDA kernels (linear, matmul), with the
// CPU's row-major conventions (kernels/cpu/blas.h).
#pragma once

#include <cstdint>

namespace nuri::cuda {

// The element type of A and B. C, the bias and the accumulation are f32 either way: bf16 inputs
// run on tensor cores with f32 accumulation (mixed precision), f32 ones in full f32 (no TF32).
enum class GemmInputs { f32, bf16 };

// For each of `batches` matrices (element strides stride_a, stride_b, stride_c between them; 0
// shares one matrix): row-major C [m, n] = op(A) op(B) + beta C (+ bias [n] on every row when
// bias is not null), op(A) being [m, k] and op(B) [k, n]. lda, ldb and ldc are row strides.
// Runs on the current device. Handles empty extents.
void gemm(GemmInputs inputs, bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
          const void* a, int64_t lda, const void* b, int64_t ldb, float beta, float* c, int64_t ldc,
          int64_t batches = 1, int64_t stride_a = 0, int64_t stride_b = 0, int64_t stride_c = 0,
          const float* bias = nullptr);

// gemm with f32 inputs.
inline void sgemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                  int64_t ldc, int64_t batches = 1, int64_t stride_a = 0, int64_t stride_b = 0,
                  int64_t stride_c = 0, const float* bias = nullptr) {
  gemm(GemmInputs::f32, transpose_a, transpose_b, m, n, k, a, lda, b, ldb, beta, c, ldc, batches,
       stride_a, stride_b, stride_c, bias);
}

}  // namespace nuri::cuda
