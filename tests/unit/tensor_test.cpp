// Tensor, dtype conversion and allocator behaviour.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/allocator.h"
#include "kernels/tensor.h"

namespace nuri {
namespace {

TEST(Tensor, ShapeAndViews) {
  Tensor t = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {2, 3});
  EXPECT_EQ(t.dim(), 2);
  EXPECT_EQ(t.size(-1), 3);
  EXPECT_EQ(t.numel(), 6);
  Tensor v = t.view({3, -1});
  EXPECT_EQ(v.shape(), (Shape{3, 2}));
  EXPECT_EQ(v.raw_data(), t.raw_data());  // a view shares storage
  Tensor row = t.outer_slice(1, 2);
  EXPECT_EQ(row.shape(), (Shape{1, 3}));
  EXPECT_EQ(row.to_vector(), (std::vector<float>{3, 4, 5}));
  EXPECT_THROW(t.view({4, 2}), Error);
  EXPECT_THROW(t.view({-1, -1}), Error);
  EXPECT_THROW(t.outer_slice(1, 3), Error);
  EXPECT_THROW(t.size(2), Error);
}

TEST(Tensor, AlignedAllocation) {
  for (int64_t n : {1, 3, 17, 1000}) {
    Tensor t = Tensor::empty({n});
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % kCpuAlignment, 0u);
  }
}

TEST(Tensor, AllocatorStatistics) {
  cpu_memory().reset_peak();
  const size_t before = cpu_memory().stats().current_bytes;
  {
    Tensor t = Tensor::empty({1000});
    EXPECT_EQ(cpu_memory().stats().current_bytes, before + 4000);
    EXPECT_GE(cpu_memory().stats().largest_bytes, 4000u);
  }
  EXPECT_EQ(cpu_memory().stats().current_bytes, before);
  EXPECT_GE(cpu_memory().stats().peak_bytes, before + 4000);
}

TEST(Tensor, FillAndItem) {
  EXPECT_EQ(Tensor::full({2, 2}, 2.5).to_vector(), (std::vector<float>{2.5, 2.5, 2.5, 2.5}));
  EXPECT_EQ(Tensor::zeros({3}, DType::i64).to(DType::f32).to_vector(),
            (std::vector<float>{0, 0, 0}));
  EXPECT_FLOAT_EQ(Tensor::scalar(4.0f).item(), 4.0f);
  EXPECT_THROW(Tensor::ones({2}).item(), Error);
  EXPECT_THROW(Tensor::empty({-1}), Error);
  EXPECT_THROW(Tensor().shape(), Error);
}

TEST(Tensor, IntVectorReadsBothIntegerWidths) {
  const std::vector<int64_t> big = {-3, 0, int64_t{1} << 40};
  EXPECT_EQ(Tensor::from_data<int64_t>(big, {3}).to_int_vector(), big);
  const std::vector<int32_t> small = {7, -1};
  EXPECT_EQ(Tensor::from_data<int32_t>(small, {2}).to_int_vector(), (std::vector<int64_t>{7, -1}));
  EXPECT_THROW(Tensor::ones({2}).to_int_vector(), Error);
}

TEST(Tensor, TypedAccessChecksDtype) {
  Tensor t = Tensor::zeros({2}, DType::i32);
  EXPECT_NO_THROW(t.data<int32_t>());
  EXPECT_THROW(t.data<float>(), Error);
}

TEST(Dtype, Bf16RoundsToNearestEven) {
  EXPECT_EQ(float_to_bf16(1.0f).bits, 0x3f80);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even neighbour, 1.
  EXPECT_EQ(float_to_bf16(1.00390625f).bits, 0x3f80);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
  EXPECT_EQ(float_to_bf16(1.01171875f).bits, 0x3f82);
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(NAN))));
  EXPECT_TRUE(std::isinf(bf16_to_float(float_to_bf16(INFINITY))));
  for (float v : {0.0f, -2.0f, 3.140625f, 65536.0f, -1e-20f}) {
    const float back = bf16_to_float(float_to_bf16(v));
    EXPECT_NEAR(back, v, std::abs(v) / 128) << v;
  }
}

TEST(Dtype, F16RoundTripsEveryHalf) {
  // Every finite half value converts to float and back to the same bits.
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const f16_t h{static_cast<uint16_t>(bits)};
    const float f = f16_to_float(h);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_float(float_to_f16(f))));
      continue;
    }
    ASSERT_EQ(float_to_f16(f).bits, bits) << "half bits " << bits << " = " << f;
  }
}

