// CUDA RoPE and M-RoPE (f32 data) with the CPU kernel's rule: angles in double (position times
// the inverse frequency, then cos and sin), frequency i turning by its section's position stream.
#include "kernels/cuda/map.cuh"
#include "kernels/ops/rope.h"
#include "kernels/rope_math.h"

namespace nuri::cuda {
namespace {

// out = x rotated by direction * angle (direction +1 forward, -1 backward).
void rotate(const char* op, const Tensor& x, const Tensor& positions,
            const std::array<int64_t, 3>& sections, float theta, float direction, Tensor& out) {
  require_f32(op, x, "x");
  const int64_t t = x.size(1), h = x.size(2), dh = x.size(3), half = dh / 2;
  const int64_t streams = positions.size(0), position_rows = positions.size(1) * t;
  const bool per_batch = positions.size(1) != 1;
  const bool wide = positions.dtype() == DType::i64;
  const int64_t* p64 = wide ? positions.data<int64_t>() : nullptr;
  const int32_t* p32 = wide ? nullptr : positions.data<int32_t>();
  const int64_t end0 = sections[0], end1 = sections[0] + sections[1];
  const double base = theta;
  const float* px = x.data<float>();
  float* po = out.data<float>();
  // One thread per rotated pair (i, half + i) of one head of one token.
  launch_map(x, x.numel() / 2, [=] __device__(int64_t j) {
    const int64_t i = j % half, head_row = j / half, bt = head_row / h;
    const int64_t stream = streams == 1 ? 0 : rope_math::stream_of(i, end0, end1);
    const int64_t index = stream * position_rows + (per_batch ? bt : bt % t);
    const double pos = wide ? static_cast<double>(p64[index]) : p32[index];
    const double angle = pos * rope_math::inverse_frequency(base, i, dh);
    const float c = static_cast<float>(cos(angle)), s = direction * static_cast<float>(sin(angle));
    const float* xr = px + head_row * dh;
    float* yr = po + head_row * dh;
    rope_math::rotate_pair(xr[i], xr[half + i], c, s, yr[i], yr[half + i]);
  });
}

}  // namespace

void rope_forward(const Tensor& x, const Tensor& positions, std::array<int64_t, 3> sections,
                  float theta, Tensor& out) {
  rotate("rope", x, positions, sections, theta, 1.0f, out);
}

void rope_backward(const Tensor& dy, const Tensor& positions, std::array<int64_t, 3> sections,
                   float theta, Tensor& dx) {
  rotate("rope backward", dy, positions, sections, theta, -1.0f, dx);
}

}  // namespace nuri::cuda
