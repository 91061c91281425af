// Embedding lookup: rows of a table picked by integer ids.
#pragma once

#include "kernels/dispatch.h"
#include "kernels/tensor.h"

namespace nuri {

// ids (i32 or i64, any shape) into table [V, D] -> [..., D]. Every id must lie in [0, V); the
// ids get no gradient, the table gets the sum of the gradients of the rows that read it.
Tensor embedding(const Tensor& ids, const Tensor& table);

// out [n, D] = table[ids[i]] for the n = ids.numel() ids, already checked to be in range.
NURI_KERNEL(embedding_forward, (const Tensor& ids, const Tensor& table, Tensor& out))
// grad_table [V, D] = sum over i with ids[i] = v of grad[i]; every row written (zero if unused).
NURI_KERNEL(embedding_backward, (const Tensor& grad, const Tensor& ids, Tensor& grad_table))

}  // namespace nuri
