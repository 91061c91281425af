// linear under GemmPrecision::bf16 (mixed precision): the CPU's products are exactly those of
// bf16-rounded operands accumulated in f32, the gradients round the output gradient too and land
// in f32, and the GPU's tensor-core GEMMs match the CPU to within summation order.
//
// Tolerances (normalised MSE): against the float64 product of the rounded operands 1e-10 (f32
// accumulation only); GPU against CPU 1e-10 (the same products summed in another order). The
// rounding itself must show: against the f32 path the error exceeds 1e-8 (bf16 keeps 8 bits).
#include <gtest/gtest.h>

#include "kernels/autograd.h"
#include "kernels/device.h"
#include "kernels/ops/linear.h"
#include "tests/ops/harness.h"

namespace nuri::test {
namespace {

constexpr double kProductTolerance = 1e-10;
constexpr double kParityTolerance = 1e-10;
constexpr double kRoundingShows = 1e-8;

// The values of t rounded to bf16, in float64.
Ref rounded(const Tensor& t) {
  return to_ref(t.to(DType::bf16));
}

// a [r, k] times b [c, k]^T in float64.
Ref product_abt(const Ref& a, const Ref& b, int64_t r, int64_t c, int64_t k) {
  Ref out(Shape{r, c});
  for (int64_t i = 0; i < r; ++i) {
    for (int64_t j = 0; j < c; ++j) {
      double total = 0;
      for (int64_t x = 0; x < k; ++x) total += a[i * k + x] * b[j * k + x];
      out[i * c + j] = total;
    }
  }
  return out;
}

// The transpose of a [r, c].
Ref transposed(const Ref& a, int64_t r, int64_t c) {
  Ref out(Shape{c, r});
  for (int64_t i = 0; i < r; ++i) {
    for (int64_t j = 0; j < c; ++j) out[j * r + i] = a[i * c + j];
  }
  return out;
}

// Forward and gradients of linear in bf16 on `device`, with seed g for the output.
struct Bf16Run {
  Ref y, grad_x, grad_w, grad_b;
};

Bf16Run run_bf16(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& g,
                 const Device& device) {
  Tensor xd = x.to(device), wd = w.to(device), bd = b.to(device);
  xd.set_requires_grad();
  wd.set_requires_grad();
  bd.set_requires_grad();
  Tape tape;
  Tensor y;
  {
    TapeScope scope(tape);
    const GemmPrecisionScope bf16(GemmPrecision::bf16);
    y = linear(xd, wd, bd);
  }
  EXPECT_EQ(y.dtype(), DType::f32);
  tape.backward({y}, {g.to(device)});
  EXPECT_EQ(xd.grad().dtype(), DType::f32);
  EXPECT_EQ(wd.grad().dtype(), DType::f32);
  return {to_ref(y), to_ref(xd.grad()), to_ref(wd.grad()), to_ref(bd.grad())};
}

struct Operands {
  Tensor x, w, b, g;
};

Operands operands(int64_t rows, int64_t in, int64_t out) {
  CaseRng rng(17);
  return {rng.normal({rows, in}), rng.normal({out, in}), rng.normal({out}),
          rng.normal({rows, out})};
}

TEST(MixedPrecision, LinearMultipliesBf16RoundedOperandsInF32) {
  const int64_t rows = 37, in = 300, out = 29;
  const Operands o = operands(rows, in, out);
  const Bf16Run run = run_bf16(o.x, o.w, o.b, o.g, Device::cpu());

  const Ref x = rounded(o.x), w = rounded(o.w), g = rounded(o.g), bias = to_ref(o.b);
  Ref y = product_abt(x, w, rows, out, in);
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < out; ++j) y[i * out + j] += bias[j];
  }
  EXPECT_LT(nmse(run.y.v, y.v), kProductTolerance);
  // grad_x = g w and grad_w = g^T x over the rounded values; grad_b sums the unrounded g.
  const Ref grad_x = product_abt(g, transposed(w, out, in), rows, in, out);
  const Ref grad_w = product_abt(transposed(g, rows, out), transposed(x, rows, in), out, in, rows);
  EXPECT_LT(nmse(run.grad_x.v, grad_x.v), kProductTolerance);
  EXPECT_LT(nmse(run.grad_w.v, grad_w.v), kProductTolerance);
  const Ref g_exact = to_ref(o.g);
  Ref grad_b(Shape{out});
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < out; ++j) grad_b[j] += g_exact[i * out + j];
  }
  EXPECT_LT(nmse(run.grad_b.v, grad_b.v), kProductTolerance);

  // The rounding is real: the f32 path gives other numbers.
  const Ref f32 = to_ref(linear(o.x, o.w, o.b));
  EXPECT_GT(nmse(run.y.v, f32.v), kRoundingShows);
}

