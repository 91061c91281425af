// CPU attention (f32): flash attention. Scores are computed one tile of queries by one tile of
// keys at a time with sgemm, straight from the [B, T, H, D] layout (the leading dimension skips
// the other heads); the forward keeps a running softmax per query row and the backward recomputes
// the probabilities from the saved log-sum-exp. Tiles that the mask hides entirely are never
// computed, no buffer grows with T * T, and each thread's scratch is fixed (two score tiles, and
// a tile of output rows in the forward) whatever the number of threads.
//
// The backward runs one of two schedules. When the (batch, kv head) pairs keep the threads busy,
// a single pass gives each pair to one thread, which writes that kv head's rows of dK and dV and
// the dQ rows of its query heads. When they would leave many threads idle (few heads, many
// threads), two passes: the first is parallel over (batch, kv head, key tile) and writes dK and
// dV, the second is parallel over (batch, query head, query tile) and writes dQ, recomputing the
// probabilities of each tile pair it needs. Both schedules run the same tile computations in the
// same order for every output element (dK and dV add the query heads of a group and their query
// tiles in increasing order, dQ adds the key tiles in increasing order), so the results are
// bit-identical whichever schedule runs and whatever the number of threads. Neither writes any
// memory from two threads or keeps partial sums.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "kernels/cpu/blas.h"
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

  // Start of the first query tile with a row that sees key j. A (query tile, key tile) pair is
  // computed when first_tile_row(j0) <= i0; both backward schedules use this one test.
  int64_t first_tile_row(int64_t j) const { return first_row(j) / kQueryTile * kQueryTile; }

  // Offset of row i of query head h in batch b in q, grad_out and grad_q.
  int64_t q_offset(int64_t b, int64_t h, int64_t i) const { return ((b * tq + i) * hq + h) * dim; }
  // Offset of key j of kv head kvh in batch b in k, v, grad_k and grad_v.
  int64_t kv_offset(int64_t b, int64_t kvh, int64_t j) const {
    return ((b * tk + j) * hkv + kvh) * dim;
  }

  // Keys of the tile [j0, j0 + cols) that row i sees: a prefix of the tile.
  int64_t visible_in_tile(int64_t i, int64_t j0, int64_t cols) const {
    return std::clamp<int64_t>(visible(i) - j0, 0, cols);
  }
};

// OpenBLAS takes leading dimensions as int; checked here, before any parallel region.
void check_blas_range(const Geometry& g) {
  NURI_CHECK(std::max(g.q_stride, g.kv_stride) <= std::numeric_limits<int>::max(), kOp, ": ",
             std::max(g.hq, g.hkv), " heads of ", g.dim, " exceed the BLAS index range");
}

// A score tile. Aligned to 64 bytes so that a vectorised loop over a row splits it the same way
// in every thread's buffer, and sums over a row do not depend on which thread ran them.
struct alignas(64) ScoreTile {
  float data[kQueryTile * kKeyTile];
};

// Per-thread buffers of the forward: O(tile * tile + tile * dim).
struct ForwardScratch {
  std::unique_ptr<ScoreTile> scores;
  std::vector<float> acc, row_max, row_sum;
  explicit ForwardScratch(int64_t dim)
      : scores(std::make_unique<ScoreTile>()),
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
  const float* q_tile = q + g.q_offset(b, h, i0);
  const float* k_head = k + g.kv_offset(b, kvh, 0);
  const float* v_head = v + g.kv_offset(b, kvh, 0);
  float* scores = s.scores->data;
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
    // Q K^T; the scale is applied row by row below.
    sgemm(false, true, rows, cols, dim, q_tile, g.q_stride, k_head + j0 * g.kv_stride, g.kv_stride,
          0.0f, scores, kKeyTile);
    const bool ragged = j0 + cols > shared_end;
    for (int64_t r = 0; r < rows; ++r) {
      float* row = scores + r * kKeyTile;
      // The first tile holds key 0, which every row sees, so row_max is finite after it.
      const int64_t n = ragged ? g.visible_in_tile(i0 + r, j0, cols) : cols;
      float m = row_max[r];
#pragma omp simd reduction(max : m)
      for (int64_t c = 0; c < n; ++c) {
        row[c] *= scale;
        m = row[c] > m ? row[c] : m;  // vectorises; std::max does not
      }
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
    sgemm(false, false, rows, dim, cols, scores, kKeyTile, v_head + j0 * g.kv_stride, g.kv_stride,
          1.0f, acc, dim);
  }

