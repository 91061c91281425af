// CPU attention (f32): flash attention. Scores are computed one tile of queries by one tile of
// keys at a time with cblas_sgemm, straight from the [B, T, H, D] layout (the leading dimension
// skips the other heads); the forward keeps a running softmax per query row and the backward
// recomputes the probabilities from the saved log-sum-exp. Tiles that the mask hides entirely are
// never computed, and no buffer grows with T * T.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/vec_math.h"
#include "kernels/ops/attention.h"
#include "kernels/ops/checks.h"

namespace nuri::cpu {
namespace {

constexpr const char* kOp = "attention";
// Score tiles of 128 x 128 keep the per-tile GEMMs large enough for OpenBLAS to run near its
// best and the per-thread scratch (two tiles, 128 KiB) inside L2.
constexpr int64_t kQueryTile = 128;  // rows of a score tile
constexpr int64_t kKeyTile = 128;    // columns of a score tile

// Sizes and strides of one call. Every mask lets query row i see a prefix of the keys,
// [0, visible(i)), and that prefix never shrinks as i grows; the kernels rely on both.
struct Geometry {
  int64_t batch, tq, tk, hq, hkv, dim;
  int64_t group;      // query heads per kv head
  int64_t q_stride;   // floats from one time step of a query head to the next: hq * dim
  int64_t kv_stride;  // the same for k and v: hkv * dim
  int64_t offset;     // position of query row 0 among the keys: tk - tq
  AttentionMask mask;
  int64_t block;

  Geometry(const Tensor& q, const Tensor& k, const AttentionOptions& options)
      : batch(q.size(0)),
        tq(q.size(1)),
        tk(k.size(1)),
        hq(q.size(2)),
        hkv(k.size(2)),
        dim(q.size(3)),
        group(hq / hkv),
        q_stride(hq * dim),
        kv_stride(hkv * dim),
        offset(tk - tq),
        mask(options.mask),
        block(options.block_size) {}

  // Number of keys that query row i sees.
  int64_t visible(int64_t i) const {
    const int64_t p = offset + i;
    switch (mask) {
      case AttentionMask::causal:
        return std::min(tk, p + 1);
      case AttentionMask::block_causal:
        return std::min(tk, (p / block + 1) * block);
      default:
        return tk;
    }
  }

  // The first query row that sees key j.
  int64_t first_row(int64_t j) const {
    switch (mask) {
      case AttentionMask::causal:
        return std::clamp<int64_t>(j - offset, 0, tq);
      case AttentionMask::block_causal:
        return std::clamp<int64_t>(j / block * block - offset, 0, tq);
      default:
        return 0;
    }
  }