TEST(Dtype, F16RoundsAndSaturates) {
  EXPECT_EQ(float_to_f16(65504.0f).bits, 0x7bff);            // largest half
  EXPECT_EQ(float_to_f16(65520.0f).bits, 0x7c00);            // halfway past it rounds to infinity
  EXPECT_EQ(float_to_f16(1e-8f).bits, 0x0000);               // below half the smallest subnormal
  EXPECT_EQ(float_to_f16(6e-8f).bits, 0x0001);               // rounds up to the smallest subnormal
  EXPECT_EQ(float_to_f16(1.0f + 1.0f / 2048).bits, 0x3c00);  // tie to even
}

TEST(Dtype, CastBetweenEveryPair) {
  const std::vector<float> values = {0, 1, -2, 3, 100, -7};
  for (DType dtype : {DType::f32, DType::bf16, DType::f16, DType::i32, DType::i64}) {
    Tensor t = Tensor::from_vector(values, {6}).to(dtype);
    EXPECT_EQ(t.dtype(), dtype);
    EXPECT_EQ(t.to(DType::f32).to_vector(), values) << dtype_name(dtype);
  }
  // Integers truncate toward zero and saturate; u8 clamps at 0.
  EXPECT_EQ(
      Tensor::from_vector({-1.5f, 2.7f, 300.0f}, {3}).to(DType::u8).to(DType::f32).to_vector(),
      (std::vector<float>{0, 2, 255}));
  EXPECT_EQ(Tensor::from_vector({1e20f}, {1}).to(DType::i32).to(DType::i64).data<int64_t>()[0],
            std::numeric_limits<int32_t>::max());
  // Every dtype converts directly to every other (not only through f32).
  for (DType from : {DType::f32, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8}) {
    for (DType to : {DType::f32, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8}) {
      const std::vector<float> small = {0, 1, 2, 3, 100, 7};
      Tensor t = Tensor::from_vector(small, {6}).to(from).to(to);
      EXPECT_EQ(t.to(DType::f32).to_vector(), small)
          << dtype_name(from) << " -> " << dtype_name(to);
    }
  }
  // i64 saturates at both ends, infinities included; NaN becomes 0.
  Tensor extremes = Tensor::from_vector({INFINITY, -INFINITY, 1e30f, NAN}, {4}).to(DType::i64);
  EXPECT_EQ(extremes.data<int64_t>()[0], std::numeric_limits<int64_t>::max() - 1023);
  EXPECT_EQ(extremes.data<int64_t>()[1], std::numeric_limits<int64_t>::min());
  EXPECT_EQ(extremes.data<int64_t>()[2], std::numeric_limits<int64_t>::max() - 1023);
  EXPECT_EQ(extremes.data<int64_t>()[3], 0);
  EXPECT_EQ(Tensor::full({1}, 300, DType::u8).data<uint8_t>()[0], 255);
  EXPECT_EQ(Tensor::full({1}, -5, DType::u8).data<uint8_t>()[0], 0);
  // bf16 -> f16 keeps what both can hold, and i64 -> bf16 rounds to 8 significant bits.
  EXPECT_EQ(Tensor::from_vector({0.5f, -3.0f}, {2}).to(DType::bf16).to(DType::f16).to_vector(),
            (std::vector<float>{0.5f, -3.0f}));
  Tensor big = Tensor::zeros({1}, DType::i64);
  big.data<int64_t>()[0] = 257;
  EXPECT_EQ(big.to(DType::bf16).to_vector(), (std::vector<float>{256}));
  EXPECT_EQ(parse_dtype("bf16"), DType::bf16);
  EXPECT_THROW(parse_dtype("f64"), Error);
}

TEST(Device, Parse) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda:1"), Device::cuda(1));
  EXPECT_THROW(Device::parse("tpu"), Error);
  EXPECT_THROW(Device::parse("cuda:x"), Error);
}

TEST(Device, UsableDeviceSaysWhyAGpuCannotBeHad) {
  EXPECT_EQ(usable_device("cpu"), Device::cpu());
  EXPECT_THROW(usable_device("tpu"), Error);
  const int gpus = cuda_device_count();
  const std::string past = "cuda:" + std::to_string(gpus);  // one past the last GPU there is
  try {
    usable_device(past);
    FAIL() << past << " was accepted";
  } catch (const Error& e) {
    const std::string why = !cuda_compiled() ? "no CUDA backend"
                            : gpus == 0      ? "no GPU is visible"
                                             : "there are only";
    EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(past), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nuri
