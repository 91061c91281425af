// DataParallel over the job's ranks: every rank ends a step with the same parameters, those that
// AdamW takes on one process from the ranks' mean gradient, with ZeRO-0 and ZeRO-1, also when
// only some ranks' backward reached a parameter.
#include "train/data_parallel.h"

#include <gtest/gtest.h>

#include "kernels/autograd.h"
#include "kernels/ops/elementwise.h"
#include "kernels/ops/reduce.h"
#include "tests/mpi/world.h"

namespace nuri {
namespace {

std::vector<NamedParameter> make_parameters() {
  std::vector<NamedParameter> list = {{"a", Tensor::empty({4, 3})},
                                      {"b", Tensor::empty({5})},
                                      {"only_rank_1", Tensor::empty({2, 2})}};
  float x = 0.25f;
  for (auto& p : list) {
    for (int64_t i = 0; i < p.tensor.numel(); ++i) {
      p.tensor.data<float>()[i] = (x = std::fmod(x * 1.9f + 0.37f, 2.0f)) - 1;
    }
    p.tensor.set_requires_grad();
  }
  return list;
}

// Rank r's "loss": sum((r + 1) * p * p) over a and b, and only_rank_1 on rank 1 alone, so that
// the gradient of p is 2 (r + 1) p.
Tensor rank_loss(const std::vector<NamedParameter>& list, int rank) {
  const float weight = static_cast<float>(rank + 1);
  Tensor loss = sum(scale(mul(list[0].tensor, list[0].tensor), weight));
  loss = add(loss, sum(scale(mul(list[1].tensor, list[1].tensor), weight)));
  if (rank == 1) loss = add(loss, sum(mul(list[2].tensor, list[2].tensor)));
  return loss;
}

const AdamWOptions kAdamW{.lr = 0.05f, .beta1 = 0.9f, .beta2 = 0.95f, .weight_decay = 0.1f};

class DataParallelRanks : public testing::TestWithParam<int> {};

TEST_P(DataParallelRanks, EveryRankTakesTheStepOfTheMeanGradient) {
  Communicator& world = test_world();
  const int ranks = world.size();
  auto list = make_parameters(), expected = make_parameters();
  DataParallel parallel(world, list, {.zero = GetParam(), .bucket_elements = 6}, kAdamW, 100.0f,
                        {});
  AdamW reference(expected, kAdamW, 100.0f);
  for (int step = 0; step < 3; ++step) {
    Tape tape;
    Tensor loss;
    {
      TapeScope scope(tape);
      loss = rank_loss(list, world.rank());
    }
    tape.backward(loss, parallel.gradient_ready());
    // only_rank_1 is last, so it is in the first bucket: rank 0's backward leaves every bucket
    // waiting. finish_backward starts them before the collective that follows, as training does.
    parallel.finish_backward();
    Tensor tokens = Tensor::full({1}, 1.0);
    world.start_all_reduce(tokens)->wait();  // non-blocking, as the buckets: matched in order
    EXPECT_EQ(tokens.data<float>()[0], ranks);
    const StepResult result = parallel.step(0.05);
    // The mean over ranks of 2 (r + 1) p, and only_rank_1's 2 p / ranks where rank 1 exists.
    const float mean_weight = (ranks + 1) / 2.0f;
    for (size_t i = 0; i < expected.size(); ++i) {
      Tensor& p = expected[i].tensor;
      if (i == 2 && ranks == 1) continue;  // no rank reached it: no gradient, no step
      const float factor = i == 2 ? 2.0f / ranks : 2.0f * mean_weight;
      p.set_grad(scale(p.detach(), factor));
    }
    const StepResult want = reference.step(0.05);
    EXPECT_NEAR(result.grad_norm, want.grad_norm, 1e-5 * want.grad_norm);
    for (size_t i = 0; i < list.size(); ++i) {
      const auto got = list[i].tensor.to_vector(), wanted = expected[i].tensor.to_vector();
      for (size_t k = 0; k < got.size(); ++k) {
        EXPECT_NEAR(got[k], wanted[k], 1e-6f) << list[i].name << "[" << k << "] step " << step;
      }
    }
  }
  // Every rank holds the same parameters.
  for (const auto& p : list) {
    Tensor copy = p.tensor.detach().clone();
    world.broadcast(copy, 0);
    EXPECT_EQ(copy.to_vector(), p.tensor.to_vector()) << p.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Zero, DataParallelRanks, testing::Values(0, 1),
                         [](const auto& info) { return "ZeRO" + std::to_string(info.param); });

}  // namespace
}  // namespace nuri
