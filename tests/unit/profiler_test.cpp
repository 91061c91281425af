// The kernel profiler: what it counts, what it leaves out, and its start and stop.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "kernels/autograd.h"
#include "kernels/ops/elementwise.h"
#include "kernels/ops/linear.h"
#include "kernels/profiler.h"

namespace nuri {
namespace {

// The entry of `kernel` on `device`, or null.
const KernelTime* find(const std::vector<KernelTime>& times, const std::string& kernel,
                       const Device& device = Device::cpu()) {
  const auto it = std::find_if(times.begin(), times.end(), [&](const KernelTime& t) {
    return t.kernel == kernel && t.device == device;
  });
  return it == times.end() ? nullptr : &*it;
}

TEST(KernelProfiler, CountsEachDispatchOfTheForwardAndBackward) {
  Tensor x = Tensor::full({64, 32}, 0.5);
  Tensor w = Tensor::full({16, 32}, 0.25);
  w.set_requires_grad();
  start_kernel_profile();
  Tape tape;
  Tensor y;
  {
    TapeScope scope(tape);
    y = add(linear(x, w), linear(x, w));
  }
  tape.backward({y}, {Tensor::ones(y.shape())});
  const std::vector<KernelTime> times = stop_kernel_profile();

  const KernelTime* forward = find(times, "linear_forward");
  const KernelTime* backward = find(times, "linear_backward");
  const KernelTime* sum = find(times, "add_forward");
  ASSERT_NE(forward, nullptr);
  ASSERT_NE(backward, nullptr);
  ASSERT_NE(sum, nullptr);
  EXPECT_EQ(forward->calls, 2);
  EXPECT_EQ(backward->calls, 2);
  EXPECT_EQ(sum->calls, 2);  // the forward's, and the tape adding w's two gradients
  for (const KernelTime& t : times) EXPECT_GE(t.ms, 0.0) << t.kernel;
  EXPECT_TRUE(std::is_sorted(times.begin(), times.end(),
                             [](const KernelTime& a, const KernelTime& b) { return a.ms > b.ms; }));
}

TEST(KernelProfiler, RecordsOnlyWhileRunningAndStartsFromZero) {
  const Tensor x = Tensor::full({8}, 1.0);
  add(x, x);  // before the start: not counted
  start_kernel_profile();
  add(x, x);
  const std::vector<KernelTime> times = stop_kernel_profile();
  ASSERT_NE(find(times, "add_forward"), nullptr);
  EXPECT_EQ(find(times, "add_forward")->calls, 1);
  add(x, x);  // after the stop
  start_kernel_profile();
  EXPECT_EQ(find(stop_kernel_profile(), "add_forward"), nullptr);
}

TEST(KernelProfiler, CountsADispatchInsideAnotherInTheOuterOne) {
  start_kernel_profile();
  {
    const KernelScope outer("outer_kernel", Device::cpu());
    const KernelScope inner("inner_kernel", Device::cpu());
  }
  const std::vector<KernelTime> times = stop_kernel_profile();
  ASSERT_NE(find(times, "outer_kernel"), nullptr);
  EXPECT_EQ(find(times, "outer_kernel")->calls, 1);
  EXPECT_EQ(find(times, "inner_kernel"), nullptr);
}

TEST(KernelProfiler, StartingTwiceOrStoppingTwiceIsAnError) {
  start_kernel_profile();
  EXPECT_THROW(start_kernel_profile(), Error);
  stop_kernel_profile();
  EXPECT_THROW(stop_kernel_profile(), Error);
}

TEST(CudaKernelProfiler, TimesGpuKernelsWithEvents) {
  if (!cuda_compiled()) GTEST_SKIP() << "built without CUDA";
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const Tensor x = Tensor::full({1 << 22}, 1.0, DType::f32, Device::cuda(0));
  start_kernel_profile();
  for (int i = 0; i < 5; ++i) add(x, x);
  const std::vector<KernelTime> times = stop_kernel_profile();
  const KernelTime* sum = find(times, "add_forward", Device::cuda(0));
  ASSERT_NE(sum, nullptr);
  EXPECT_EQ(sum->calls, 5);
  EXPECT_GT(sum->ms, 0.0);  // 5 x 48 MiB of memory traffic takes time on any GPU
}

}  // namespace
}  // namespace nuri
