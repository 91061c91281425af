// CPU RoPE and M-RoPE (f32 data). Angles are computed in double (positions times the inverse
// frequency, then cos and sin), so that rotations stay accurate for positions of 100k and more;
// one table of cos and sin per position row is shared by all heads.
#include <cmath>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/ops/checks.h"
#include "kernels/ops/rope.h"
#include "kernels/rope_math.h"

namespace nuri::cpu {
namespace {

// out = x rotated by direction * angle (direction +1 forward, -1 backward).
void rotate(const char* op, const Tensor& x, const Tensor& positions,
            const std::array<int64_t, 3>& sections, float theta, float direction, Tensor& out) {
  checks::cpu_f32(op, x, "x");
  const int64_t b = x.size(0), t = x.size(1), h = x.size(2), dh = x.size(3);
  const int64_t half = dh / 2;
  const int64_t streams = positions.size(0), position_rows = positions.size(1) * t;
  std::vector<double> inv_freq(static_cast<size_t>(half));
  std::vector<int64_t> stream_of(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    inv_freq[i] = rope_math::inverse_frequency(theta, i, dh);
    stream_of[i] =
        streams == 1 ? 0 : rope_math::stream_of(i, sections[0], sections[0] + sections[1]);
  }
  const bool wide = positions.dtype() == DType::i64;
  const int64_t* p64 = wide ? positions.data<int64_t>() : nullptr;
  const int32_t* p32 = wide ? nullptr : positions.data<int32_t>();
  // table[row] holds cos of the half frequencies, then direction * sin.
  std::vector<float> table(static_cast<size_t>(position_rows * dh));
#pragma omp parallel for if (position_rows * half > 4096)
  for (int64_t row = 0; row < position_rows; ++row) {
    float* cos_row = table.data() + row * dh;
    for (int64_t i = 0; i < half; ++i) {
      const int64_t index = stream_of[i] * position_rows + row;
      const double pos = wide ? static_cast<double>(p64[index]) : p32[index];
      const double angle = pos * inv_freq[i];
      cos_row[i] = static_cast<float>(std::cos(angle));
      cos_row[half + i] = direction * static_cast<float>(std::sin(angle));
    }
  }
  const float* px = x.data<float>();
  float* po = out.data<float>();
  const bool per_batch = positions.size(1) != 1;
#pragma omp parallel for if (x.numel() > kParallelElements)
  for (int64_t bt = 0; bt < b * t; ++bt) {
    const int64_t row = per_batch ? bt : bt % t;
    const float* c = table.data() + row * dh;
    const float* s = c + half;
    for (int64_t head = 0; head < h; ++head) {
      const float* xr = px + (bt * h + head) * dh;
      float* yr = po + (bt * h + head) * dh;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        rope_math::rotate_pair(xr[i], xr[half + i], c[i], s[i], yr[i], yr[half + i]);
      }
    }
  }
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

}  // namespace nuri::cpu
