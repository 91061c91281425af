// A caching pool over a raw allocator (cudaMalloc for GPU tensors): freed blocks are kept and
// handed out again, so a training step's allocations stop costing a device-synchronising cudaMalloc
// and cudaFree each. Sizes are rounded to classes so that a step's repeated shapes find their
// blocks. Reuse is safe for GPU memory because every kernel runs on the legacy default stream, so a
// block's next user is ordered after its last one; a collective on NCCL's stream keeps its tensors
// alive until it completes.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>

namespace nuri {

// What a pool holds: blocks handed out, and blocks cached for reuse.
struct PoolStats {
  size_t reserved_bytes = 0;   // obtained from the raw allocator and not yet returned to it
  size_t cached_bytes = 0;     // of those, free and waiting for reuse
  size_t raw_allocations = 0;  // calls to the raw allocator that succeeded
  size_t reuses = 0;           // allocations served from the cache
};

class CachingPool {
 public:
  // `allocate` throws (nuri::Error) when the memory cannot be had; `release` never throws.
  using RawAllocate = std::function<void*(size_t bytes)>;
  using RawRelease = std::function<void(void* ptr)>;

  // Requests up to this size are rounded to kSmallRound bytes, larger ones to kLargeRound.
  static constexpr size_t kSmallLimit = size_t{1} << 20;
  static constexpr size_t kSmallRound = 512;
  static constexpr size_t kLargeRound = size_t{2} << 20;

  CachingPool(RawAllocate allocate, RawRelease release);
  ~CachingPool();  // returns every cached block; blocks still handed out are the owners' leak
  CachingPool(const CachingPool&) = delete;
  CachingPool& operator=(const CachingPool&) = delete;

  // A block of at least `bytes` (at least one byte): the smallest cached block of the request's
  // size class or larger, but less than twice it, or else a new one from the raw allocator. When
  // the raw allocator fails, the cache is emptied and the request tried once more.
  void* allocate(size_t bytes);
  // Gives back a block from allocate() for reuse.
  void release(void* ptr);
  // Returns every cached block to the raw allocator.
  void empty_cache();
  PoolStats stats() const;

  // The size class of a request: what a block made for it holds.
  static size_t rounded_size(size_t bytes);

 private:
  void empty_cache_locked();

  RawAllocate raw_allocate_;
  RawRelease raw_release_;
  mutable std::mutex mutex_;
  std::multimap<size_t, void*> cached_;       // free blocks by size
  std::unordered_map<void*, size_t> in_use_;  // blocks handed out, with their sizes
  PoolStats stats_;
};

}  // namespace nuri
