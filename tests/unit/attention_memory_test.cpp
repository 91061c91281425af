// Memory bounds of attention: a 4096-token forward and backward allocates no buffer of T * T
// bytes, and the peak memory of a training step grows linearly with T, with the default thread
// count and with 16 threads (the bounds must not depend on it). Allocations are seen two ways:
// nuri's allocator counters (tensors) and a replacement of the global operator new in this binary
// (std::vector and any other heap scratch).
#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

#include "kernels/allocator.h"
#include "kernels/autograd.h"
#include "kernels/ops/attention.h"
#include "kernels/ops/random.h"
#include "tests/unit/thread_count.h"

namespace {

// Largest size passed to any operator new since the last reset.
std::atomic<size_t> largest_new_request{0};

void note_request(size_t bytes) {
  size_t seen = largest_new_request.load(std::memory_order_relaxed);
  while (bytes > seen && !largest_new_request.compare_exchange_weak(seen, bytes)) {
  }
}

void* allocate(size_t bytes, size_t alignment) {
  note_request(bytes);
  const size_t size = bytes == 0 ? 1 : bytes;
  void* ptr = alignment <= alignof(std::max_align_t)
                  ? std::malloc(size)
                  : std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
  return ptr;
}

void* allocate_or_throw(size_t bytes, size_t alignment) {
  void* ptr = allocate(bytes, alignment);
  if (ptr == nullptr) throw std::bad_alloc();
  return ptr;
}

}  // namespace

void* operator new(size_t bytes) {
  return allocate_or_throw(bytes, 0);
}
void* operator new[](size_t bytes) {
  return allocate_or_throw(bytes, 0);
}
void* operator new(size_t bytes, const std::nothrow_t&) noexcept {
  return allocate(bytes, 0);
}
void* operator new[](size_t bytes, const std::nothrow_t&) noexcept {
  return allocate(bytes, 0);
}
void* operator new(size_t bytes, std::align_val_t align) {
  return allocate_or_throw(bytes, static_cast<size_t>(align));
}
void* operator new[](size_t bytes, std::align_val_t align) {
  return allocate_or_throw(bytes, static_cast<size_t>(align));
}
void* operator new(size_t bytes, std::align_val_t align, const std::nothrow_t&) noexcept {
  return allocate(bytes, static_cast<size_t>(align));
}
void* operator new[](size_t bytes, std::align_val_t align, const std::nothrow_t&) noexcept {
  return allocate(bytes, static_cast<size_t>(align));
}
void operator delete(void* ptr) noexcept {
  std::free(ptr);
}
void operator delete[](void* ptr) noexcept {
  std::free(ptr);
}
void operator delete(void* ptr, size_t) noexcept {
  std::free(ptr);
}
void operator delete[](void* ptr, size_t) noexcept {
  std::free(ptr);
}
void operator delete(void* ptr, const std::nothrow_t&) noexcept {
  std::free(ptr);
}
void operator delete[](void* ptr, const std::nothrow_t&) noexcept {
  std::free(ptr);
}
void operator delete(void* ptr, std::align_val_t) noexcept {
  std::free(ptr);
}
void operator delete[](void* ptr, std::align_val_t) noexcept {
  std::free(ptr);
}
void operator delete(void* ptr, size_t, std::align_val_t) noexcept {
  std::free(ptr);
}
void operator delete[](void* ptr, size_t, std::align_val_t) noexcept {
  std::free(ptr);
}
void operator delete(void* ptr, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(ptr);
}
void operator delete[](void* ptr, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(ptr);
}

namespace nuri {
namespace {

constexpr int64_t kHeads = 8;
constexpr int64_t kHeadDim = 64;

// Thread counts every bound is checked with: the default one, and more threads than kv heads.
std::vector<int> thread_counts() {
  return {omp_get_max_threads(), 16};
}

using test::ThreadCount;

// What one causal forward and backward of attention allocated, through the tape.
struct StepMemory {
  size_t peak_bytes = 0;       // allocator peak during the step, above what was live before it
  size_t largest_tensor = 0;   // largest single tensor allocation
  size_t largest_request = 0;  // largest operator new request
  size_t input_bytes = 0;      // bytes of q (and of k and v)
};

StepMemory causal_step(int64_t t) {
  Generator gen{1234, 0};
  const Shape shape = {1, t, kHeads, kHeadDim};
  Tensor q = Tensor::empty(shape), k = Tensor::empty(shape), v = Tensor::empty(shape);
  Tensor grad_out = Tensor::empty(shape);
  for (Tensor* x : {&q, &k, &v, &grad_out}) normal_(*x, gen);
  for (Tensor* x : {&q, &k, &v}) x->set_requires_grad();

  cpu_memory().reset_peak();
  largest_new_request.store(0);
  const size_t before = cpu_memory().stats().current_bytes;
  {
    Tape tape;
    Tensor out;
    {
      TapeScope scope(tape);
      out = attention(q, k, v);
    }
    tape.backward({out}, {grad_out});
  }
  const MemoryStats stats = cpu_memory().stats();
  StepMemory result;
  result.peak_bytes = stats.peak_bytes - before;
  result.largest_tensor = stats.largest_bytes;
  result.largest_request = largest_new_request.load();
  result.input_bytes = q.nbytes();
  for (Tensor* x : {&q, &k, &v}) {
    EXPECT_TRUE(x->grad().defined());
    EXPECT_EQ(x->grad().shape(), shape);
  }
  return result;
}

TEST(AttentionMemory, NewHookSeesHeapScratch) {
  largest_new_request.store(0);
  std::vector<char> scratch(3 << 20);
  asm volatile("" : : "g"(scratch.data()) : "memory");  // keep the allocation
  EXPECT_GE(largest_new_request.load(), scratch.size());
}

TEST(AttentionMemory, NoSquareBufferAt4096Tokens) {
  constexpr int64_t t = 4096;
  const size_t square = static_cast<size_t>(t * t);  // T * T bytes: a quarter of an f32 T x T
  for (int threads : thread_counts()) {
    SCOPED_TRACE(testing::Message() << threads << " threads");
    const ThreadCount scoped(threads);
    const StepMemory m = causal_step(t);
    // The counters saw the step: its output is as large as q.
    EXPECT_GE(m.largest_tensor, m.input_bytes);
    EXPECT_LT(m.largest_tensor, square) << "a tensor of " << m.largest_tensor << " bytes";
    EXPECT_LT(m.largest_request, square)
        << "an operator new request of " << m.largest_request << " bytes";
  }
}

TEST(AttentionMemory, PeakGrowsLinearly) {
  for (int threads : thread_counts()) {
    SCOPED_TRACE(testing::Message() << threads << " threads");
    const ThreadCount scoped(threads);
    const size_t p1024 = causal_step(1024).peak_bytes;
    const size_t p2048 = causal_step(2048).peak_bytes;
    const size_t p4096 = causal_step(4096).peak_bytes;
    ASSERT_GT(p1024, 0u);
    const double r1 = static_cast<double>(p2048) / static_cast<double>(p1024);
    const double r2 = static_cast<double>(p4096) / static_cast<double>(p2048);
    EXPECT_LT(r1, 2.3) << "peak " << p1024 << " -> " << p2048 << " bytes";
    EXPECT_LT(r2, 2.3) << "peak " << p2048 << " -> " << p4096 << " bytes";
  }
}

}  // namespace
}  // namespace nuri
