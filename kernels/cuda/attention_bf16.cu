// Flash attention on bf16 tensor cores (WMMA 16 x 16 x 16, f32 accumulators). A block of four
// warps takes a tile of 64 rows, 16 per warp, and walks the 64-row tiles of the other side through
// shared memory, converting f32 to bf16 as it loads. Scores land in shared memory, where each
// pair of lanes owns one row for the softmax, so the kernels never depend on the accumulator
// fragments' register layout.
// - Forward: one block per (query tile, head, batch) keeps a running maximum and sum per row and
//   its output rows in shared memory, rescaled before each P V product.
// - Backward: one block per (key tile, kv head, batch) adds dK and dV over the query heads of its
//   group and their query tiles in order; one block per (query tile, head, batch) adds dQ over
//   the key tiles in order. Both recompute P from the saved lse; no atomics, so the results are
//   deterministic.
// Tiles that the mask hides entirely are skipped.
#include <cuda_bf16.h>
#include <mma.h>

#include <algorithm>
#include <type_traits>

#include "kernels/cuda/attention_bf16.h"
#include "kernels/cuda/attention_geometry.cuh"
#include "kernels/cuda/check.h"

namespace nuri::cuda {
namespace {

using namespace nvcuda;
using bf16 = __nv_bfloat16;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kTile = 64;    // rows of a tile on either side, 16 per warp
constexpr int kBf16Pad = 8;  // bf16 row padding (WMMA needs ld % 8 == 0)
constexpr int kF32Pad = 4;   // f32 row padding (ld % 4 == 0)
constexpr int kScoreLd = kTile + kF32Pad;
constexpr int kProbLd = kTile + kBf16Pad;
constexpr int kMaxHeadDim = 128;

using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major>;
using FragB = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major>;
using FragBt = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major>;
using FragAcc = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

// Bytes of the shared-memory regions, each a multiple of 128 so that every region (and every
// 16-row, 16-column fragment inside one) keeps WMMA's 32-byte alignment.
constexpr size_t bf16_tile_bytes(int d) {
  return size_t{kTile} * (d + kBf16Pad) * sizeof(bf16);
}
constexpr size_t score_bytes() {
  return size_t{kWarps} * 16 * kScoreLd * sizeof(float);
}
constexpr size_t prob_bytes() {
  return size_t{kWarps} * 16 * kProbLd * sizeof(bf16);
}
constexpr size_t out_rows_bytes(int d) {
  return size_t{kWarps} * 16 * (d + kF32Pad) * sizeof(float);
}
constexpr size_t forward_bytes(int d) {
  return 3 * bf16_tile_bytes(d) + score_bytes() + prob_bytes() + out_rows_bytes(d);
}
// The two score regions double as the staging of each warp's 16 output rows at the end.
static_assert(2 * score_bytes() >= out_rows_bytes(kMaxHeadDim));
constexpr size_t grad_kv_bytes(int d) {
  return 4 * bf16_tile_bytes(d) + 2 * score_bytes() + 2 * prob_bytes() + 2 * kTile * sizeof(float);
}
constexpr size_t grad_q_bytes(int d) {
  return 4 * bf16_tile_bytes(d) + 2 * score_bytes() + prob_bytes();
}

// Rows [first, first + kTile) of a [rows, stride] f32 matrix at `base` into a bf16 tile with
// rows of d + kBf16Pad; rows at or past `limit` are zeros.
template <int D>
__device__ void load_tile(const float* base, int64_t stride, int64_t first, int64_t limit,
                          bf16* tile) {
  for (int e = threadIdx.x; e < kTile * D; e += kThreads) {
    const int r = e / D, c = e % D;
    const int64_t row = first + r;
    tile[r * (D + kBf16Pad) + c] = __float2bfloat16(row < limit ? base[row * stride + c] : 0.0f);
  }
}

// scores [16, kTile] (f32, ld kScoreLd) = a rows [16, D] times the kTile rows of b [kTile, D]
// transposed, both bf16 tiles with rows of D + kBf16Pad.
template <int D>
__device__ void product_abt(const bf16* a, const bf16* b, float* scores) {
  constexpr int ld = D + kBf16Pad;
#pragma unroll
  for (int n = 0; n < kTile / 16; ++n) {
    FragAcc acc;
    wmma::fill_fragment(acc, 0.0f);
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      FragA fa;
      FragBt fb;
      wmma::load_matrix_sync(fa, a + kk * 16, ld);
      wmma::load_matrix_sync(fb, b + n * 16 * ld + kk * 16, ld);
      wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(scores + n * 16, acc, kScoreLd, wmma::mem_row_major);
  }
}

// acc[n] += p [16, kTile] (bf16, ld kProbLd) times columns [16n, 16n + 16) of b [kTile, D].
template <int D>
__device__ void add_product_ab(const bf16* p, const bf16* b, FragAcc (&acc)[D / 16]) {
  constexpr int ld = D + kBf16Pad;
#pragma unroll
  for (int kk = 0; kk < kTile / 16; ++kk) {
    FragA fa;
    wmma::load_matrix_sync(fa, p + kk * 16, kProbLd);
#pragma unroll
    for (int n = 0; n < D / 16; ++n) {
      FragB fb;
      wmma::load_matrix_sync(fb, b + kk * 16 * ld + n * 16, ld);
      wmma::mma_sync(acc[n], fa, fb, acc[n]);
    }
  }
}

// Writes a warp's 16 accumulated rows times `factor` to rows first.. (those before `limit`) of a
// [rows, stride] f32 matrix at `base`, through the warp's staging rows.
template <int D>
__device__ void store_rows(FragAcc (&acc)[D / 16], float* staging, float factor, float* base,
                           int64_t stride, int64_t first, int64_t limit) {
  constexpr int ld = D + kF32Pad;
#pragma unroll
  for (int n = 0; n < D / 16; ++n)
    wmma::store_matrix_sync(staging + n * 16, acc[n], ld, wmma::mem_row_major);
  __syncwarp();
  const int lane = threadIdx.x % 32;
  for (int e = lane; e < 16 * D; e += 32) {
    const int r = e / D, c = e % D;
    if (first + r < limit) base[(first + r) * stride + c] = staging[r * ld + c] * factor;
  }
  __syncwarp();
}

template <int D>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(const float* q, const float* k, const float* v, AttentionGeometry g, float* out,
                   float* lse) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  constexpr int ld = D + kBf16Pad, ldo = D + kF32Pad;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sq = reinterpret_cast<bf16*>(smem);
  bf16* sk = sq + kTile * ld;
  bf16* sv = sk + kTile * ld;
  float* scores = reinterpret_cast<float*>(sv + kTile * ld);
  bf16* probs = reinterpret_cast<bf16*>(scores + kWarps * 16 * kScoreLd);
  float* rows = reinterpret_cast<float*>(probs + kWarps * 16 * kProbLd);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row = lane / 2, half = lane % 2;  // a lane pair owns one row, half its columns each
  const int64_t i0 = int64_t{blockIdx.x} * kTile, h = blockIdx.y, b = blockIdx.z;
  const int64_t kvh = h / (g.hq / g.hkv);
  const int64_t i = i0 + warp * 16 + row;
  float* ws = scores + warp * 16 * kScoreLd;
  bf16* wp = probs + warp * 16 * kProbLd;
  float* wo = rows + warp * 16 * ldo;

