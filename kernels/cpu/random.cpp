// CPU random fills. kernels/cuda/random.cu uses the same formulas: uniform numbers are
// bit-identical on both (one explicit fused multiply-add each); normal ones differ in the last
// bits of log, sin and cos.
#include <cmath>

#include "kernels/cpu/parallel.h"
#include "kernels/ops/checks.h"
#include "kernels/ops/random.h"
#include "kernels/philox.h"

namespace nuri::cpu {

void random_uniform(Tensor& x, uint64_t seed, uint64_t offset, float low, float high) {
  checks::cpu_f32("uniform_", x, "x");
  float* px = x.data<float>();
  const int64_t n = x.numel();
  const float range = high - low;
#pragma omp parallel for if (n > 2 * kParallelElements)
  for (int64_t b = 0; b < (n + 3) / 4; ++b) {
    const philox::Block block = philox::generate(offset + static_cast<uint64_t>(b), seed);
    for (int lane = 0; lane < 4 && 4 * b + lane < n; ++lane) {
      px[4 * b + lane] = std::fma(range, philox::to_unit(block.v[lane]), low);
    }
  }
}

void random_normal(Tensor& x, uint64_t seed, uint64_t offset, float mean, float stddev) {
  checks::cpu_f32("normal_", x, "x");
  float* px = x.data<float>();
  const int64_t n = x.numel();
  constexpr float kTwoPi = 6.2831853071795864769f;
#pragma omp parallel for if (n > 2 * kParallelElements)
  for (int64_t b = 0; b < (n + 3) / 4; ++b) {
    const philox::Block block = philox::generate(offset + static_cast<uint64_t>(b), seed);
    for (int pair = 0; pair < 2; ++pair) {
      const float u0 = 1.0f - philox::to_unit(block.v[2 * pair]);  // (0, 1]: log is finite
      const float u1 = philox::to_unit(block.v[2 * pair + 1]);
      const float radius = std::sqrt(-2.0f * std::log(u0));
      const int64_t i = 4 * b + 2 * pair;
      if (i < n) px[i] = mean + stddev * radius * std::cos(kTwoPi * u1);
      if (i + 1 < n) px[i + 1] = mean + stddev * radius * std::sin(kTwoPi * u1);
    }
  }
}

}  // namespace nuri::cpu
