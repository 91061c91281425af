// Attention on bf16 tensor cores (AttentionOptions::bf16_products): tiled flash-attention kernels
// for the head sizes that tile into 16 x 16 x 16 products, used by kernels/cuda/attention.cu.
#pragma once

#include "kernels/ops/attention.h"

namespace nuri::cuda {

// Whether the tensor-core kernels take q: head_dim a multiple of 16 up to 128, on a GPU of compute
// capability 8.0 or later. Other calls run the exact kernel over rounded operands.
bool tensor_core_attention_fits(const Tensor& q);

// The forward of attention with bf16 products; the arguments are those of attention_forward.
void tensor_core_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                   const AttentionOptions& options, Tensor& out, Tensor& lse);
// The backward, given delta [B, Hq, Tq] (each query row's grad_out . out); the other arguments
// are those of attention_backward.
void tensor_core_attention_backward(const Tensor& grad_out, const Tensor& q, const Tensor& k,
                                    const Tensor& v, const Tensor& lse, const Tensor& delta,
                                    const AttentionOptions& options, Tensor& grad_q, Tensor& grad_k,
                                    Tensor& grad_v);

}  // namespace nuri::cuda
