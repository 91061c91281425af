// CUDA kernels of matmul: each product is one strided-batched cuBLASLt GEMM (a shared b has
// stride 0), with the CPU kernel's operand conventions.
#include "kernels/cuda/blas.h"
#include "kernels/cuda/map.cuh"
#include "kernels/ops/matmul.h"

namespace nuri::cuda {

void matmul_forward(const Tensor& a, const Tensor& b, const MatmulShape& s, Tensor& out) {
  require_f32("matmul", a, "a");
  const int64_t lda = s.transpose_a ? s.m : s.k;
  const int64_t ldb = s.transpose_b ? s.k : s.n;
  NURI_CUDA_CHECK(cudaSetDevice(a.device().index));
  sgemm(s.transpose_a, s.transpose_b, s.m, s.n, s.k, a.data<float>(), lda, b.data<float>(), ldb,
        0.0f, out.data<float>(), s.n, s.batches, s.m * s.k, s.shared_b ? 0 : s.k * s.n, s.m * s.n);
}

void matmul_backward(const Tensor& grad, const Tensor& a, const Tensor& b, const MatmulShape& s,
                     Tensor& grad_a, Tensor& grad_b) {
  require_f32("matmul backward", grad, "grad");
  const float* g = grad.data<float>();
  const int64_t mn = s.m * s.n, mk = s.m * s.k, kn = s.k * s.n;
  const int64_t lda = s.transpose_a ? s.m : s.k;
  const int64_t ldb = s.transpose_b ? s.k : s.n;
  NURI_CUDA_CHECK(cudaSetDevice(grad.device().index));
  if (grad_a.defined()) {
    const float* pb = b.data<float>();
    const int64_t b_stride = s.shared_b ? 0 : kn;
    if (s.transpose_a) {  // da [k, m] = op(b) g^T
      sgemm(s.transpose_b, true, s.k, s.m, s.n, pb, ldb, g, s.n, 0.0f, grad_a.data<float>(), s.m,
            s.batches, b_stride, mn, mk);
    } else {  // da [m, k] = g op(b)^T
      sgemm(false, !s.transpose_b, s.m, s.k, s.n, g, s.n, pb, ldb, 0.0f, grad_a.data<float>(), s.k,
            s.batches, mn, b_stride, mk);
    }
  }
  if (grad_b.defined()) {
    const float* pa = a.data<float>();
    float* db = grad_b.data<float>();
    // One batch's db, or all of them at stride kn when b is not shared; beta 1 adds onto db.
    auto batch_grad_b = [&](int64_t first, int64_t batches, float* out, float beta) {
      const float* ga = g + first * mn;
      const float* aa = pa + first * mk;
      if (s.transpose_b) {  // db [n, k] = g^T op(a)
        sgemm(true, s.transpose_a, s.n, s.k, s.m, ga, s.n, aa, lda, beta, out, s.k, batches, mn, mk,
              kn);
      } else {  // db [k, n] = op(a)^T g
        sgemm(!s.transpose_a, false, s.k, s.n, s.m, aa, lda, ga, s.n, beta, out, s.n, batches, mk,
              mn, kn);
      }
    };
    if (!s.shared_b) {
      batch_grad_b(0, s.batches, db, 0.0f);
    } else if (!s.transpose_a) {
      // Summed over batches: a and g stack into [batches * m, .] matrices, one GEMM.
      if (s.transpose_b) {
        sgemm(true, false, s.n, s.k, s.batches * s.m, g, s.n, pa, s.k, 0.0f, db, s.k);
      } else {
        sgemm(true, false, s.k, s.n, s.batches * s.m, pa, s.k, g, s.n, 0.0f, db, s.n);
      }
    } else {
      // Summed over batches in order (deterministic): the first writes, the others add.
      if (s.batches == 0) {
        launch_map(grad, kn, [=] __device__(int64_t i) { db[i] = 0.0f; });
      }
      for (int64_t i = 0; i < s.batches; ++i) batch_grad_b(i, 1, db, i == 0 ? 0.0f : 1.0f);
    }
  }
}

}  // namespace nuri::cuda
