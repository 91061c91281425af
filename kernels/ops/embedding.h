// Embedding lookup: rows of a table picked by integer ids.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/tensor.h"

namespace nuri {

// ids (i32 or i64, any shape) into table [V, D] -> [..., D]. Every id must lie in [0, V); the
// ids get no gradient, the table gets the sum of the gradients of the rows that read it. The ids
// may be on the host for a table on a GPU: they are checked there without a copy back.
Tensor embedding(const Tensor& ids, const Tensor& table);

// out [n, D] = table[ids[i]] for the n = ids.numel() ids, already checked to be in range.
NURI_KERNEL(embedding_forward, (const Tensor& ids, const Tensor& table, Tensor& out))
// grad_table [V, D] = sum over i with ids[i] = v of grad[i]; every row written (zero if unused).
NURI_KERNEL(embedding_backward, (const Tensor& grad, const Tensor& ids, Tensor& grad_table))

// Positions 0 .. n-1 grouped by id with a counting sort: order[start[v] .. start[v + 1]) are the
// positions of id v in increasing order. Every backend's backward sums a row in this order.
struct IdGroups {
  std::vector<int64_t> start, order;
};

template <class Id>
IdGroups group_by_id(const Id* ids, int64_t n, int64_t rows) {
  IdGroups groups{std::vector<int64_t>(static_cast<size_t>(rows) + 1, 0),
                  std::vector<int64_t>(static_cast<size_t>(n))};
  for (int64_t i = 0; i < n; ++i) ++groups.start[static_cast<size_t>(ids[i]) + 1];
  for (int64_t v = 0; v < rows; ++v) groups.start[v + 1] += groups.start[v];
  std::vector<int64_t> next(groups.start.begin(), groups.start.end() - 1);
  for (int64_t i = 0; i < n; ++i) groups.order[next[static_cast<size_t>(ids[i])]++] = i;
  return groups;
}

}  // namespace nuri
