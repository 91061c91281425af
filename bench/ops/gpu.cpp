// GPU op benchmarks (nuri-bench-ops --device cuda), each step timed to the end of its GPU work:
// linear forward+backward through the tape in f32 and in bf16 (mixed precision) against the same
// three GEMMs called straight through cuBLASLt, and attention forward+backward at the shapes of
// a GPT-2-small layer, in TFLOP/s. bench/attention_gpu_vs_torch.py sets the attention figures
// beside PyTorch's scaled_dot_product_attention (its flash and cuDNN back ends) in the same run.
#include <string>

#include "bench/ops/bench.h"
#include "kernels/autograd.h"
#include "kernels/device.h"
#include "kernels/ops/attention.h"
#include "kernels/ops/linear.h"
#include "kernels/ops/random.h"
#ifdef NURI_WITH_CUDA
#include "kernels/cuda/blas.h"
#endif

namespace nuri::bench {
namespace {

const Device kGpu = Device::cuda(0);

Tensor random_on_gpu(const Shape& shape, Generator& gen, DType dtype = DType::f32) {
  Tensor t = Tensor::empty(shape);
  normal_(t, gen, 0.0f, 0.1f);
  return (dtype == DType::f32 ? t : t.to(dtype)).to(kGpu);
}

// Seconds per call of fn, each call waiting for the GPU to finish.
double gpu_seconds(const std::function<void()>& fn) {
  return seconds_per_call(
      [&] {
        fn();
        synchronize(kGpu);
      },
      1.0, 5);
}

void bench_gpu_linear(Report& report) {
  Generator gen{1234, 0};
  for (const auto& [tokens, in, out] : {std::tuple<int64_t, int64_t, int64_t>{8192, 768, 2304},
                                        {8192, 768, 2048},
                                        {8192, 2048, 768},
                                        {8192, 768, 50257}}) {
    const std::string dims = cat(tokens, "x", in, "->", out);
    const double flops = 3.0 * 2.0 * static_cast<double>(tokens * in * out);
    Tensor x = random_on_gpu({tokens, in}, gen), w = random_on_gpu({out, in}, gen);
    const Tensor dy = random_on_gpu({tokens, out}, gen);
    x.set_requires_grad();
    w.set_requires_grad();
    for (const GemmPrecision precision : {GemmPrecision::f32, GemmPrecision::bf16}) {
      const bool bf16 = precision == GemmPrecision::bf16;
      const double ours = gpu_seconds([&] {
        x.clear_grad();
        w.clear_grad();
        Tape tape;
        Tensor y;
        {
          TapeScope scope(tape);
          const GemmPrecisionScope gemm_precision(precision);
          y = linear(x, w);
        }
        tape.backward({y}, {dy});
      });
      std::string note;
#ifdef NURI_WITH_CUDA
      // The same three products straight through cuBLASLt, on operands already in place.
      const DType input = bf16 ? DType::bf16 : DType::f32;
      const Tensor xi = x.detach().to(input), wi = w.detach().to(input), dyi = dy.to(input);
      Tensor y = Tensor::empty({tokens, out}, DType::f32, kGpu);
      Tensor dx = Tensor::empty({tokens, in}, DType::f32, kGpu);
      Tensor dw = Tensor::empty({out, in}, DType::f32, kGpu);
      const auto inputs = bf16 ? cuda::GemmInputs::bf16 : cuda::GemmInputs::f32;
      const double library = gpu_seconds([&] {
        cuda::gemm(inputs, false, true, tokens, out, in, xi.raw_data(), in, wi.raw_data(), in, 0.0f,
                   y.data<float>(), out);
        cuda::gemm(inputs, false, false, tokens, in, out, dyi.raw_data(), out, wi.raw_data(), in,
                   0.0f, dx.data<float>(), in);
        cuda::gemm(inputs, true, false, out, in, tokens, dyi.raw_data(), out, xi.raw_data(), in,
                   0.0f, dw.data<float>(), in);
      });
      report.add({cat("gpu cublaslt x3 ", bf16 ? "bf16 " : "f32 ", dims), "TFLOP/s",
                  flops / library * 1e-12, ""});
      note = cat(library / ours, " of cuBLASLt's three GEMMs");
#endif
      report.add({cat("gpu linear fwd+bwd ", bf16 ? "bf16 " : "f32 ", dims), "TFLOP/s",
                  flops / ours * 1e-12, note});
    }
  }
}

// Attention forward+backward at batch 8, 12 heads of 64 and T = 1024 (a GPT-2-small layer) and
// at T = 4096, in f32 (the exact kernel) and with bf16 products (the tensor-core kernels); FLOPs
// are 4 B H T^2 D forward and 2.5 times that backward, halved when causal.
void bench_gpu_attention(Report& report) {
  Generator gen{42, 0};
  constexpr int64_t kHeads = 12, kHeadDim = 64;
  for (const auto& [batch, t] : {std::pair<int64_t, int64_t>{8, 1024}, {2, 4096}}) {
    for (const auto& [mask, precision] : {std::pair{AttentionMask::causal, GemmPrecision::f32},
                                          {AttentionMask::full, GemmPrecision::f32},
                                          {AttentionMask::causal, GemmPrecision::bf16},
                                          {AttentionMask::full, GemmPrecision::bf16}}) {
      const Shape shape = {batch, t, kHeads, kHeadDim};
      Tensor q = random_on_gpu(shape, gen), k = random_on_gpu(shape, gen),
             v = random_on_gpu(shape, gen);
      const Tensor grad_out = random_on_gpu(shape, gen);
      for (Tensor* x : {&q, &k, &v}) x->set_requires_grad();
      const double seconds = gpu_seconds([&] {
        for (Tensor* x : {&q, &k, &v}) x->clear_grad();
        Tape tape;
        Tensor out;
        {
          TapeScope scope(tape);
          const GemmPrecisionScope products(precision);
          out = attention(q, k, v, {.mask = mask});
        }
        tape.backward({out}, {grad_out});
      });
      const double forward = 4.0 * static_cast<double>(batch * kHeads * t * t * kHeadDim) *
                             (mask == AttentionMask::causal ? 0.5 : 1.0);
      report.add({cat("gpu attention ", precision == GemmPrecision::bf16 ? "bf16 " : "f32 ",
                      mask == AttentionMask::causal ? "causal" : "full", " B=", batch, " T=", t,
                      " fwd+bwd"),
                  "TFLOP/s", 3.5 * forward / seconds * 1e-12, cat(seconds * 1e3, " ms")});
    }
  }
}

}  // namespace
}  // namespace nuri::bench

NURI_GPU_BENCHMARK("gpu linear", nuri::bench::bench_gpu_linear);
NURI_GPU_BENCHMARK("gpu attention", nuri::bench::bench_gpu_attention);
