// Attention forward+backward through the tape, as a training step runs it: B = 1, 8 query and 8
// kv heads of 64, causal and full masks at T = 1024 and 4096, with the causal step's peak memory.
#include <string>

#include "bench/ops/bench.h"
#include "kernels/allocator.h"
#include "kernels/autograd.h"
#include "kernels/error.h"
#include "kernels/ops/attention.h"
#include "kernels/ops/random.h"

namespace nuri::bench {
namespace {

constexpr int64_t kBatch = 1, kHeads = 8, kHeadDim = 64;

const char* mask_name(AttentionMask mask) {
  return mask == AttentionMask::causal ? "causal" : "full";
}

// Times one forward+backward of attention at sequence length t; for a causal mask also reports
// the peak memory the step adds.
void run(Report& report, AttentionMask mask, int64_t t) {
  Generator gen{42, 0};
  const Shape shape = {kBatch, t, kHeads, kHeadDim};
  Tensor q = Tensor::empty(shape), k = Tensor::empty(shape), v = Tensor::empty(shape);
  Tensor grad_out = Tensor::empty(shape);
  for (Tensor* x : {&q, &k, &v, &grad_out}) normal_(*x, gen);
  for (Tensor* x : {&q, &k, &v}) x->set_requires_grad();
  AttentionOptions options;
  options.mask = mask;

  auto step = [&] {
    Tape tape;
    Tensor out;
    {
      TapeScope scope(tape);
      out = attention(q, k, v, options);
    }
    tape.backward({out}, {grad_out});
    for (Tensor* x : {&q, &k, &v}) x->clear_grad();
  };
  const std::string name = cat("attention ", mask_name(mask), " T=", t);
  const double seconds = seconds_per_call(step, 2.0, 3);
  report.add({name + " fwd+bwd", "tokens/s", static_cast<double>(kBatch * t) / seconds,
              cat(seconds * 1e3, " ms per step")});
  if (mask == AttentionMask::causal) {
    cpu_memory().reset_peak();
    const size_t before = cpu_memory().stats().current_bytes;
    step();
    const size_t peak = cpu_memory().stats().peak_bytes - before;
    report.add({name + " peak memory", "MiB", static_cast<double>(peak) / (1 << 20),
                cat("inputs ", 3 * q.nbytes() / (1 << 20), " MiB")});
  }
}

NURI_BENCHMARK("attention", [](Report& report) {
  for (AttentionMask mask : {AttentionMask::causal, AttentionMask::full}) {
    for (int64_t t : {1024, 4096}) run(report, mask, t);
  }
});

}  // namespace
}  // namespace nuri::bench