  load_tile<D>(q + (b * g.tq * g.hq + h) * D, g.hq * D, i0, g.tq, sq);
  for (int e = lane; e < 16 * ldo; e += 32) wo[e] = 0.0f;
  float top = -INFINITY, total = 0.0f;
  const int64_t last = (i0 + kTile < g.tq ? i0 + kTile : g.tq) - 1;
  const int64_t key_end = g.key_end(last);
  const float* kb = k + (b * g.tk * g.hkv + kvh) * D;
  const float* vb = v + (b * g.tk * g.hkv + kvh) * D;
  for (int64_t j0 = 0; j0 < key_end; j0 += kTile) {
    __syncthreads();  // the last tile's readers are done with sk and sv
    load_tile<D>(kb, g.hkv * D, j0, g.tk, sk);
    load_tile<D>(vb, g.hkv * D, j0, g.tk, sv);
    __syncthreads();
    product_abt<D>(sq + warp * 16 * ld, sk, ws);
    __syncwarp();
    // Online softmax of this row's scores: masked to -inf, then the running maximum and sum.
    float* srow = ws + row * kScoreLd;
    float tile_top = -INFINITY;
    for (int c = half * 32; c < half * 32 + 32; ++c) {
      const float s =
          i < g.tq && j0 + c < g.tk && g.visible(i, j0 + c) ? srow[c] * g.scale : -INFINITY;
      srow[c] = s;
      tile_top = fmaxf(tile_top, s);
    }
    tile_top = fmaxf(tile_top, __shfl_xor_sync(0xffffffffu, tile_top, 1));
    const float new_top = fmaxf(top, tile_top);
    const float rescale = new_top == -INFINITY ? 1.0f : expf(top - new_top);
    float sum = 0.0f;
    for (int c = half * 32; c < half * 32 + 32; ++c) {
      const float p = srow[c] == -INFINITY ? 0.0f : expf(srow[c] - new_top);
      wp[row * kProbLd + c] = __float2bfloat16(p);
      sum += p;
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    total = total * rescale + sum;
    top = new_top;
    for (int c = half * (D / 2); c < (half + 1) * (D / 2); ++c) wo[row * ldo + c] *= rescale;
    __syncwarp();
    // The warp's output rows += P V.
    FragAcc acc[D / 16];
#pragma unroll
    for (int n = 0; n < D / 16; ++n)
      wmma::load_matrix_sync(acc[n], wo + n * 16, ldo, wmma::mem_row_major);
    add_product_ab<D>(wp, sv, acc);
#pragma unroll
    for (int n = 0; n < D / 16; ++n)
      wmma::store_matrix_sync(wo + n * 16, acc[n], ldo, wmma::mem_row_major);
    __syncwarp();
  }
  if (i < g.tq) {
    const float inverse = total > 0.0f ? 1.0f / total : 0.0f;
    float* o = out + g.q_at(b, i, h);
    for (int c = half * (D / 2); c < (half + 1) * (D / 2); ++c) o[c] = wo[row * ldo + c] * inverse;
    if (half == 0) lse[(b * g.hq + h) * g.tq + i] = total > 0.0f ? top + logf(total) : -INFINITY;
  }
#else
  __trap();  // built for a GPU without bf16 tensor cores; tensor_core_attention_fits said no
#endif
}

template <int D>
__global__ void __launch_bounds__(kThreads)
    grad_kv_kernel(const float* grad_out, const float* q, const float* k, const float* v,
                   const float* lse, const float* delta, AttentionGeometry g, float* grad_k,
                   float* grad_v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  constexpr int ld = D + kBf16Pad;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sk = reinterpret_cast<bf16*>(smem);
  bf16* sv = sk + kTile * ld;
  bf16* sq = sv + kTile * ld;
  bf16* sdo = sq + kTile * ld;
  float* scores = reinterpret_cast<float*>(sdo + kTile * ld);
  float* dprobs = scores + kWarps * 16 * kScoreLd;
  bf16* probs = reinterpret_cast<bf16*>(dprobs + kWarps * 16 * kScoreLd);
  bf16* dscores = probs + kWarps * 16 * kProbLd;
  float* row_lse = reinterpret_cast<float*>(dscores + kWarps * 16 * kProbLd);
  float* row_delta = row_lse + kTile;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row = lane / 2, half = lane % 2;
  const int64_t j0 = int64_t{blockIdx.x} * kTile, kvh = blockIdx.y, b = blockIdx.z;
  const int64_t j = j0 + warp * 16 + row;
  float* ws = scores + warp * 16 * kScoreLd;
  float* wdp = dprobs + warp * 16 * kScoreLd;
  bf16* wp = probs + warp * 16 * kProbLd;
  bf16* wds = dscores + warp * 16 * kProbLd;

  load_tile<D>(k + (b * g.tk * g.hkv + kvh) * D, g.hkv * D, j0, g.tk, sk);
  load_tile<D>(v + (b * g.tk * g.hkv + kvh) * D, g.hkv * D, j0, g.tk, sv);
  FragAcc dk[D / 16], dv[D / 16];
#pragma unroll
  for (int n = 0; n < D / 16; ++n) {
    wmma::fill_fragment(dk[n], 0.0f);
    wmma::fill_fragment(dv[n], 0.0f);
  }
  const int64_t group = g.hq / g.hkv, first = g.first_query(j0);
  for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
    const float* qb = q + (b * g.tq * g.hq + h) * D;
    const float* dob = grad_out + (b * g.tq * g.hq + h) * D;
    const int64_t head_row = (b * g.hq + h) * g.tq;
    for (int64_t i0 = first; i0 < g.tq; i0 += kTile) {
      __syncthreads();  // the last tile's readers are done with sq, sdo and the row terms
      load_tile<D>(qb, g.hq * D, i0, g.tq, sq);
      load_tile<D>(dob, g.hq * D, i0, g.tq, sdo);
      for (int r = threadIdx.x; r < kTile; r += kThreads) {
        const bool inside = i0 + r < g.tq;
        row_lse[r] = inside ? lse[head_row + i0 + r] : 0.0f;
        row_delta[r] = inside ? delta[head_row + i0 + r] : 0.0f;
      }
      __syncthreads();
      // This warp's keys against the tile's queries: S^T = K Q^T and dP^T = V dO^T.
      product_abt<D>(sk + warp * 16 * ld, sq, ws);
      product_abt<D>(sv + warp * 16 * ld, sdo, wdp);
      __syncwarp();
      for (int c = half * 32; c < half * 32 + 32; ++c) {
        float p = 0.0f, ds = 0.0f;
        if (j < g.tk && i0 + c < g.tq && g.visible(i0 + c, j)) {
          p = expf(ws[row * kScoreLd + c] * g.scale - row_lse[c]);
          ds = p * (wdp[row * kScoreLd + c] - row_delta[c]);
        }
        wp[row * kProbLd + c] = __float2bfloat16(p);
        wds[row * kProbLd + c] = __float2bfloat16(ds);
      }
      __syncwarp();
      add_product_ab<D>(wp, sdo, dv);  // dV += P^T dO
      add_product_ab<D>(wds, sq, dk);  // dK += dS^T Q
    }
  }
  __syncthreads();  // every warp is done with the score regions, now the staging rows
  float* staging = scores + warp * 16 * (D + kF32Pad);
  const int64_t first_row = j0 + warp * 16;
  store_rows<D>(dk, staging, g.scale, grad_k + (b * g.tk * g.hkv + kvh) * D, g.hkv * D, first_row,
                g.tk);
  store_rows<D>(dv, staging, 1.0f, grad_v + (b * g.tk * g.hkv + kvh) * D, g.hkv * D, first_row,
                g.tk);
#else
  __trap();
#endif
}

template <int D>
__global__ void __launch_bounds__(kThreads)
    grad_q_kernel(const float* grad_out, const float* q, const float* k, const float* v,
                  const float* lse, const float* delta, AttentionGeometry g, float* grad_q) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  constexpr int ld = D + kBf16Pad;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sq = reinterpret_cast<bf16*>(smem);
  bf16* sdo = sq + kTile * ld;
  bf16* sk = sdo + kTile * ld;
  bf16* sv = sk + kTile * ld;
  float* scores = reinterpret_cast<float*>(sv + kTile * ld);
  float* dprobs = scores + kWarps * 16 * kScoreLd;
  bf16* dscores = reinterpret_cast<bf16*>(dprobs + kWarps * 16 * kScoreLd);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row = lane / 2, half = lane % 2;
  const int64_t i0 = int64_t{blockIdx.x} * kTile, h = blockIdx.y, b = blockIdx.z;
  const int64_t kvh = h / (g.hq / g.hkv);
  const int64_t i = i0 + warp * 16 + row;
  float* ws = scores + warp * 16 * kScoreLd;
  float* wdp = dprobs + warp * 16 * kScoreLd;
  bf16* wds = dscores + warp * 16 * kProbLd;

