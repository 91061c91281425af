// The RoPE and M-RoPE formulas of the CPU and CUDA kernels: which position stream turns a
// frequency, the frequency itself, and the rotation of one pair.
#pragma once

#include <math.h>

#include <cstdint>

#include "kernels/host_device.h"

namespace nuri::rope_math {

// The stream (0 time, 1 height, 2 width) whose positions turn frequency i of an M-RoPE head whose
// sections end at end0 and end1; frequencies past end1 belong to stream 2.
NURI_HOST_DEVICE int64_t stream_of(int64_t i, int64_t end0, int64_t end1) {
  return i < end0 ? 0 : (i < end1 ? 1 : 2);
}

// theta^(-2i / head_dim), in double so that angles stay accurate at positions of 100k and more.
NURI_HOST_DEVICE double inverse_frequency(double theta, int64_t i, int64_t head_dim) {
  return pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
}

// (y1, y2) = (x1, x2) turned by the angle whose cos is c and sin is s.
NURI_HOST_DEVICE void rotate_pair(float x1, float x2, float c, float s, float& y1, float& y2) {
  y1 = x1 * c - x2 * s;
  y2 = x2 * c + x1 * s;
}

}  // namespace nuri::rope_math
