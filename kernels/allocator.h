// Memory for tensors: a 64-byte-aligned CPU allocator and a caching pool per GPU, with statistics.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>

#include "kernels/caching_pool.h"
#include "kernels/device.h"

namespace nuri {

// Byte counts an allocator has handed out; tests read them to prove memory bounds.
struct MemoryStats {
  size_t current_bytes = 0;  // live now
  size_t peak_bytes = 0;     // highest current_bytes since the last reset
  size_t largest_bytes = 0;  // largest single allocation since the last reset
  size_t allocations = 0;    // number of allocations since the last reset
};

// Alignment of every CPU tensor buffer (one cache line, enough for AVX-512 loads).
inline constexpr size_t kCpuAlignment = 64;

// Process-wide counters for one device's allocations.
class MemoryCounters {
 public:
  void on_alloc(size_t bytes);
  void on_free(size_t bytes);
  MemoryStats stats() const;
  // Sets peak to current and clears the largest-allocation and count figures.
  void reset_peak();

 private:
  std::atomic<size_t> current_{0}, peak_{0}, largest_{0}, allocations_{0};
};

// Counters for all CPU tensor memory.
MemoryCounters& cpu_memory();
// Counters for all memory on the given GPU.
MemoryCounters& cuda_memory(int index);

// The caching pool of GPU `index`: what it has reserved from the driver and reused (all zero in a
// build without CUDA).
PoolStats cuda_pool_stats(int index);
// Returns GPU `index`'s cached blocks to the driver, as torch.cuda.empty_cache does.
void cuda_empty_cache(int index);

// Allocates `bytes` (rounded up to the alignment) on `device`; never returns null. GPU memory
// comes from the device's caching pool.
void* device_alloc(Device device, size_t bytes);
// Frees memory from device_alloc; `bytes` must be the size it was asked for.
void device_free(Device device, void* ptr, size_t bytes);

}  // namespace nuri