  load_tile<D>(q + (b * g.tq * g.hq + h) * D, g.hq * D, i0, g.tq, sq);
  load_tile<D>(grad_out + (b * g.tq * g.hq + h) * D, g.hq * D, i0, g.tq, sdo);
  const int64_t head_row = (b * g.hq + h) * g.tq;
  const float row_lse = i < g.tq ? lse[head_row + i] : 0.0f;
  const float row_delta = i < g.tq ? delta[head_row + i] : 0.0f;
  FragAcc dq[D / 16];
#pragma unroll
  for (int n = 0; n < D / 16; ++n) wmma::fill_fragment(dq[n], 0.0f);
  const int64_t last = (i0 + kTile < g.tq ? i0 + kTile : g.tq) - 1;
  const int64_t key_end = g.key_end(last);
  const float* kb = k + (b * g.tk * g.hkv + kvh) * D;
  const float* vb = v + (b * g.tk * g.hkv + kvh) * D;
  for (int64_t j0 = 0; j0 < key_end; j0 += kTile) {
    __syncthreads();
    load_tile<D>(kb, g.hkv * D, j0, g.tk, sk);
    load_tile<D>(vb, g.hkv * D, j0, g.tk, sv);
    __syncthreads();
    // This warp's queries against the tile's keys: S = Q K^T and dP = dO V^T.
    product_abt<D>(sq + warp * 16 * ld, sk, ws);
    product_abt<D>(sdo + warp * 16 * ld, sv, wdp);
    __syncwarp();
    for (int c = half * 32; c < half * 32 + 32; ++c) {
      float ds = 0.0f;
      if (i < g.tq && j0 + c < g.tk && g.visible(i, j0 + c)) {
        const float p = expf(ws[row * kScoreLd + c] * g.scale - row_lse);
        ds = p * (wdp[row * kScoreLd + c] - row_delta);
      }
      wds[row * kProbLd + c] = __float2bfloat16(ds);
    }
    __syncwarp();
    add_product_ab<D>(wds, sk, dq);  // dQ += dS K
  }
  __syncthreads();
  float* staging = scores + warp * 16 * (D + kF32Pad);
  store_rows<D>(dq, staging, g.scale, grad_q + (b * g.tq * g.hq + h) * D, g.hq * D, i0 + warp * 16,
                g.tq);
#else
  __trap();
#endif
}