TEST(MixedPrecision, TheScopeEndsAndNests) {
  EXPECT_EQ(gemm_precision(), GemmPrecision::f32);
  {
    const GemmPrecisionScope outer(GemmPrecision::bf16);
    EXPECT_EQ(gemm_precision(), GemmPrecision::bf16);
    {
      const GemmPrecisionScope inner(GemmPrecision::f32);
      EXPECT_EQ(gemm_precision(), GemmPrecision::f32);
    }
    EXPECT_EQ(gemm_precision(), GemmPrecision::bf16);
  }
  EXPECT_EQ(gemm_precision(), GemmPrecision::f32);
}

TEST(OpParityCuda, LinearInBf16MatchesTheCpu) {
  if (!cuda_compiled()) GTEST_SKIP() << "built without CUDA: bf16 linear parity not checked";
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: bf16 linear parity not checked";
  for (const auto& [rows, in, out] : {std::tuple{37, 300, 29}, {256, 512, 384}, {1, 8, 1}}) {
    const Operands o = operands(rows, in, out);
    const Bf16Run cpu = run_bf16(o.x, o.w, o.b, o.g, Device::cpu());
    const Bf16Run gpu = run_bf16(o.x, o.w, o.b, o.g, Device::cuda(0));
    const std::string shape =
        std::to_string(rows) + "x" + std::to_string(in) + "x" + std::to_string(out);
    EXPECT_LT(nmse(gpu.y.v, cpu.y.v), kParityTolerance) << shape;
    EXPECT_LT(nmse(gpu.grad_x.v, cpu.grad_x.v), kParityTolerance) << shape;
    EXPECT_LT(nmse(gpu.grad_w.v, cpu.grad_w.v), kParityTolerance) << shape;
    EXPECT_LT(nmse(gpu.grad_b.v, cpu.grad_b.v), kParityTolerance) << shape;
  }
}

// A bias that starts off a 16-byte boundary (the second row of a [2, 29] table) is added after the
// GEMM, not by cuBLASLt's epilogue, in both precisions.
TEST(OpParityCuda, LinearWithAMisalignedBiasMatchesTheCpu) {
  if (!cuda_compiled()) GTEST_SKIP() << "built without CUDA: misaligned bias not checked";
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: misaligned bias not checked";
  const Operands o = operands(37, 300, 29);
  const Tensor table = CaseRng(5).normal({2, 29});
  for (const GemmPrecision precision : {GemmPrecision::f32, GemmPrecision::bf16}) {
    const GemmPrecisionScope scope(precision);
    const Tensor gpu_table = table.to(Device::cuda(0));
    const Ref cpu = to_ref(linear(o.x, o.w, table.outer_slice(1, 2).view({29})));
    const Ref gpu = to_ref(linear(o.x.to(Device::cuda(0)), o.w.to(Device::cuda(0)),
                                  gpu_table.outer_slice(1, 2).view({29})));
    EXPECT_LT(nmse(gpu.v, cpu.v), kParityTolerance)
        << (precision == GemmPrecision::bf16 ? "bf16" : "f32");
  }
}

}  // namespace
}  // namespace nuri::test
