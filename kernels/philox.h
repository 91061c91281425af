// Philox4x32-10, the counter-based generator shared by the CPU and CUDA kernels: the same seed
// and counter give the same numbers on both.
#pragma once

#include <cstdint>

#include "kernels/host_device.h"

namespace nuri::philox {

struct Block {
  uint32_t v[4];
};

// The 10-round bijection of a 128-bit counter under a 64-bit key.
NURI_HOST_DEVICE Block generate(Block counter, uint32_t key0, uint32_t key1) {
  uint32_t c0 = counter.v[0], c1 = counter.v[1], c2 = counter.v[2], c3 = counter.v[3];
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    const uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ key0;
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ key1;
    c0 = n0;
    c1 = static_cast<uint32_t>(p1);
    c2 = n2;
    c3 = static_cast<uint32_t>(p0);
    key0 += 0x9E3779B9u;
    key1 += 0xBB67AE85u;
  }
  return Block{{c0, c1, c2, c3}};
}

// The block at a 64-bit stream position for a 64-bit seed.
NURI_HOST_DEVICE Block generate(uint64_t counter, uint64_t seed) {
  return generate(
      Block{{static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32), 0, 0}},
      static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// Maps 32 random bits to a float in [0, 1) with 24 bits of precision (exact on every backend).
NURI_HOST_DEVICE float to_unit(uint32_t bits) {
  return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f);
}

}  // namespace nuri::philox
