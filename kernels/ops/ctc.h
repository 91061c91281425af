// Connectionist temporal classification loss (Graves et al., 2006): the negative log-likelihood
// of a label sequence summed over every frame-level alignment to it (labels, repeated labels and
// blanks; consecutive repeats merge, blanks vanish). It trains an encoder to emit the text it
// hears frame by frame, without a given alignment. The log-softmax over classes is fused, as in
// cross_entropy: the op takes logits and keeps only each frame's logsumexp.
#pragma once

#include <span>

#include "kernels/dispatch.h"
#include "kernels/tensor.h"

namespace nuri {

// Frames that any alignment of `labels` needs: one per label and a blank between equal
// neighbours. An item with fewer frames has no alignment, and ctc_loss gives it 0.
template <class Label>
int64_t ctc_frames_needed(std::span<const Label> labels) {
  int64_t needed = static_cast<int64_t>(labels.size());
  for (size_t k = 1; k < labels.size(); ++k) needed += labels[k] == labels[k - 1];
  return needed;
}

// logits f32 [B, T, C]; targets i32/i64 [B, S] (item b's labels are its first target_lengths[b]
// entries, each in [0, C) and not `blank`); input_lengths and target_lengths i32/i64 [B], with
// 0 <= input_lengths[b] <= T and 0 <= target_lengths[b] <= S. Frames past an item's input length
// are ignored. Returns, as PyTorch's ctc_loss with reduction "mean" and zero_infinity, the mean
// over items of -log p(labels | frames) / max(1, target length); an item whose labels need more
// frames than it has (a label and one more for each repeat) adds 0 and gets no gradient.
Tensor ctc_loss(const Tensor& logits, const Tensor& targets, const Tensor& input_lengths,
                const Tensor& target_lengths, int64_t blank = 0);

// Per item: loss[b] = -log p(labels_b), or +inf when no alignment exists; lse[b, t] =
// logsumexp(logits[b, t]) for t < input_lengths[b]. The inputs are validated; the lengths and
// labels are host vectors.
NURI_KERNEL(ctc_forward, (const Tensor& logits, const std::vector<std::vector<int64_t>>& labels,
                          const std::vector<int64_t>& input_lengths, int64_t blank, Tensor& lse,
                          std::vector<double>& loss))
// grad_logits[b, t] = scale[b] * (softmax(logits[b, t]) - posterior of each class at frame t)
// for t < input_lengths[b], zero elsewhere and for items with scale 0.
NURI_KERNEL(ctc_backward, (const Tensor& logits, const std::vector<std::vector<int64_t>>& labels,
                           const std::vector<int64_t>& input_lengths, int64_t blank,
                           const Tensor& lse, const std::vector<double>& loss,
                           const std::vector<double>& scale, Tensor& grad_logits))

}  // namespace nuri
