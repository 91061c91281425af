// linear forward + backward as training runs it (autograd tape, fresh outputs every step)
// against the same three GEMMs called straight on preallocated buffers.
#include <cblas.h>

#include <cstdio>
#include <string>

#include "bench/ops/bench.h"
#include "kernels/autograd.h"
#include "kernels/ops/linear.h"
#include "kernels/ops/random.h"

namespace nuri::bench {
namespace {

struct LinearShape {
  int64_t tokens, in, out;
};

Tensor random_tensor(const Shape& shape, Generator& gen) {
  Tensor t = Tensor::empty(shape);
  normal_(t, gen, 0.0f, 0.1f);
  return t;
}

void bench_linear(Report& report) {
  Generator gen{1234, 0};
  for (const LinearShape& s : {LinearShape{4096, 1024, 4096}, LinearShape{4096, 4096, 1024},
                               LinearShape{1024, 1024, 1024}}) {
    const std::string dims =
        std::to_string(s.tokens) + "x" + std::to_string(s.in) + "->" + std::to_string(s.out);
    const double flops = 3.0 * 2.0 * static_cast<double>(s.tokens * s.in * s.out);
    Tensor x = random_tensor({s.tokens, s.in}, gen);
    Tensor w = random_tensor({s.out, s.in}, gen);
    const Tensor dy = random_tensor({s.tokens, s.out}, gen);
    x.set_requires_grad();
    w.set_requires_grad();

    // (1) nuri: record, backward from the cotangent; clearing the gradients first means each
    // step hands its fresh gradients to x and w instead of adding them onto the last ones.
    auto ours = [&] {
      x.clear_grad();
      w.clear_grad();
      Tape tape;
      Tensor y;
      {
        TapeScope scope(tape);
        y = linear(x, w);
      }
      tape.backward({y}, {dy});
    };

    // (2) raw sgemm: y = x W^T, dx = dy W, dW = dy^T x into buffers allocated once.
    Tensor y = Tensor::zeros({s.tokens, s.out});
    Tensor dx = Tensor::zeros({s.tokens, s.in});
    Tensor dw = Tensor::zeros({s.out, s.in});
    const int m = static_cast<int>(s.tokens), k = static_cast<int>(s.in),
              n = static_cast<int>(s.out);
    const float* px = x.data<float>();
    const float* pw = w.data<float>();
    const float* pdy = dy.data<float>();
    auto sgemm = [&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, px, k, pw, k, 0.0f,
                  y.data<float>(), n);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, k, n, 1.0f, pdy, n, pw, k, 0.0f,
                  dx.data<float>(), k);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, k, m, 1.0f, pdy, n, px, k, 0.0f,
                  dw.data<float>(), k);
    };

    // Alternating the two keeps the machine's noise out of the ratio.
    const Paired timing = paired_seconds_per_call(ours, sgemm);
    char note[64];
    std::snprintf(note, sizeof note, "%.2f of sgemm (median of paired runs)", timing.b_over_a);
    report.add({"linear fwd+bwd " + dims, "GFLOP/s", flops / timing.a_seconds * 1e-9, note});
    report.add({"sgemm x3 " + dims, "GFLOP/s", flops / timing.b_seconds * 1e-9, ""});
  }
}

}  // namespace
}  // namespace nuri::bench

NURI_BENCHMARK("linear", nuri::bench::bench_linear);