  float* out_tile = out + g.q_offset(b, h, i0);
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

// Per-thread buffers of the backward: two score tiles, whatever the problem size.
struct BackwardScratch {
  std::unique_ptr<ScoreTile> probs = std::make_unique<ScoreTile>();
  std::unique_ptr<ScoreTile> dscores = std::make_unique<ScoreTile>();
};

// The tensors of one backward call as raw pointers.
struct BackwardData {
  const float *q, *k, *v, *grad_out, *lse, *delta;
  float *grad_q, *grad_k, *grad_v;
};

// One (query tile, key tile) pair of the backward: query rows [i0, i0 + rows) of head h against
// keys [j0, j0 + cols) of its kv head in batch b.
struct TilePair {
  int64_t rows, cols;
  int64_t q_offset;    // of row i0 of head h in q, grad_out and grad_q
  int64_t kv_offset;   // of key j0 of the kv head in k, v, grad_k and grad_v
  int64_t row_offset;  // of row i0 of head h in lse and delta
};

TilePair tile_pair(const Geometry& g, int64_t b, int64_t h, int64_t i0, int64_t j0) {
  return {std::min(kQueryTile, g.tq - i0), std::min(kKeyTile, g.tk - j0), g.q_offset(b, h, i0),
          g.kv_offset(b, h / g.group, j0), (b * g.hq + h) * g.tq + i0};
}

// Leaves in s.probs the probabilities P = exp(scale * Q K^T - lse) of the pair (zero where the
// mask hides the key) and in s.dscores the score gradient scale * dS, dS = P * (dO V^T - delta).
// Kept out of line so that both backward schedules run the very same instructions on a tile.
[[gnu::noinline]] void tile_probs_and_grad(const Geometry& g, const BackwardData& t, float scale,
                                           int64_t i0, int64_t j0, const TilePair& p,
                                           BackwardScratch& s) {
  float* probs = s.probs->data;
  float* dscores = s.dscores->data;
  const float* q_tile = t.q + p.q_offset;
  const float* do_tile = t.grad_out + p.q_offset;
  const float* lse_rows = t.lse + p.row_offset;
  const float* delta_rows = t.delta + p.row_offset;
  sgemm(false, true, p.rows, p.cols, g.dim, q_tile, g.q_stride, t.k + p.kv_offset, g.kv_stride,
        0.0f, probs, kKeyTile);
  const bool ragged = g.visible(i0) < j0 + p.cols;
  for (int64_t r = 0; r < p.rows; ++r) {
    float* row = probs + r * kKeyTile;
    const int64_t n = ragged ? g.visible_in_tile(i0 + r, j0, p.cols) : p.cols;
    const float shift = lse_rows[r];
#pragma omp simd
    for (int64_t c = 0; c < n; ++c) row[c] = fast_exp(row[c] * scale - shift);
    std::fill(row + n, row + p.cols, 0.0f);
  }
  sgemm(false, true, p.rows, p.cols, g.dim, do_tile, g.q_stride, t.v + p.kv_offset, g.kv_stride,
        0.0f, dscores, kKeyTile);
  for (int64_t r = 0; r < p.rows; ++r) {
    const float* p_row = probs + r * kKeyTile;
    float* ds_row = dscores + r * kKeyTile;
    const float delta = delta_rows[r];
#pragma omp simd
    for (int64_t c = 0; c < p.cols; ++c) ds_row[c] = p_row[c] * (ds_row[c] - delta) * scale;
  }
}

// dQ += scale * dS K for a pair whose tile_probs_and_grad is in s.
void add_query_grad(const Geometry& g, const BackwardData& t, const TilePair& p,
                    const BackwardScratch& s) {
  sgemm(false, false, p.rows, g.dim, p.cols, s.dscores->data, kKeyTile, t.k + p.kv_offset,
        g.kv_stride, 1.0f, t.grad_q + p.q_offset, g.q_stride);
}

// Zeroes `rows` rows of `dim` floats, `stride` floats apart.
void zero_rows(float* first, int64_t rows, int64_t dim, int64_t stride) {
  for (int64_t r = 0; r < rows; ++r) std::fill_n(first + r * stride, dim, 0.0f);
}

// Gradients through keys [j0, j0 + kKeyTile) of kv head kvh in batch b: writes their rows of
// grad_k and grad_v, adding the query heads of the group in order and within each the query
// tiles in increasing order. With with_dq it also adds each pair's share into grad_q.
void key_tile_backward(const Geometry& g, const BackwardData& t, float scale, int64_t b,
                       int64_t kvh, int64_t j0, bool with_dq, BackwardScratch& s) {
  const int64_t cols = std::min(kKeyTile, g.tk - j0);
  float* dk_tile = t.grad_k + g.kv_offset(b, kvh, j0);
  float* dv_tile = t.grad_v + g.kv_offset(b, kvh, j0);
  zero_rows(dk_tile, cols, g.dim, g.kv_stride);
  zero_rows(dv_tile, cols, g.dim, g.kv_stride);
  for (int64_t h = kvh * g.group; h < (kvh + 1) * g.group; ++h) {
    for (int64_t i0 = g.first_tile_row(j0); i0 < g.tq; i0 += kQueryTile) {
      const TilePair p = tile_pair(g, b, h, i0, j0);
      tile_probs_and_grad(g, t, scale, i0, j0, p, s);
      const float* q_tile = t.q + p.q_offset;
      const float* do_tile = t.grad_out + p.q_offset;
      // dV += P^T dO and dK += (scale * dS)^T Q.
      sgemm(true, false, p.cols, g.dim, p.rows, s.probs->data, kKeyTile, do_tile, g.q_stride, 1.0f,
            dv_tile, g.kv_stride);
      sgemm(true, false, p.cols, g.dim, p.rows, s.dscores->data, kKeyTile, q_tile, g.q_stride, 1.0f,
            dk_tile, g.kv_stride);
      if (with_dq) add_query_grad(g, t, p, s);
    }
  }
}

// The query gradient of rows [i0, i0 + kQueryTile) of head h in batch b: the shares of the key
// tiles they see, added in increasing order as key_tile_backward adds them.
void query_tile_backward(const Geometry& g, const BackwardData& t, float scale, int64_t b,
                         int64_t h, int64_t i0, BackwardScratch& s) {
  zero_rows(t.grad_q + g.q_offset(b, h, i0), std::min(kQueryTile, g.tq - i0), g.dim, g.q_stride);
  for (int64_t j0 = 0; j0 < g.tk && g.first_tile_row(j0) <= i0; j0 += kKeyTile) {
    const TilePair p = tile_pair(g, b, h, i0, j0);
    tile_probs_and_grad(g, t, scale, i0, j0, p, s);
    add_query_grad(g, t, p, s);
  }
}

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                       const AttentionOptions& options, Tensor& out, Tensor& lse) {
  checks::cpu_f32(kOp, q, "q");
  checks::cpu_f32(kOp, k, "k");
  checks::cpu_f32(kOp, v, "v");
  if (options.bf16_products) {  // mixed precision: the f32 kernel over bf16-rounded operands
    attention_forward(rounded_to_bf16(q), rounded_to_bf16(k), rounded_to_bf16(v),
                      f32_products(options), out, lse);
    return;
  }
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
  if (options.bf16_products) {
    attention_backward(rounded_to_bf16(grad_out), rounded_to_bf16(q), rounded_to_bf16(k),
                       rounded_to_bf16(v), out, lse, f32_products(options), grad_q, grad_k, grad_v);
    return;
  }
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

  const BackwardData data{
      q.data<float>(),     k.data<float>(), v.data<float>(),      pdo,
      lse.data<float>(),   delta.data(),    grad_q.data<float>(), grad_k.data<float>(),
      grad_v.data<float>()};
  const float scale = options.scale;
  const int64_t k_tiles = (g.tk + kKeyTile - 1) / kKeyTile;
  const int64_t q_tiles = (g.tq + kQueryTile - 1) / kQueryTile;
  const int64_t heads = g.batch * g.hkv;
  const int64_t q_units = g.batch * g.hq * q_tiles;
  const int64_t threads = omp_get_max_threads();
  // The single pass runs in ceil(heads / threads) rounds of one (batch, kv head) per thread.
  // The two passes balance the threads but run 7 tile GEMMs per (query tile, key tile) pair
  // instead of 5 (P and dP are computed in both), so they take over only when the single pass
  // would keep less than 5/7 of the threads busy, and only if they have more units to deal out.
  const int64_t rounds = (heads + threads - 1) / threads;
  const bool two_pass = 7 * heads < 5 * rounds * threads && (k_tiles > 1 || q_units > heads);
#pragma omp parallel
  {
    BackwardScratch scratch;
    if (!two_pass) {
      // A unit is a (batch, kv head): its rows of dK and dV, and the dQ rows of its query heads.
#pragma omp for schedule(dynamic, 1)
      for (int64_t u = 0; u < heads; ++u) {
        const int64_t b = u / g.hkv, kvh = u % g.hkv;
        for (int64_t h = kvh * g.group; h < (kvh + 1) * g.group; ++h) {
          zero_rows(data.grad_q + g.q_offset(b, h, 0), g.tq, g.dim, g.q_stride);
        }
        for (int64_t kt = 0; kt < k_tiles; ++kt) {
          key_tile_backward(g, data, scale, b, kvh, kt * kKeyTile, true, scratch);
        }
      }
    } else {
      // Pass 1, dK and dV: a unit is a (batch, kv head, key tile); the early key tiles, seen by
      // the most queries under a causal mask, come first.
#pragma omp for schedule(dynamic, 1)
      for (int64_t u = 0; u < heads * k_tiles; ++u) {
        const int64_t head = u / k_tiles, kt = u % k_tiles;
        key_tile_backward(g, data, scale, head / g.hkv, head % g.hkv, kt * kKeyTile, false,
                          scratch);
      }
      // Pass 2, dQ: a unit is a (batch, query head, query tile), the late tiles first.
#pragma omp for schedule(dynamic, 1)
      for (int64_t u = 0; u < q_units; ++u) {
        const int64_t head = u / q_tiles, qt = q_tiles - 1 - u % q_tiles;
        query_tile_backward(g, data, scale, head / g.hq, head % g.hq, qt * kQueryTile, scratch);
      }
    }
  }
}

}  // namespace nuri::cpu