  // Keys of the tile [j0, j0 + cols) that row i sees: a prefix of the tile.
  int64_t visible_in_tile(int64_t i, int64_t j0, int64_t cols) const {
    return std::clamp<int64_t>(visible(i) - j0, 0, cols);
  }
};

// OpenBLAS takes leading dimensions as int.
void check_blas_range(const Geometry& g) {
  NURI_CHECK(g.q_stride <= std::numeric_limits<int>::max(), kOp, ": ", g.hq, " heads of ", g.dim,
             " exceed the BLAS index range");
}

// Per-thread buffers of the forward: O(tile * tile + tile * dim).
struct ForwardScratch {
  std::vector<float> scores, acc, row_max, row_sum;
  explicit ForwardScratch(int64_t dim)
      : scores(kQueryTile * kKeyTile),
        acc(kQueryTile * dim),
        row_max(kQueryTile),
        row_sum(kQueryTile) {}
};

// Attention for query rows [i0, i0 + kQueryTile) of head h in batch b.
void forward_tile(const Geometry& g, const float* q, const float* k, const float* v, float scale,
                  int64_t b, int64_t h, int64_t i0, float* out, float* lse, ForwardScratch& s) {
  const int64_t rows = std::min(kQueryTile, g.tq - i0);
  const int64_t dim = g.dim;
  const int64_t kvh = h / g.group;
  const float* q_tile = q + ((b * g.tq + i0) * g.hq + h) * dim;
  const float* k_head = k + (b * g.tk * g.hkv + kvh) * dim;
  const float* v_head = v + (b * g.tk * g.hkv + kvh) * dim;
  float* scores = s.scores.data();
  float* acc = s.acc.data();
  float* row_max = s.row_max.data();
  float* row_sum = s.row_sum.data();
  std::fill_n(row_max, rows, -std::numeric_limits<float>::infinity());
  std::fill_n(row_sum, rows, 0.0f);
  std::fill_n(acc, rows * dim, 0.0f);

  const int64_t key_end = g.visible(i0 + rows - 1);  // keys seen by the last row
  const int64_t shared_end = g.visible(i0);          // keys seen by every row
  for (int64_t j0 = 0; j0 < key_end; j0 += kKeyTile) {
    const int64_t cols = std::min(kKeyTile, key_end - j0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                static_cast<int>(cols), static_cast<int>(dim), scale, q_tile,
                static_cast<int>(g.q_stride), k_head + j0 * g.kv_stride,
                static_cast<int>(g.kv_stride), 0.0f, scores, static_cast<int>(kKeyTile));
    const bool ragged = j0 + cols > shared_end;
    for (int64_t r = 0; r < rows; ++r) {
      float* row = scores + r * kKeyTile;
      // The first tile holds key 0, which every row sees, so row_max is finite after it.
      const int64_t n = ragged ? g.visible_in_tile(i0 + r, j0, cols) : cols;
      float m = row_max[r];
#pragma omp simd reduction(max : m)
      for (int64_t c = 0; c < n; ++c) m = row[c] > m ? row[c] : m;  // vectorises; std::max does not
      float sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t c = 0; c < n; ++c) {
        const float e = fast_exp(row[c] - m);
        row[c] = e;
        sum += e;
      }
      std::fill(row + n, row + cols, 0.0f);
      const float correction = fast_exp(row_max[r] - m);  // 0 on the first tile
      row_sum[r] = row_sum[r] * correction + sum;
      row_max[r] = m;
      if (correction != 1.0f) {
        float* acc_row = acc + r * dim;
#pragma omp simd
        for (int64_t d = 0; d < dim; ++d) acc_row[d] *= correction;
      }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows),
                static_cast<int>(dim), static_cast<int>(cols), 1.0f, scores,
                static_cast<int>(kKeyTile), v_head + j0 * g.kv_stride,
                static_cast<int>(g.kv_stride), 1.0f, acc, static_cast<int>(dim));
  }

  float* out_tile = out + ((b * g.tq + i0) * g.hq + h) * dim;
  float* lse_rows = lse + (b * g.hq + h) * g.tq + i0;
  for (int64_t r = 0; r < rows; ++r) {
    const float inv = 1.0f / row_sum[r];
    const float* acc_row = acc + r * dim;
    float* out_row = out_tile + r * g.q_stride;
#pragma omp simd
    for (int64_t d = 0; d < dim; ++d) out_row[d] = acc_row[d] * inv;
    lse_rows[r] = row_max[r] + std::log(row_sum[r]);
  }
}

// Per-thread buffers of the backward: two score tiles.
struct BackwardScratch {
  std::vector<float> probs, dprobs;
  BackwardScratch() : probs(kQueryTile * kKeyTile), dprobs(kQueryTile * kKeyTile) {}
};

// The tensors of one backward call as raw pointers.
struct BackwardData {
  const float *q, *k, *v, *grad_out, *lse, *delta;
  float *grad_k, *grad_v;
};

