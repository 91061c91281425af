// CUDA attention (f32), exact and deterministic: one block of kThreads threads per query row
// walks the keys in chunks of kThreads with a running maximum and sum (online softmax), thread d
// keeping output column d, so no score matrix is stored. The backward recomputes the
// probabilities from the saved logsumexp: one block per query row for dQ and one per key row
// for dK and dV, each adding its terms in a fixed order (no atomics). This is the reference
// kernel that the parity tests hold the GPU to; head_dim must be at most kThreads. Calls with
// bf16 products go to the tensor-core kernels (attention_bf16.cu) where they fit, else run here
// over bf16-rounded operands.
#include <cmath>

#include "kernels/cuda/attention_bf16.h"
#include "kernels/cuda/attention_geometry.cuh"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/map.cuh"
#include "kernels/ops/attention.h"

namespace nuri::cuda {
namespace {

constexpr int kThreads = 256;
static_assert(reducible_block(kThreads));

using Geometry = AttentionGeometry;

__device__ float dot(const float* a, const float* b, int64_t n) {
  float total = 0.0f;
  for (int64_t x = 0; x < n; ++x) total += a[x] * b[x];
  return total;
}

// Block r = (b, h, i) computes out row i of head h and its logsumexp.
__global__ void forward_kernel(const float* q, const float* k, const float* v, Geometry g,
                               float* out, float* lse) {
  __shared__ float weights[kThreads];
  const int64_t rows = g.batch * g.hq * g.tq;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t i = r % g.tq, h = r / g.tq % g.hq, b = r / (g.tq * g.hq);
    const int64_t kvh = h / (g.hq / g.hkv);
    const float* qi = q + g.q_at(b, i, h);
    float top = -INFINITY, acc = 0.0f;
    double total = 0;
    const int64_t end = g.key_end(i);  // the keys past it are masked
    for (int64_t c0 = 0; c0 < end; c0 += kThreads) {
      const int64_t j = c0 + threadIdx.x;
      const bool seen = j < end && g.visible(i, j);
      const float s = seen ? dot(qi, k + g.kv_at(b, j, kvh), g.d) * g.scale : -INFINITY;
      const float new_top = fmaxf(top, block_max(s));
      const float w = s == -INFINITY ? 0.0f : expf(s - new_top);
      weights[threadIdx.x] = w;
      const float rescale = top == -INFINITY ? 0.0f : expf(top - new_top);
      total = total * rescale + block_sum(w);  // block_sum synchronises, so weights are ready
      acc *= rescale;
      if (threadIdx.x < g.d) {
        const int64_t count = end - c0 < kThreads ? end - c0 : kThreads;
        for (int64_t u = 0; u < count; ++u)
          acc += weights[u] * v[g.kv_at(b, c0 + u, kvh) + threadIdx.x];
      }
      top = new_top;
      __syncthreads();  // weights are rewritten by the next chunk
    }
    if (threadIdx.x < g.d) out[g.q_at(b, i, h) + threadIdx.x] = static_cast<float>(acc / total);
    if (threadIdx.x == 0) lse[r] = static_cast<float>(top + log(total));
  }
}

// delta[r] = sum_d grad_out[r, d] out[r, d] for each query row r = (b, h, i).
__global__ void delta_kernel(const float* grad_out, const float* out, Geometry g, float* delta) {
  const int64_t rows = g.batch * g.hq * g.tq;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t i = r % g.tq, h = r / g.tq % g.hq, b = r / (g.tq * g.hq);
    const int64_t at = g.q_at(b, i, h);
    double part = 0;
    for (int64_t x = threadIdx.x; x < g.d; x += blockDim.x)
      part += static_cast<double>(grad_out[at + x]) * out[at + x];
    part = block_sum(part);
    if (threadIdx.x == 0) delta[r] = static_cast<float>(part);
  }
}

// dQ row (b, h, i) = scale * sum_j p_ij (dO_i . v_j - delta_i) k_j.
__global__ void grad_q_kernel(const float* grad_out, const float* q, const float* k, const float* v,
                              const float* lse, const float* delta, Geometry g, float* grad_q) {
  __shared__ float ds[kThreads];
  const int64_t rows = g.batch * g.hq * g.tq;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t i = r % g.tq, h = r / g.tq % g.hq, b = r / (g.tq * g.hq);
    const int64_t kvh = h / (g.hq / g.hkv);
    const float* qi = q + g.q_at(b, i, h);
    const float* doi = grad_out + g.q_at(b, i, h);
    float acc = 0.0f;
    const int64_t end = g.key_end(i);
    for (int64_t c0 = 0; c0 < end; c0 += kThreads) {
      const int64_t j = c0 + threadIdx.x;
      float term = 0.0f;
      if (j < end && g.visible(i, j)) {
        const float p = expf(dot(qi, k + g.kv_at(b, j, kvh), g.d) * g.scale - lse[r]);
        term = p * (dot(doi, v + g.kv_at(b, j, kvh), g.d) - delta[r]);
      }
      ds[threadIdx.x] = term;
      __syncthreads();
      if (threadIdx.x < g.d) {
        const int64_t count = end - c0 < kThreads ? end - c0 : kThreads;
        for (int64_t u = 0; u < count; ++u) acc += ds[u] * k[g.kv_at(b, c0 + u, kvh) + threadIdx.x];
      }
      __syncthreads();
    }
    if (threadIdx.x < g.d) grad_q[g.q_at(b, i, h) + threadIdx.x] = acc * g.scale;
  }
}

