// conv2d forward + backward as training runs it (autograd tape), at the vision stem's four 3x3
// stages on a batch of 128x128 images: the omni model's costliest non-GEMM op on the CPU.
#include <cstdio>
#include <string>

#include "bench/ops/bench.h"
#include "kernels/autograd.h"
#include "kernels/ops/conv.h"
#include "kernels/ops/random.h"

namespace nuri::bench {
namespace {

struct ConvStage {
  int64_t in, out, size;  // channels in and out, square input side
  bool input_grad;        // the stem's first stage reads pixels, which need no gradient
};

Tensor random_tensor(const Shape& shape, Generator& gen) {
  Tensor t = Tensor::empty(shape);
  normal_(t, gen, 0.0f, 0.1f);
  return t;
}

void bench_conv(Report& report) {
  constexpr int64_t kBatch = 8;
  Generator gen{99, 0};
  for (const ConvStage& s : {ConvStage{3, 32, 128, false}, ConvStage{32, 64, 64, true},
                             ConvStage{64, 128, 32, true}, ConvStage{128, 128, 16, true}}) {
    Tensor x = random_tensor({kBatch, s.in, s.size, s.size}, gen);
    Tensor w = random_tensor({s.out, s.in, 3, 3}, gen);
    Tensor b = random_tensor({s.out}, gen);
    const Tensor dy = random_tensor({kBatch, s.out, s.size, s.size}, gen);
    if (s.input_grad) x.set_requires_grad();
    w.set_requires_grad();
    b.set_requires_grad();
    // One product's FLOPs: the forward, the weight gradient and (where needed) the input gradient.
    const double product = 2.0 * static_cast<double>(kBatch * s.out * s.in * 9 * s.size * s.size);
    const double flops = product * (s.input_grad ? 3 : 2);
    auto step = [&] {
      x.clear_grad();
      w.clear_grad();
      b.clear_grad();
      Tape tape;
      Tensor y;
      {
        TapeScope scope(tape);
        y = conv2d(x, w, b, {1, 1}, {1, 1});
      }
      tape.backward({y}, {dy});
    };
    const double seconds = seconds_per_call(step);
    char name[96];
    std::snprintf(name, sizeof name, "conv2d fwd+bwd %lldx%lldx%lldx%lld->%lld 3x3",
                  static_cast<long long>(kBatch), static_cast<long long>(s.in),
                  static_cast<long long>(s.size), static_cast<long long>(s.size),
                  static_cast<long long>(s.out));
    report.add({name, "GFLOP/s", flops / seconds * 1e-9, ""});
  }
}

}  // namespace
}  // namespace nuri::bench

NURI_BENCHMARK("conv", nuri::bench::bench_conv);