// Calls fn(std::integral_constant<int, D>) for the head size d (a multiple of 16 up to 128).
template <class Fn>
void with_head_dim(int64_t d, Fn&& fn) {
  switch (d) {
    case 16:
      return fn(std::integral_constant<int, 16>{});
    case 32:
      return fn(std::integral_constant<int, 32>{});
    case 48:
      return fn(std::integral_constant<int, 48>{});
    case 64:
      return fn(std::integral_constant<int, 64>{});
    case 80:
      return fn(std::integral_constant<int, 80>{});
    case 96:
      return fn(std::integral_constant<int, 96>{});
    case 112:
      return fn(std::integral_constant<int, 112>{});
    case 128:
      return fn(std::integral_constant<int, 128>{});
  }
  fail("attention: no tensor-core kernel for head_dim ", d);
}

// Launches `kernel` on a grid of (tiles, heads, batch) blocks with `bytes` of shared memory.
template <class Kernel, class... Args>
void launch(Kernel kernel, int64_t tiles, int64_t heads, int64_t batch, size_t bytes,
            Args... args) {
  if (tiles == 0 || heads == 0 || batch == 0) return;
  NURI_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(bytes)));
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(heads),
                  static_cast<unsigned>(batch));
  kernel<<<grid, kThreads, bytes>>>(args...);
  NURI_CUDA_CHECK_LAUNCH();
}

