// Philox4x32-10, the counter-based generator shared by the CPU and CUDA kernels: the same seed
// and counter give the same numbers on both.
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define NURI_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define NURI_HOST_DEVICE inline
#endif

namespace nuri::philox {

struct Block {
  uint32_t v[4];
};

// The 10-round bijection of a 128-bit counter under a 64-bit key.
NURI_HOST_DEVICE Block generate(uint64_t counter, uint64_t seed) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
  uint32_t c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    const uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c0 = n0;
    c1 = static_cast<uint32_t>(p1);
    c2 = n2;
    c3 = static_cast<uint32_t>(p0);
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Block{{c0, c1, c2, c3}};
}

// Maps 32 random bits to a float in [0, 1) with 24 bits of precision (exact on every backend).
NURI_HOST_DEVICE float to_unit(uint32_t bits) {
  return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f);
}

}  // namespace nuri::philox