// dK and dV row (b, kvh, j), over the query heads of the group and their rows in order:
// dV_j = sum p_ij dO_i and dK_j = scale * sum p_ij (dO_i . v_j - delta_i) q_i.
__global__ void grad_kv_kernel(const float* grad_out, const float* q, const float* k,
                               const float* v, const float* lse, const float* delta, Geometry g,
                               float* grad_k, float* grad_v) {
  __shared__ float probs[kThreads];
  __shared__ float ds[kThreads];
  const int64_t rows = g.batch * g.hkv * g.tk, group = g.hq / g.hkv;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t j = r % g.tk, kvh = r / g.tk % g.hkv, b = r / (g.tk * g.hkv);
    const float* kj = k + g.kv_at(b, j, kvh);
    const float* vj = v + g.kv_at(b, j, kvh);
    float dk = 0.0f, dv = 0.0f;
    const int64_t first = g.first_query(j);  // the queries before it do not see key j
    for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
      for (int64_t c0 = first; c0 < g.tq; c0 += kThreads) {
        const int64_t i = c0 + threadIdx.x;
        float p = 0.0f, term = 0.0f;
        if (i < g.tq && g.visible(i, j)) {
          const int64_t row = (b * g.hq + h) * g.tq + i;
          p = expf(dot(q + g.q_at(b, i, h), kj, g.d) * g.scale - lse[row]);
          term = p * (dot(grad_out + g.q_at(b, i, h), vj, g.d) - delta[row]);
        }
        probs[threadIdx.x] = p;
        ds[threadIdx.x] = term;
        __syncthreads();
        if (threadIdx.x < g.d) {
          const int64_t count = g.tq - c0 < kThreads ? g.tq - c0 : kThreads;
          for (int64_t u = 0; u < count; ++u) {
            dv += probs[u] * grad_out[g.q_at(b, c0 + u, h) + threadIdx.x];
            dk += ds[u] * q[g.q_at(b, c0 + u, h) + threadIdx.x];
          }
        }
        __syncthreads();
      }
    }
    if (threadIdx.x < g.d) {
      grad_k[g.kv_at(b, j, kvh) + threadIdx.x] = dk * g.scale;
      grad_v[g.kv_at(b, j, kvh) + threadIdx.x] = dv;
    }
  }
}

void require_head_dim(const Tensor& q) {
  NURI_CHECK(q.size(3) <= kThreads, "attention: the CUDA kernel takes head_dim up to ", kThreads,
             ", got ", q.size(3));
}

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                       const AttentionOptions& options, Tensor& out, Tensor& lse) {
  require_f32("attention", q, "q");
  if (options.bf16_products) {
    if (tensor_core_attention_fits(q)) {
      tensor_core_attention_forward(q, k, v, options, out, lse);
    } else {
      attention_forward(rounded_to_bf16(q), rounded_to_bf16(k), rounded_to_bf16(v),
                        f32_products(options), out, lse);
    }
    return;
  }
  require_head_dim(q);
  const Geometry g = attention_geometry(q, k, options);
  const int64_t rows = g.batch * g.hq * g.tq;
  if (rows == 0) return;
  NURI_CUDA_CHECK(cudaSetDevice(q.device().index));
  forward_kernel<<<row_blocks(rows), kThreads>>>(q.data<float>(), k.data<float>(), v.data<float>(),
                                                 g, out.data<float>(), lse.data<float>());
  NURI_CUDA_CHECK_LAUNCH();
}

void attention_backward(const Tensor& grad_out, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& out, const Tensor& lse, const AttentionOptions& options,
                        Tensor& grad_q, Tensor& grad_k, Tensor& grad_v) {
  require_f32("attention backward", grad_out, "grad_out");
  const bool tensor_cores = options.bf16_products && tensor_core_attention_fits(q);
  if (options.bf16_products && !tensor_cores) {
    attention_backward(rounded_to_bf16(grad_out), rounded_to_bf16(q), rounded_to_bf16(k),
                       rounded_to_bf16(v), out, lse, f32_products(options), grad_q, grad_k, grad_v);
    return;
  }
  if (!tensor_cores) require_head_dim(q);
  const Geometry g = attention_geometry(q, k, options);
  const int64_t q_rows = g.batch * g.hq * g.tq, kv_rows = g.batch * g.hkv * g.tk;
  NURI_CUDA_CHECK(cudaSetDevice(q.device().index));
  Tensor delta = Tensor::empty({q_rows}, DType::f32, q.device());
  // The tensor cores read the output gradient rounded to bf16; delta reads the same values.
  const Tensor delta_grad = tensor_cores ? rounded_to_bf16(grad_out) : grad_out;
  if (q_rows > 0) {
    delta_kernel<<<row_blocks(q_rows), kThreads>>>(delta_grad.data<float>(), out.data<float>(), g,
                                                   delta.data<float>());
    NURI_CUDA_CHECK_LAUNCH();
  }
  if (tensor_cores) {
    tensor_core_attention_backward(grad_out, q, k, v, lse, delta, options, grad_q, grad_k, grad_v);
    return;
  }
  if (q_rows > 0) {
    grad_q_kernel<<<row_blocks(q_rows), kThreads>>>(
        grad_out.data<float>(), q.data<float>(), k.data<float>(), v.data<float>(),
        lse.data<float>(), delta.data<float>(), g, grad_q.data<float>());
    NURI_CUDA_CHECK_LAUNCH();
  }
  if (kv_rows > 0) {
    grad_kv_kernel<<<row_blocks(kv_rows), kThreads>>>(
        grad_out.data<float>(), q.data<float>(), k.data<float>(), v.data<float>(),
        lse.data<float>(), q_rows > 0 ? delta.data<float>() : nullptr, g, grad_k.data<float>(),
        grad_v.data<float>());
    NURI_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace nuri::cuda
