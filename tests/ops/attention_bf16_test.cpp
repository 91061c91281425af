// attention under GemmPrecision::bf16 (mixed precision): the CPU is exactly the f32 kernel over
// bf16-rounded q, k, v and output gradient; the GPU's tensor-core kernels match it to bf16's
// precision.
//
// Tolerances (normalised MSE): GPU against CPU 1e-5. Both read the same rounded operands; the GPU
// also rounds the probabilities (forward, dV) and score gradients (dQ, dK) that it feeds the
// tensor cores, and each such rounding adds at most about (2^-9)^2 / 3 = 1.3e-6 of normalised
// error (8 significant bits, a uniformly distributed relative error). Head sizes that the tensor
// cores do not take run the exact kernel over rounded operands and are held to the f32 parity
// tolerance, 1e-8. The rounding must show: against the f32 path the error exceeds 1e-8.
#include <gtest/gtest.h>

#include <string>

#include "kernels/autograd.h"
#include "kernels/device.h"
#include "kernels/ops/attention.h"
#include "kernels/ops/linear.h"
#include "tests/ops/harness.h"

namespace nuri::test {
namespace {

constexpr double kTensorCoreTolerance = 1e-5;
constexpr double kExactTolerance = 1e-8;
constexpr double kRoundingShows = 1e-8;

struct Inputs {
  Tensor q, k, v, grad_out;
};

// q [b, tq, hq, d], k and v [b, tk, hkv, d], and an output gradient.
Inputs inputs(int64_t b, int64_t tq, int64_t tk, int64_t hq, int64_t hkv, int64_t d) {
  CaseRng rng(static_cast<uint64_t>(b * 1000003 + tq * 1009 + tk * 101 + hq * 13 + hkv + d));
  return {rng.normal({b, tq, hq, d}), rng.normal({b, tk, hkv, d}), rng.normal({b, tk, hkv, d}),
          rng.normal({b, tq, hq, d})};
}

struct Result {
  Ref out, grad_q, grad_k, grad_v;
};

// Forward and backward on `device`, under GemmPrecision `precision`.
Result run(const Inputs& in, const AttentionOptions& options, GemmPrecision precision,
           const Device& device) {
  Tensor q = in.q.to(device), k = in.k.to(device), v = in.v.to(device);
  q.set_requires_grad();
  k.set_requires_grad();
  v.set_requires_grad();
  Tape tape;
  Tensor out;
  {
    TapeScope scope(tape);
    const GemmPrecisionScope gemm(precision);
    out = attention(q, k, v, options);
  }
  tape.backward({out}, {in.grad_out.to(device)});
  return {to_ref(out), to_ref(q.grad()), to_ref(k.grad()), to_ref(v.grad())};
}

struct Case {
  int64_t b, tq, tk, hq, hkv, d;
  AttentionMask mask;
  int64_t block = 0;
};

std::string name(const Case& s) {
  return "b" + std::to_string(s.b) + " tq" + std::to_string(s.tq) + " tk" + std::to_string(s.tk) +
         " hq" + std::to_string(s.hq) + " hkv" + std::to_string(s.hkv) + " d" +
         std::to_string(s.d) + " mask" + std::to_string(static_cast<int>(s.mask));
}

void expect_close(const Result& a, const Result& b, double tolerance, const std::string& what) {
  EXPECT_LT(nmse(a.out.v, b.out.v), tolerance) << what << ": out";
  EXPECT_LT(nmse(a.grad_q.v, b.grad_q.v), tolerance) << what << ": grad_q";
  EXPECT_LT(nmse(a.grad_k.v, b.grad_k.v), tolerance) << what << ": grad_k";
  EXPECT_LT(nmse(a.grad_v.v, b.grad_v.v), tolerance) << what << ": grad_v";
}

TEST(MixedPrecision, AttentionIsTheF32KernelOverRoundedOperands) {
  const Inputs in = inputs(2, 9, 13, 4, 2, 16);
  const AttentionOptions causal{AttentionMask::causal};
  const Result bf16 = run(in, causal, GemmPrecision::bf16, Device::cpu());
  const Inputs rounded{rounded_to_bf16(in.q), rounded_to_bf16(in.k), rounded_to_bf16(in.v),
                       rounded_to_bf16(in.grad_out)};
  const Result exact = run(rounded, causal, GemmPrecision::f32, Device::cpu());
  EXPECT_EQ(bf16.out.v, exact.out.v);
  EXPECT_EQ(bf16.grad_q.v, exact.grad_q.v);
  EXPECT_EQ(bf16.grad_k.v, exact.grad_k.v);
  EXPECT_EQ(bf16.grad_v.v, exact.grad_v.v);
  // The rounding is real: the f32 path gives other numbers.
  const Result f32 = run(in, causal, GemmPrecision::f32, Device::cpu());
  EXPECT_GT(nmse(bf16.out.v, f32.out.v), kRoundingShows);
  EXPECT_GT(nmse(bf16.grad_q.v, f32.grad_q.v), kRoundingShows);
}

TEST(OpParityCuda, AttentionInBf16MatchesTheCpu) {
  if (!cuda_compiled()) GTEST_SKIP() << "built without CUDA: bf16 attention parity not checked";
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: bf16 attention parity not checked";
  const Case shapes[] = {
      {2, 100, 100, 4, 2, 64, AttentionMask::causal},  // GQA, partial last tile
      {1, 37, 150, 2, 2, 32, AttentionMask::full},     // fewer queries than keys
      {1, 90, 40, 2, 1, 32, AttentionMask::full},      // more queries than keys (cross-attention)
      {2, 130, 130, 4, 1, 128, AttentionMask::block_causal, 16},  // multi-query, largest head
      {1, 1, 77, 3, 3, 48, AttentionMask::causal},                // one query against a cache
      {1, 200, 200, 2, 1, 16, AttentionMask::block_causal, 50},   // blocks across tiles
      {2, 65, 65, 2, 2, 40, AttentionMask::causal},               // head size off the tensor cores
  };
  for (const Case& s : shapes) {
    const Inputs in = inputs(s.b, s.tq, s.tk, s.hq, s.hkv, s.d);
    const AttentionOptions options{s.mask, s.block};
    const Result cpu = run(in, options, GemmPrecision::bf16, Device::cpu());
    const Result gpu = run(in, options, GemmPrecision::bf16, Device::cuda(0));
    const bool tensor_cores = s.d % 16 == 0;
    expect_close(gpu, cpu, tensor_cores ? kTensorCoreTolerance : kExactTolerance, name(s));
    // Deterministic: a second run gives the same bits.
    const Result again = run(in, options, GemmPrecision::bf16, Device::cuda(0));
    EXPECT_EQ(gpu.out.v, again.out.v) << name(s);
    EXPECT_EQ(gpu.grad_q.v, again.grad_q.v) << name(s);
    EXPECT_EQ(gpu.grad_k.v, again.grad_k.v) << name(s);
    EXPECT_EQ(gpu.grad_v.v, again.grad_v.v) << name(s);
  }
}

}  // namespace
}  // namespace nuri::test
