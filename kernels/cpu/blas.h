// The OpenBLAS GEMM wrapper shared by the GEMM-based CPU kernels (linear, matmul, conv).
#pragma once

#include <cstdint>
#include <string>

namespace nuri::cpu {

// Row-major C [m, n] = op(A) op(B) + beta C through OpenBLAS, op(A) being [m, k] and op(B)
// [k, n]; lda, ldb and ldc are row strides, so operands are read in place. Handles empty extents.
void sgemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// The kernel family OpenBLAS runs on this CPU ("Haswell", "SkylakeX", ...).
std::string blas_core();

// The kernel family to ask OpenBLAS for instead of its own choice, or "" when its choice stands.
// OpenBLAS falls back to an SSE3-era family ("Prescott") on a CPU model newer than it knows; on
// such a CPU with AVX-512 this is "SkylakeX", with AVX2 and FMA "Haswell" (4-5x the GEMM speed).
std::string better_blas_core();

// When better_blas_core() names a family and OPENBLAS_CORETYPE is unset, sets it and executes
// this program again with the same arguments (OpenBLAS reads it only while it loads, before
// main); otherwise returns. Programs call it first thing in main.
void reexec_for_blas_core(char** argv);

}  // namespace nuri::cpu
