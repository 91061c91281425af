// Rotary position embeddings in the Hugging Face Llama/Qwen2 "rotate-half" layout: for head
// dimension Dh, element i < Dh/2 pairs with element i + Dh/2 and turns by position *
// theta^(-2i/Dh). M-RoPE (Qwen2-VL, Qwen2.5-Omni) gives each section of frequencies its own
// position stream (temporal, height, width).
#pragma once

#include <array>

#include "kernels/dispatch.h"
#include "kernels/tensor.h"

namespace nuri {

// Rotates x [B, T, H, Dh] by positions (i32 or i64, [T] shared by the batch, or [B, T]).
Tensor rope(const Tensor& x, const Tensor& positions, float theta);
// Multimodal RoPE: positions [3, T] or [3, B, T] hold (temporal, height, width) ids; the Dh/2
// frequencies split into consecutive sections of the given sizes (summing to Dh/2), and each
// frequency turns by the position of its section. With three equal ids it equals rope().
Tensor mrope(const Tensor& x, const Tensor& positions, std::array<int64_t, 3> sections,
             float theta);

// out = x rotated by +angle (forward) with x [B, T, H, Dh] and positions [S, 1 or B, T], where
// frequency i takes stream s (its section) when S = 3 and stream 0 when S = 1.
NURI_KERNEL(rope_forward, (const Tensor& x, const Tensor& positions,
                           std::array<int64_t, 3> sections, float theta, Tensor& out))
// dx = dy rotated by -angle: the adjoint (and inverse) of rope_forward.
NURI_KERNEL(rope_backward, (const Tensor& dy, const Tensor& positions,
                            std::array<int64_t, 3> sections, float theta, Tensor& dx))

}  // namespace nuri