int64_t tiles(int64_t rows) {
  return (rows + kTile - 1) / kTile;
}

}  // namespace

bool tensor_core_attention_fits(const Tensor& q) {
  const int64_t d = q.size(3);
  if (d % 16 != 0 || d > kMaxHeadDim || q.size(0) > 65535 || q.size(2) > 65535) return false;
  const int device = q.device().index;
  int major = 0, shared = 0;
  NURI_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  NURI_CUDA_CHECK(cudaDeviceGetAttribute(&shared, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  const int dim = static_cast<int>(d);
  const size_t needed = std::max({forward_bytes(dim), grad_kv_bytes(dim), grad_q_bytes(dim)});
  return major >= 8 && needed <= static_cast<size_t>(shared);
}

void tensor_core_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                   const AttentionOptions& options, Tensor& out, Tensor& lse) {
  const AttentionGeometry g = attention_geometry(q, k, options);
  NURI_CUDA_CHECK(cudaSetDevice(q.device().index));
  with_head_dim(g.d, [&](auto dim) {
    constexpr int D = decltype(dim)::value;
    launch(forward_kernel<D>, tiles(g.tq), g.hq, g.batch, forward_bytes(D), q.data<float>(),
           k.data<float>(), v.data<float>(), g, out.data<float>(), lse.data<float>());
  });
}

void tensor_core_attention_backward(const Tensor& grad_out, const Tensor& q, const Tensor& k,
                                    const Tensor& v, const Tensor& lse, const Tensor& delta,
                                    const AttentionOptions& options, Tensor& grad_q, Tensor& grad_k,
                                    Tensor& grad_v) {
  const AttentionGeometry g = attention_geometry(q, k, options);
  NURI_CUDA_CHECK(cudaSetDevice(q.device().index));
  with_head_dim(g.d, [&](auto dim) {
    constexpr int D = decltype(dim)::value;
    launch(grad_kv_kernel<D>, tiles(g.tk), g.hkv, g.batch, grad_kv_bytes(D), grad_out.data<float>(),
           q.data<float>(), k.data<float>(), v.data<float>(), lse.data<float>(),
           delta.data<float>(), g, grad_k.data<float>(), grad_v.data<float>());
    launch(grad_q_kernel<D>, tiles(g.tq), g.hq, g.batch, grad_q_bytes(D), grad_out.data<float>(),
           q.data<float>(), k.data<float>(), v.data<float>(), lse.data<float>(),
           delta.data<float>(), g, grad_q.data<float>());
  });
}

}  // namespace nuri::cuda