// Gradients through keys [j0, j0 + kKeyTile) of kv head kvh in batch b: writes their rows of
// grad_k and grad_v, and adds their share of the query gradient into dq (laid out like q).
void backward_key_tile(const Geometry& g, const BackwardData& t, float scale, int64_t b,
                       int64_t kvh, int64_t j0, float* dq, BackwardScratch& s) {
  const int64_t cols = std::min(kKeyTile, g.tk - j0);
  const int64_t dim = g.dim;
  const int64_t kv_offset = ((b * g.tk + j0) * g.hkv + kvh) * dim;
  const float* k_tile = t.k + kv_offset;
  const float* v_tile = t.v + kv_offset;
  float* dk_tile = t.grad_k + kv_offset;
  float* dv_tile = t.grad_v + kv_offset;
  for (int64_t c = 0; c < cols; ++c) {
    std::fill_n(dk_tile + c * g.kv_stride, dim, 0.0f);
    std::fill_n(dv_tile + c * g.kv_stride, dim, 0.0f);
  }
  float* probs = s.probs.data();
  float* dprobs = s.dprobs.data();
  const int ld_tile = static_cast<int>(kKeyTile);
  const int ld_q = static_cast<int>(g.q_stride);
  const int ld_kv = static_cast<int>(g.kv_stride);
  const int n_cols = static_cast<int>(cols);
  const int n_dim = static_cast<int>(dim);
  const int64_t first_tile_row = g.first_row(j0) / kQueryTile * kQueryTile;

  for (int64_t h = kvh * g.group; h < (kvh + 1) * g.group; ++h) {
    for (int64_t i0 = first_tile_row; i0 < g.tq; i0 += kQueryTile) {
      const int64_t rows = std::min(kQueryTile, g.tq - i0);
      const int n_rows = static_cast<int>(rows);
      const int64_t q_offset = ((b * g.tq + i0) * g.hq + h) * dim;
      const float* q_tile = t.q + q_offset;
      const float* do_tile = t.grad_out + q_offset;
      const float* lse_rows = t.lse + (b * g.hq + h) * g.tq + i0;
      const float* delta_rows = t.delta + (b * g.hq + h) * g.tq + i0;

      // P = exp(scale * Q K^T - lse), zero where the mask hides the key.
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_rows, n_cols, n_dim, scale, q_tile,
                  ld_q, k_tile, ld_kv, 0.0f, probs, ld_tile);
      const bool ragged = g.visible(i0) < j0 + cols;
      for (int64_t r = 0; r < rows; ++r) {
        float* row = probs + r * kKeyTile;
        const int64_t n = ragged ? g.visible_in_tile(i0 + r, j0, cols) : cols;
        const float shift = lse_rows[r];
#pragma omp simd
        for (int64_t c = 0; c < n; ++c) row[c] = fast_exp(row[c] - shift);
        std::fill(row + n, row + cols, 0.0f);
      }
      // dV += P^T dO
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n_cols, n_dim, n_rows, 1.0f, probs,
                  ld_tile, do_tile, ld_q, 1.0f, dv_tile, ld_kv);
      // dP = dO V^T, then dS = P * (dP - delta) in place.
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_rows, n_cols, n_dim, 1.0f, do_tile,
                  ld_q, v_tile, ld_kv, 0.0f, dprobs, ld_tile);
      for (int64_t r = 0; r < rows; ++r) {
        const float* p_row = probs + r * kKeyTile;
        float* ds_row = dprobs + r * kKeyTile;
        const float delta = delta_rows[r];
#pragma omp simd
        for (int64_t c = 0; c < cols; ++c) ds_row[c] = p_row[c] * (ds_row[c] - delta);
      }
      // dK += scale * dS^T Q and dQ += scale * dS K.
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n_cols, n_dim, n_rows, scale, dprobs,
                  ld_tile, q_tile, ld_q, 1.0f, dk_tile, ld_kv);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n_rows, n_dim, n_cols, scale, dprobs,
                  ld_tile, k_tile, ld_kv, 1.0f, dq + q_offset, ld_q);
    }
  }
}

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                       const AttentionOptions& options, Tensor& out, Tensor& lse) {
  checks::cpu_f32(kOp, q, "q");
  checks::cpu_f32(kOp, k, "k");
  checks::cpu_f32(kOp, v, "v");
  const Geometry g(q, k, options);
  check_blas_range(g);
  const float* pq = q.data<float>();
  const float* pk = k.data<float>();
  const float* pv = v.data<float>();
  float* po = out.data<float>();
  float* pl = lse.data<float>();
  const int64_t q_tiles = (g.tq + kQueryTile - 1) / kQueryTile;
  const int64_t units = g.batch * g.hq * q_tiles;
  // Always a parallel region, even for one unit: OpenBLAS then keeps each tile GEMM on its
  // calling thread instead of splitting it across threads.
#pragma omp parallel
  {
    ForwardScratch scratch(g.dim);
    // Query tiles run last to first within a head: under a causal mask the late tiles see the
    // most keys, and starting the longest work first balances the threads.
#pragma omp for schedule(dynamic, 1)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t head = u / q_tiles;
      const int64_t qt = q_tiles - 1 - u % q_tiles;
      forward_tile(g, pq, pk, pv, options.scale, head / g.hq, head % g.hq, qt * kQueryTile, po, pl,
                   scratch);
    }
  }
}

