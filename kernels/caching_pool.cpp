#include "kernels/caching_pool.h"

#include <cstdint>
#include <utility>

#include "kernels/error.h"

namespace nuri {

CachingPool::CachingPool(RawAllocate allocate, RawRelease release)
    : raw_allocate_(std::move(allocate)), raw_release_(std::move(release)) {}

CachingPool::~CachingPool() {
  std::lock_guard<std::mutex> lock(mutex_);
  empty_cache_locked();
}

size_t CachingPool::rounded_size(size_t bytes) {
  const size_t multiple = bytes <= kSmallLimit ? kSmallRound : kLargeRound;
  NURI_CHECK(bytes <= SIZE_MAX - multiple, "cannot allocate ", bytes, " bytes");
  const size_t at_least_one = bytes == 0 ? 1 : bytes;
  return (at_least_one + multiple - 1) / multiple * multiple;
}

void* CachingPool::allocate(size_t bytes) {
  const size_t size = rounded_size(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  // Best fit, but a block of twice the request or more is left for a request of its own size.
  if (const auto fit = cached_.lower_bound(size); fit != cached_.end() && fit->first / 2 < size) {
    const auto [block_size, ptr] = *fit;
    cached_.erase(fit);
    stats_.cached_bytes -= block_size;
    ++stats_.reuses;
    in_use_.emplace(ptr, block_size);
    return ptr;
  }
  void* ptr = nullptr;
  try {
    ptr = raw_allocate_(size);
  } catch (const Error&) {
    if (cached_.empty()) throw;
    empty_cache_locked();  // the memory may be held by cached blocks of other sizes
    ptr = raw_allocate_(size);
  }
  NURI_CHECK(ptr != nullptr, "caching pool: the raw allocator returned no memory for ", size,
             " bytes");
  stats_.reserved_bytes += size;
  ++stats_.raw_allocations;
  in_use_.emplace(ptr, size);
  return ptr;
}

void CachingPool::release(void* ptr) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  const auto block = in_use_.find(ptr);
  if (block == in_use_.end())
    return;  // not ours: nothing to give back (destructors must not throw)
  cached_.emplace(block->second, ptr);
  stats_.cached_bytes += block->second;
  in_use_.erase(block);
}

void CachingPool::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  empty_cache_locked();
}

void CachingPool::empty_cache_locked() {
  for (const auto& [size, ptr] : cached_) {
    raw_release_(ptr);
    stats_.reserved_bytes -= size;
  }
  cached_.clear();
  stats_.cached_bytes = 0;
}

PoolStats CachingPool::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace nuri
