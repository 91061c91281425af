// Fused scaled-dot-product attention with causal, full and block-causal masks and grouped-query
// heads. Tensors keep the [batch, time, heads, head_dim] layout that linear projections produce,
// so no transposes are needed, and no [T, T] score matrix is ever stored: the kernels tile the
// keys and keep a running softmax (flash attention).
#pragma once

#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/tensor.h"

namespace nuri {

// Which keys a query may see. Queries are aligned to the end of the keys: with Tq queries and Tk
// keys, query i sits at position p = Tk - Tq + i (one new token against a KV cache of Tk).
enum class AttentionMask {
  full,          // every key
  causal,        // keys j <= p
  block_causal,  // keys in p's block of block_size tokens and every earlier block
};

// How attention masks and scales its scores.
struct AttentionOptions {
  AttentionMask mask = AttentionMask::causal;
  int64_t block_size = 0;  // tokens per block, for block_causal
  float scale = 0;         // score scale; 0 means 1 / sqrt(head_dim)
  // Mixed precision, set by attention() under GemmPrecision::bf16 (kernels/ops/linear.h): the
  // products read bf16-rounded q, k, v and output gradient and accumulate in f32; the softmax,
  // lse, output and gradients stay f32. The GPU runs them on bf16 tensor cores (its probabilities
  // and score gradients are rounded to bf16 too); the CPU rounds the operands and computes in f32.
  bool bf16_products = false;
};

// softmax(q k^T * scale + mask) v per head. q is [B, Tq, Hq, D]; k and v are [B, Tk, Hkv, D] with
// Hq a multiple of Hkv (query head h reads kv head h / (Hq / Hkv)). Returns [B, Tq, Hq, D].
// Causal and block-causal masks need Tq <= Tk, so that every query sees at least one key.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v,
                 const AttentionOptions& options = {});

// The kernels take options whose scale is already resolved (never 0).
// out = attention(q, k, v); lse[b, h, i] = log of the softmax denominator of query row i of head
// h (f32, [B, Hq, Tq]), including the running maximum, saved for the backward.
NURI_KERNEL(attention_forward, (const Tensor& q, const Tensor& k, const Tensor& v,
                                const AttentionOptions& options, Tensor& out, Tensor& lse))
// Gradients of attention from grad_out, recomputing the scores tile by tile from lse. grad_q,
// grad_k and grad_v have the shapes of q, k and v and are overwritten. Their bits do not depend
// on the number of threads, and the scratch does not grow with it.
NURI_KERNEL(attention_backward,
            (const Tensor& grad_out, const Tensor& q, const Tensor& k, const Tensor& v,
             const Tensor& out, const Tensor& lse, const AttentionOptions& options, Tensor& grad_q,
             Tensor& grad_k, Tensor& grad_v))

// The operands of bf16_products: t (f32) rounded to bf16 and widened back to f32.
Tensor rounded_to_bf16(const Tensor& t);
// `options` with bf16_products off: the f32 kernels' options for rounded operands.
AttentionOptions f32_products(AttentionOptions options);

}  // namespace nuri