void attention_backward(const Tensor& grad_out, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& out, const Tensor& lse, const AttentionOptions& options,
                        Tensor& grad_q, Tensor& grad_k, Tensor& grad_v) {
  checks::cpu_f32(kOp, grad_out, "grad_out");
  checks::cpu_f32(kOp, q, "q");
  checks::cpu_f32(kOp, k, "k");
  checks::cpu_f32(kOp, v, "v");
  checks::cpu_f32(kOp, out, "out");
  const Geometry g(q, k, options);
  check_blas_range(g);
  const float* pdo = grad_out.data<float>();
  const float* po = out.data<float>();

  // delta[b, h, i] = <dO, O> of one query row: the softmax backward's row term.
  std::vector<float> delta(static_cast<size_t>(g.batch * g.hq * g.tq));
  const int64_t query_rows = g.batch * g.tq * g.hq;
#pragma omp parallel for if (query_rows * g.dim > (1 << 15))
  for (int64_t row = 0; row < query_rows; ++row) {
    const float* a = pdo + row * g.dim;
    const float* o = po + row * g.dim;
    float dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t d = 0; d < g.dim; ++d) dot += a[d] * o[d];
    const int64_t b = row / (g.tq * g.hq), i = row / g.hq % g.tq, h = row % g.hq;
    delta[(b * g.hq + h) * g.tq + i] = dot;
  }

  // Work is split by (batch, kv head): each unit owns the rows of grad_k and grad_v of its head
  // and the rows of grad_q of that head's query heads, so no two threads write the same memory.
  // When that gives too few units for the threads, the key tiles of a head are dealt out
  // round-robin to `splits` units, and every split but the first adds its share of grad_q into
  // a buffer of its own (O(T * D)), summed in a fixed order at the end.
  const int64_t k_tiles = (g.tk + kKeyTile - 1) / kKeyTile;
  const int64_t heads = g.batch * g.hkv;
  const int64_t threads = omp_get_max_threads();
  const int64_t splits =
      heads == 0 ? 1 : std::clamp<int64_t>((2 * threads + heads - 1) / heads, 1, k_tiles);
  const int64_t q_numel = grad_q.numel();
  Tensor partial = Tensor::zeros({(splits - 1) * q_numel});
  float* pgq = grad_q.data<float>();
  std::fill_n(pgq, q_numel, 0.0f);
  float* ppart = partial.data<float>();

  const BackwardData data{
      q.data<float>(),   k.data<float>(), v.data<float>(),      pdo,
      lse.data<float>(), delta.data(),    grad_k.data<float>(), grad_v.data<float>()};
  const int64_t units = heads * splits;
#pragma omp parallel
  {
    BackwardScratch scratch;
#pragma omp for schedule(dynamic, 1)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t head = u / splits, split = u % splits;
      float* dq = split == 0 ? pgq : ppart + (split - 1) * q_numel;
      for (int64_t kt = split; kt < k_tiles; kt += splits) {
        backward_key_tile(g, data, options.scale, head / g.hkv, head % g.hkv, kt * kKeyTile, dq,
                          scratch);
      }
    }
  }
  if (splits > 1) {
#pragma omp parallel for simd if (q_numel > (1 << 15))
    for (int64_t i = 0; i < q_numel; ++i) {
      float total = pgq[i];
      for (int64_t s = 1; s < splits; ++s) total += ppart[(s - 1) * q_numel + i];
      pgq[i] = total;
    }
  }
}

}  // namespace nuri::cpu
