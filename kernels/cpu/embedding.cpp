// CPU kernels of embedding: a row gather, and its adjoint as a deterministic scatter-add.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/ops/checks.h"
#include "kernels/ops/embedding.h"

namespace nuri::cpu {
namespace {

constexpr int64_t kColumnBlock = 256;  // columns of one row summed per backward task

template <class Id>
void gather(const Id* ids, int64_t n, const float* table, int64_t d, float* out) {
#pragma omp parallel for if (n * d > kParallelElements)
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(out + i * d, table + static_cast<int64_t>(ids[i]) * d,
                static_cast<size_t>(d) * sizeof(float));
  }
}

// Groups the positions by id, then gives every (table row, column block) to one task that sums
// its rows in position order: no two tasks write the same element, and the sums do not depend on
// the thread count.
template <class Id>
void scatter_add(const float* grad, const Id* ids, int64_t n, int64_t rows, int64_t d, float* out) {
  const IdGroups groups = group_by_id(ids, n, rows);
  const std::vector<int64_t>& start = groups.start;
  const std::vector<int64_t>& order = groups.order;
  const int64_t blocks = (d + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for schedule(static) if (rows * d + n * d > kParallelElements)
  for (int64_t task = 0; task < rows * blocks; ++task) {
    const int64_t v = task / blocks;
    const int64_t c0 = (task % blocks) * kColumnBlock;
    const int64_t width = std::min(kColumnBlock, d - c0);
    float* dst = out + v * d + c0;
    double acc[kColumnBlock] = {};
    for (int64_t j = start[v]; j < start[v + 1]; ++j) {
      const float* src = grad + order[j] * d + c0;
#pragma omp simd
      for (int64_t c = 0; c < width; ++c) acc[c] += src[c];
    }
#pragma omp simd
    for (int64_t c = 0; c < width; ++c) dst[c] = static_cast<float>(acc[c]);
  }
}

}  // namespace

void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out) {
  checks::cpu_f32("embedding", table, "table");
  const int64_t n = ids.numel();
  const int64_t d = table.size(1);
  if (ids.dtype() == DType::i32) {
    gather(ids.data<int32_t>(), n, table.data<float>(), d, out.data<float>());
  } else {
    gather(ids.data<int64_t>(), n, table.data<float>(), d, out.data<float>());
  }
}

void embedding_backward(const Tensor& grad, const Tensor& ids, Tensor& grad_table) {
  checks::cpu_f32("embedding backward", grad, "grad");
  const int64_t n = ids.numel();
  const int64_t rows = grad_table.size(0);
  const int64_t d = grad_table.size(1);
  if (ids.dtype() == DType::i32) {
    scatter_add(grad.data<float>(), ids.data<int32_t>(), n, rows, d, grad_table.data<float>());
  } else {
    scatter_add(grad.data<float>(), ids.data<int64_t>(), n, rows, d, grad_table.data<float>());
  }
}

}  // namespace nuri::cpu
