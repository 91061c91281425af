// Branch-free float math that g++ vectorises inside `#pragma omp simd` loops, where std::exp
// stays scalar without -ffast-math. The selects vectorise because nuri builds with
// -fno-trapping-math (cmake/NuriFlags.cmake). Shared by the CPU kernels.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <limits>

namespace nuri::cpu {

// e^x with a relative error below 2e-7 over the float range; 0 below -87.3 (so exp(-inf) = 0)
// and +inf above 88.7.
inline float fast_exp(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;
  constexpr float kLn2Lo = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float clamped = std::min(std::max(x, -87.3f), 88.7f);
  const float shifted = clamped * kLog2e + kRound;
  const float n = shifted - kRound;
  const float r = clamped - n * kLn2Hi - n * kLn2Lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // The low mantissa bits of `shifted` hold n; add n to p's exponent.
  const int32_t exponent = (std::bit_cast<int32_t>(shifted) - 0x4B400000) << 23;
  const float scaled = std::bit_cast<float>(std::bit_cast<int32_t>(p) + exponent);
  const float high = x > 88.7f ? std::numeric_limits<float>::infinity() : scaled;
  return x < -87.3f ? 0.0f : high;
}

}  // namespace nuri::cpu
