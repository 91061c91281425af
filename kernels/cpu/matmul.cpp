// CPU kernels of matmul.
#include <omp.h>

#include <algorithm>

#include "kernels/cpu/blas.h"
#include "kernels/ops/checks.h"
#include "kernels/ops/matmul.h"

namespace nuri::cpu {

namespace {

// GEMMs below this many multiply-adds are too small for BLAS threads to pay off.
constexpr int64_t kSmallGemm = 1 << 18;

// Runs fn(i) for every batch. With several batches that can occupy the threads (or are too small
// to split), batches run in parallel and each GEMM on one thread: OpenBLAS's OpenMP build runs
// single-threaded inside a parallel region. Otherwise batches run in turn on threaded GEMMs.
template <class Fn>
void for_each_batch(int64_t batches, int64_t gemm_size, Fn fn) {
  const bool across = batches > 1 && (batches >= omp_get_max_threads() || gemm_size < kSmallGemm);
  if (across) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < batches; ++i) fn(i);
  } else {
    for (int64_t i = 0; i < batches; ++i) fn(i);
  }
}

}  // namespace

void matmul_forward(const Tensor& a, const Tensor& b, const MatmulShape& s, Tensor& out) {
  checks::cpu_f32("matmul", a, "a");
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* pc = out.data<float>();
  const int64_t lda = s.transpose_a ? s.m : s.k;
  const int64_t ldb = s.transpose_b ? s.k : s.n;
  if (s.shared_b && !s.transpose_a) {
    // Every batch of a stacks into one [batches * m, k] matrix: one big GEMM.
    sgemm(false, s.transpose_b, s.batches * s.m, s.n, s.k, pa, lda, pb, ldb, 0.0f, pc, s.n);
    return;
  }
  const int64_t b_stride = s.shared_b ? 0 : s.k * s.n;
  for_each_batch(s.batches, s.m * s.n * s.k, [&](int64_t i) {
    sgemm(s.transpose_a, s.transpose_b, s.m, s.n, s.k, pa + i * s.m * s.k, lda, pb + i * b_stride,
          ldb, 0.0f, pc + i * s.m * s.n, s.n);
  });
}

void matmul_backward(const Tensor& grad, const Tensor& a, const Tensor& b, const MatmulShape& s,
                     Tensor& grad_a, Tensor& grad_b) {
  checks::cpu_f32("matmul backward", grad, "grad");
  const float* g = grad.data<float>();
  const int64_t mn = s.m * s.n, mk = s.m * s.k, kn = s.k * s.n;
  const int64_t lda = s.transpose_a ? s.m : s.k;
  const int64_t ldb = s.transpose_b ? s.k : s.n;
  if (grad_a.defined()) {
    const float* pb = b.data<float>();
    float* da = grad_a.data<float>();
    const int64_t b_stride = s.shared_b ? 0 : kn;
    if (!s.transpose_a && s.shared_b) {
      // da [batches * m, k] = g [batches * m, n] op(b)^T in one GEMM.
      sgemm(false, !s.transpose_b, s.batches * s.m, s.k, s.n, g, s.n, pb, ldb, 0.0f, da, s.k);
    } else {
      for_each_batch(s.batches, mn * s.k, [&](int64_t i) {
        if (s.transpose_a) {  // da [k, m] = op(b) g^T
          sgemm(s.transpose_b, true, s.k, s.m, s.n, pb + i * b_stride, ldb, g + i * mn, s.n, 0.0f,
                da + i * mk, s.m);
        } else {  // da [m, k] = g op(b)^T
          sgemm(false, !s.transpose_b, s.m, s.k, s.n, g + i * mn, s.n, pb + i * b_stride, ldb, 0.0f,
                da + i * mk, s.k);
        }
      });
    }
  }
  if (grad_b.defined()) {
    const float* pa = a.data<float>();
    float* db = grad_b.data<float>();
    // One batch's contribution to db, added onto it when beta is 1.
    auto batch_grad_b = [&](int64_t i, float* out, float beta) {
      if (s.transpose_b) {  // db [n, k] = g^T op(a)
        sgemm(true, s.transpose_a, s.n, s.k, s.m, g + i * mn, s.n, pa + i * mk, lda, beta, out,
              s.k);
      } else {  // db [k, n] = op(a)^T g
        sgemm(!s.transpose_a, false, s.k, s.n, s.m, pa + i * mk, lda, g + i * mn, s.n, beta, out,
              s.n);
      }
    };
    if (!s.shared_b) {
      for_each_batch(s.batches, mn * s.k, [&](int64_t i) { batch_grad_b(i, db + i * kn, 0.0f); });
    } else if (!s.transpose_a) {
      // Summed over batches: a and g stack into [batches * m, .] matrices, one GEMM.
      if (s.transpose_b) {
        sgemm(true, false, s.n, s.k, s.batches * s.m, g, s.n, pa, s.k, 0.0f, db, s.k);
      } else {
        sgemm(true, false, s.k, s.n, s.batches * s.m, pa, s.k, g, s.n, 0.0f, db, s.n);
      }
    } else {
      // Summed over batches in order (deterministic), each GEMM threaded.
      if (s.batches == 0) std::fill(db, db + kn, 0.0f);
      for (int64_t i = 0; i < s.batches; ++i) batch_grad_b(i, db, i == 0 ? 0.0f : 1.0f);
    }
  }
}

}  // namespace nuri::cpu
