// The counter-based RNG: known answers, determinism, statistics, and CPU/GPU agreement.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/ops/random.h"
#include "kernels/philox.h"

namespace nuri {
namespace {

// Known-answer vectors published with the Philox4x32-10 reference implementation (Random123).
TEST(Philox, KnownAnswers) {
  struct Vector {
    philox::Block counter;
    uint32_t key0, key1;
    philox::Block expected;
  };
  const Vector vectors[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}},
       0xffffffff,
       0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}},
       0xa4093822,
       0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const Vector& vec : vectors) {
    const philox::Block out = philox::generate(vec.counter, vec.key0, vec.key1);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(out.v[i], vec.expected.v[i]) << "lane " << i;
  }
}

TEST(Random, SameSeedAndOffsetGiveTheSameStream) {
  Generator a{42, 0}, b{42, 0};
  Tensor x = Tensor::empty({1001}), y = Tensor::empty({1001});
  uniform_(x, a);
  uniform_(y, b);
  EXPECT_EQ(x.to_vector(), y.to_vector());
  EXPECT_EQ(a.offset, 251u);  // ceil(1001 / 4) blocks
  // A fill at a later offset continues the stream: element i of it is element 4*251 + i overall.
  Generator whole{42, 0};
  Tensor both = Tensor::empty({2004});
  uniform_(both, whole);
  Tensor next = Tensor::empty({1000});
  uniform_(next, a);
  EXPECT_EQ(both.to_vector()[1004 + 7], next.to_vector()[7]);
  Generator other{43, 0};
  uniform_(y, other);
  EXPECT_NE(x.to_vector(), y.to_vector());
}

TEST(Random, UniformAndNormalStatistics) {
  Generator gen{7, 0};
  Tensor u = Tensor::empty({1 << 20});
  uniform_(u, gen, -2.0f, 3.0f);
  double sum = 0, lo = 1e9, hi = -1e9;
  for (float v : u.to_vector()) {
    sum += v;
    lo = std::min<double>(lo, v);
    hi = std::max<double>(hi, v);
  }
  EXPECT_NEAR(sum / u.numel(), 0.5, 0.01);
  EXPECT_GE(lo, -2.0);
  EXPECT_LT(hi, 3.0);
  Tensor n = Tensor::empty({1 << 20});
  normal_(n, gen, 1.0f, 2.0f);
  double mean = 0, square = 0;
  for (float v : n.to_vector()) {
    ASSERT_TRUE(std::isfinite(v));
    mean += v;
    square += static_cast<double>(v) * v;
  }
  mean /= n.numel();
  const double stddev = std::sqrt(square / n.numel() - mean * mean);
  EXPECT_NEAR(mean, 1.0, 0.01);
  EXPECT_NEAR(stddev, 2.0, 0.01);
}

TEST(Random, RejectsBadArguments) {
  Generator gen{1, 0};
  Tensor ints = Tensor::empty({4}, DType::i32);
  EXPECT_THROW(uniform_(ints, gen), Error);
  Tensor x = Tensor::empty({4});
  EXPECT_THROW(uniform_(x, gen, 1.0f, 0.0f), Error);
  EXPECT_THROW(normal_(x, gen, 0.0f, -1.0f), Error);
}

TEST(CudaRandom, MatchesCpuStream) {
  if (!cuda_compiled()) GTEST_SKIP() << "built without CUDA";
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  for (int64_t n : {1, 7, 4096, 100003}) {
    Generator cpu_gen{1234, 17}, gpu_gen{1234, 17};
    Tensor cpu = Tensor::empty({n});
    Tensor gpu = Tensor::empty({n}, DType::f32, Device::cuda(0));
    uniform_(cpu, cpu_gen, -0.3f, 0.7f);  // a range where the rounding of low + range * u shows
    uniform_(gpu, gpu_gen, -0.3f, 0.7f);
    EXPECT_EQ(cpu.to_vector(), gpu.to_vector()) << "uniform, n=" << n;  // bit-identical
    normal_(cpu, cpu_gen);
    normal_(gpu, gpu_gen);
    const std::vector<float> a = cpu.to_vector(), b = gpu.to_vector();
    for (int64_t i = 0; i < n; ++i) {
      // log, sin and cos differ by a few ulp between the host and device math libraries.
      ASSERT_NEAR(a[i], b[i], 1e-5f * (1.0f + std::abs(a[i]))) << "normal, element " << i;
    }
    EXPECT_EQ(cpu_gen.offset, gpu_gen.offset);
  }
}

TEST(CudaTensor, CopiesAndCastsRoundTrip) {
  if (!cuda_compiled()) GTEST_SKIP() << "built without CUDA";
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const std::vector<float> values = {1.0f, -2.5f, 3.14159f, 65504.0f, 1e-3f};
  Tensor host = Tensor::from_vector(values, {5});
  Tensor device = host.to(Device::cuda(0));
  EXPECT_EQ(device.to_vector(), values);
  for (DType dtype : {DType::bf16, DType::f16}) {
    // The GPU conversion rounds exactly like the CPU one.
    EXPECT_EQ(device.to(dtype).to(Device::cpu()).to_vector(), host.to(dtype).to_vector())
        << dtype_name(dtype);
  }
  EXPECT_EQ(Tensor::full({3}, 2.0, DType::f32, Device::cuda(0)).to_vector(),
            (std::vector<float>{2, 2, 2}));
}

}  // namespace
}  // namespace nuri
