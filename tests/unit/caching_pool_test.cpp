// The caching pool over host memory (the same code serves cudaMalloc on a GPU), and the GPU pool
// behind device tensors. Suites named Cuda* carry the cuda label and skip without a GPU.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <unordered_map>

#include "kernels/allocator.h"
#include "kernels/caching_pool.h"
#include "kernels/error.h"
#include "kernels/tensor.h"

namespace nuri {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

// Host memory with a byte budget: allocations past it fail as cudaMalloc does when the GPU is full.
struct BudgetedHeap {
  size_t budget = SIZE_MAX, used = 0;
  std::unordered_map<void*, size_t> live;  // blocks and their sizes

  CachingPool pool() {
    return CachingPool(
        [this](size_t bytes) -> void* {
          NURI_CHECK(used + bytes <= budget, "out of memory allocating ", bytes, " bytes");
          void* ptr = std::malloc(bytes);
          used += bytes;
          live.emplace(ptr, bytes);
          return ptr;
        },
        [this](void* ptr) {
          used -= live.at(ptr);
          live.erase(ptr);
          std::free(ptr);
        });
  }
};

TEST(CachingPool, RoundsSmallRequestsTo512BytesAndLargeOnesTo2MiB) {
  EXPECT_EQ(CachingPool::rounded_size(0), 512u);
  EXPECT_EQ(CachingPool::rounded_size(1), 512u);
  EXPECT_EQ(CachingPool::rounded_size(512), 512u);
  EXPECT_EQ(CachingPool::rounded_size(513), 1024u);
  EXPECT_EQ(CachingPool::rounded_size(kMiB), kMiB);
  EXPECT_EQ(CachingPool::rounded_size(kMiB + 1), 2 * kMiB);
  EXPECT_EQ(CachingPool::rounded_size(5 * kMiB), 6 * kMiB);
  EXPECT_THROW(CachingPool::rounded_size(SIZE_MAX), Error);
}

TEST(CachingPool, AFreedBlockServesTheNextRequestOfItsClass) {
  BudgetedHeap heap;
  CachingPool pool = heap.pool();
  void* first = pool.allocate(1000);
  pool.release(first);
  EXPECT_EQ(pool.stats().cached_bytes, 1024u);
  void* second = pool.allocate(700);  // rounds to 1024 too
  EXPECT_EQ(second, first);
  const PoolStats stats = pool.stats();
  EXPECT_EQ(stats.raw_allocations, 1u);
  EXPECT_EQ(stats.reuses, 1u);
  EXPECT_EQ(stats.reserved_bytes, 1024u);
  EXPECT_EQ(stats.cached_bytes, 0u);
  pool.release(second);
}

TEST(CachingPool, ABlockOfTwiceTheRequestIsLeftForItsOwnSize) {
  BudgetedHeap heap;
  CachingPool pool = heap.pool();
  void* big = pool.allocate(8 * kMiB);
  pool.release(big);
  void* small = pool.allocate(2 * kMiB);  // 8 MiB cached, but 4 times the request
  EXPECT_NE(small, big);
  void* fits = pool.allocate(6 * kMiB);  // 8 MiB is less than twice 6 MiB: reused
  EXPECT_EQ(fits, big);
  EXPECT_EQ(pool.stats().raw_allocations, 2u);
  EXPECT_EQ(heap.used, 10 * kMiB);
  pool.release(small);
  pool.release(fits);
}

TEST(CachingPool, EmptyCacheReturnsOnlyFreeBlocks) {
  BudgetedHeap heap;
  CachingPool pool = heap.pool();
  void* kept = pool.allocate(3 * kMiB);
  void* freed = pool.allocate(kMiB);
  pool.release(freed);
  EXPECT_EQ(heap.used, 4 * kMiB + kMiB);
  pool.empty_cache();
  EXPECT_EQ(heap.used, 4 * kMiB);
  EXPECT_EQ(pool.stats().reserved_bytes, 4 * kMiB);
  EXPECT_EQ(pool.stats().cached_bytes, 0u);
  pool.release(kept);
}

TEST(CachingPool, WhenTheRawAllocatorFailsTheCacheIsEmptiedAndTheRequestRetried) {
  BudgetedHeap heap;
  heap.budget = 5 * kMiB;
  CachingPool pool = heap.pool();
  pool.release(pool.allocate(4 * kMiB));  // 4 MiB cached
  void* ptr = pool.allocate(kMiB + 1);    // 2 MiB: does not fit beside the cached block
  ASSERT_NE(ptr, nullptr);
  EXPECT_EQ(heap.used, 2 * kMiB);
  EXPECT_EQ(pool.stats().reserved_bytes, 2 * kMiB);
  pool.release(ptr);
}

TEST(CachingPool, AFailureWithNothingCachedIsTheRawAllocatorsError) {
  BudgetedHeap heap;
  heap.budget = 2 * kMiB;
  CachingPool pool = heap.pool();
  void* held = pool.allocate(2 * kMiB);
  try {
    pool.allocate(kMiB);
    FAIL() << "expected an out-of-memory error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out of memory allocating 1048576 bytes"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(pool.stats().reserved_bytes, 2 * kMiB);
  pool.release(held);
}

TEST(CachingPool, DestructionReturnsCachedBlocks) {
  BudgetedHeap heap;
  {
    CachingPool pool = heap.pool();
    pool.release(pool.allocate(100));
    pool.release(pool.allocate(3 * kMiB));
    EXPECT_EQ(heap.used, 512 + 4 * kMiB);
  }
  EXPECT_EQ(heap.used, 0u);
}

TEST(CudaCachingPool, AFreedTensorsMemoryServesTheNextTensor) {
  if (!cuda_compiled()) GTEST_SKIP() << "built without CUDA";
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const PoolStats before = cuda_pool_stats(0);
  const void* address = nullptr;
  {
    Tensor first = Tensor::full({1000, 1000}, 1.0, DType::f32, Device::cuda(0));
    address = first.raw_data();
  }
  Tensor second = Tensor::full({1000, 1000}, 2.0, DType::f32, Device::cuda(0));
  EXPECT_EQ(second.raw_data(), address);
  EXPECT_GT(cuda_pool_stats(0).reuses, before.reuses);
  EXPECT_EQ(second.to_vector()[999999], 2.0f);
  cuda_empty_cache(0);
  EXPECT_EQ(cuda_pool_stats(0).cached_bytes, 0u);
}

// A CUDA call that fails (here, memory on a GPU that is not there) is an error of its own and
// leaves nothing behind that the next kernel launch's check would report.
TEST(CudaCachingPool, AFailedCallIsNotBlamedOnTheNextLaunch) {
  if (!cuda_compiled()) GTEST_SKIP() << "built without CUDA";
  const int count = cuda_device_count();
  if (count == 0) GTEST_SKIP() << "no CUDA device";
  EXPECT_THROW(Tensor::empty({4}, DType::f32, Device::cuda(count)), Error);
  const Tensor ones = Tensor::full({4}, 1.0, DType::f32, Device::cuda(0));
  EXPECT_EQ(ones.to_vector()[3], 1.0f);
}

}  // namespace
}  // namespace nuri
