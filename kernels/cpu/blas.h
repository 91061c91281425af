// The OpenBLAS GEMM wrapper shared by the GEMM-based CPU kernels (linear, matmul, conv).
#pragma once

#include <cstdint>

namespace nuri::cpu {

// Row-major C [m, n] = op(A) op(B) + beta C through OpenBLAS, op(A) being [m, k] and op(B)
// [k, n]; lda, ldb and ldc are row strides, so operands are read in place. Handles empty extents.
void sgemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace nuri::cpu
