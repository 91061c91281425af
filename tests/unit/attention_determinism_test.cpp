// Attention's outputs and gradients do not depend on the number of threads: the CPU backward
// picks its schedule (one pass per kv head, or separate passes for dK/dV and dQ) from the thread
// count, and both schedules must produce the same bits.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/autograd.h"
#include "kernels/ops/attention.h"
#include "kernels/ops/random.h"
#include "tests/unit/thread_count.h"

namespace nuri {
namespace {

using test::ThreadCount;

struct Problem {
  int64_t batch, tq, tk, hq, hkv, dim;
  AttentionOptions options;
};

// out, dq, dk and dv of one forward and backward, as computed with `threads` threads.
std::vector<Tensor> run_step(const Problem& p, int threads) {
  Generator gen{777, 0};
  Tensor q = Tensor::empty({p.batch, p.tq, p.hq, p.dim});
  Tensor k = Tensor::empty({p.batch, p.tk, p.hkv, p.dim});
  Tensor v = Tensor::empty({p.batch, p.tk, p.hkv, p.dim});
  Tensor grad_out = Tensor::empty({p.batch, p.tq, p.hq, p.dim});
  for (Tensor* x : {&q, &k, &v, &grad_out}) normal_(*x, gen);
  for (Tensor* x : {&q, &k, &v}) x->set_requires_grad();
  const ThreadCount scoped(threads);
  Tape tape;
  Tensor out;
  {
    TapeScope scope(tape);
    out = attention(q, k, v, p.options);
  }
  tape.backward({out}, {grad_out});
  return {out, q.grad(), k.grad(), v.grad()};
}

AttentionOptions masked(AttentionMask mask, int64_t block_size = 0) {
  AttentionOptions o;
  o.mask = mask;
  o.block_size = block_size;
  return o;
}

TEST(AttentionDeterminism, SameBitsForAnyThreadCount) {
  using M = AttentionMask;
  // 150 to 300 tokens span two or three query and key tiles. Which backward schedule runs, by
  // thread count (1 / 2 / 5 / 16): one kv head (B = 1, Hkv = 1): single / two / two / two passes;
  // three (B = 1, Hkv = 3 or B = 3, Hkv = 1): single / single / two / two; eight (B = 2, Hkv = 4):
  // single / single / single / two.
  const std::vector<Problem> problems = {
      {1, 300, 300, 4, 1, 16, masked(M::causal)},
      {1, 200, 300, 4, 1, 12, masked(M::block_causal, 70)},
      {1, 300, 300, 3, 3, 8, masked(M::causal)},
      {3, 300, 260, 2, 1, 8, masked(M::full)},
      {2, 300, 300, 4, 4, 16, masked(M::causal)},
      {2, 150, 260, 4, 4, 8, masked(M::block_causal, 128)},
  };
  const char* names[] = {"out", "dq", "dk", "dv"};
  for (const Problem& p : problems) {
    SCOPED_TRACE(testing::Message() << "B=" << p.batch << " Tq=" << p.tq << " Tk=" << p.tk
                                    << " Hq=" << p.hq << " Hkv=" << p.hkv << " D=" << p.dim);
    const std::vector<Tensor> first = run_step(p, 1);
    for (int threads : {2, 5, 16}) {
      const std::vector<Tensor> again = run_step(p, threads);
      for (size_t i = 0; i < first.size(); ++i) {
        ASSERT_TRUE(again[i].defined());
        ASSERT_EQ(first[i].nbytes(), again[i].nbytes());
        EXPECT_EQ(std::memcmp(first[i].raw_data(), again[i].raw_data(), first[i].nbytes()), 0)
            << names[i] << " differs between 1 and " << threads << " threads";
      }
    }
  }
}

}  // namespace
}  // namespace nuri
