// Cross-entropy over a vocabulary, fused: the forward keeps only each row's logsumexp, and the
// backward rebuilds softmax - onehot from the logits on the fly, so no [N, V] probability
// tensor is ever stored.
#pragma once

#include "kernels/dispatch.h"
#include "kernels/tensor.h"

namespace nuri {

// Mean over the rows whose target is not ignore_index of logsumexp(logits[r]) -
// logits[r, targets[r]]; logits [N, V], targets i32/i64 [N]. Shape []; 0 (with zero gradients)
// when every row is ignored. A target outside [0, V) other than ignore_index is an error.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100);

// lse[r] = logsumexp(logits[r]) (0 for ignored rows) and loss = mean of the counted rows'
// losses (0 when count is 0); targets are already validated and `count` rows are counted.
NURI_KERNEL(cross_entropy_forward, (const Tensor& logits, const Tensor& targets,
                                    int64_t ignore_index, int64_t count, Tensor& lse, Tensor& loss))
// grad_logits[r] = grad_loss / count * (exp(logits[r] - lse[r]) - onehot(targets[r])), zero
// for ignored rows; grad_loss has shape [].
NURI_KERNEL(cross_entropy_backward,
            (const Tensor& grad_loss, const Tensor& logits, const Tensor& targets,
             const Tensor& lse, int64_t ignore_index, int64_t count, Tensor& grad_logits))

}  // namespace nuri
