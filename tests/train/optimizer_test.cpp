#include "train/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/error.h"

namespace nuri {
namespace {

TEST(WarmupCosine, RisesThenDecaysToTheFloor) {
  EXPECT_DOUBLE_EQ(warmup_cosine_lr(1, 100, 10, 1.0, 0.1), 0.1);
  EXPECT_DOUBLE_EQ(warmup_cosine_lr(10, 100, 10, 1.0, 0.1), 1.0);
  EXPECT_NEAR(warmup_cosine_lr(55, 100, 10, 1.0, 0.1), 0.55, 1e-12);  // half way down the cosine
  EXPECT_NEAR(warmup_cosine_lr(100, 100, 10, 1.0, 0.1), 0.1, 1e-12);
  EXPECT_DOUBLE_EQ(warmup_cosine_lr(1, 1, 0, 2.0, 0.0), 0.0);
}

// A two-parameter "model": a matrix (decayed) and a vector (not decayed).
struct Params {
  std::vector<NamedParameter> list;
  Params() {
    list.push_back({"w", Tensor::from_vector({1, 2, 3, 4}, {2, 2})});
    list.push_back({"norm", Tensor::from_vector({1, 1}, {2})});
    for (auto& p : list) p.tensor.set_requires_grad();
  }
};

TEST(AdamWOptimizer, ClipsToTheGlobalNorm) {
  Params params;
  params.list[0].tensor.set_grad(Tensor::from_vector({3, 0, 0, 0}, {2, 2}));
  params.list[1].tensor.set_grad(Tensor::from_vector({4, 0}, {2}));
  AdamW optimizer(params.list, {.lr = 0.1f, .weight_decay = 0}, 1.0f);
  const auto result = optimizer.step(0.1);
  EXPECT_DOUBLE_EQ(result.grad_norm, 5.0);
  EXPECT_FALSE(result.skipped);
  // Adam's first step moves each parameter by lr * sign(grad), whatever the clipping scale.
  EXPECT_NEAR(params.list[0].tensor.to_vector()[0], 0.9f, 1e-5);
  EXPECT_NEAR(params.list[1].tensor.to_vector()[0], 0.9f, 1e-5);
  EXPECT_FALSE(params.list[0].tensor.grad().defined());
  // The clipped gradient (3/5) is what the first moment saw: m = (1 - beta1) * 0.6.
  const auto state = optimizer.state();
  EXPECT_NEAR(state[0].second.to_vector()[0], 0.1f * 0.6f, 1e-6);
}

TEST(AdamWOptimizer, SkipsNonFiniteGradients) {
  Params params;
  params.list[0].tensor.set_grad(
      Tensor::from_vector({1, std::numeric_limits<float>::quiet_NaN(), 0, 0}, {2, 2}));
  params.list[1].tensor.set_grad(Tensor::from_vector({1, 1}, {2}));
  AdamW optimizer(params.list, {}, 1.0f);
  const auto result = optimizer.step(0.1);
  EXPECT_TRUE(result.skipped);
  EXPECT_EQ(optimizer.steps_taken(), 0);
  EXPECT_EQ(params.list[0].tensor.to_vector(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(params.list[1].tensor.to_vector(), (std::vector<float>{1, 1}));
  EXPECT_FALSE(params.list[1].tensor.grad().defined());
  params.list[1].tensor.set_grad(
      Tensor::from_vector({std::numeric_limits<float>::infinity(), 0}, {2}));
  EXPECT_TRUE(optimizer.step(0.1).skipped);
}

TEST(AdamWOptimizer, DecaysMatricesOnly) {
  Params params;
  params.list[0].tensor.set_grad(Tensor::zeros({2, 2}));
  params.list[1].tensor.set_grad(Tensor::zeros({2}));
  AdamW optimizer(params.list, {.lr = 0.1f, .weight_decay = 0.5f}, 0.0f);
  optimizer.step(0.1);
  EXPECT_NEAR(params.list[0].tensor.to_vector()[1], 2.0f * (1 - 0.05f), 1e-6);
  EXPECT_EQ(params.list[1].tensor.to_vector(), (std::vector<float>{1, 1}));
}

TEST(AdamWOptimizer, ScalesTheLearningRatePerParameter) {
  Params params;
  params.list[0].tensor.set_grad(Tensor::from_vector({1, 1, 1, 1}, {2, 2}));
  params.list[1].tensor.set_grad(Tensor::from_vector({1, 1}, {2}));
  AdamW optimizer(params.list, {.lr = 0.1f, .weight_decay = 0}, 0.0f, {1.0f, 0.25f});
  optimizer.step(0.1);
  EXPECT_NEAR(params.list[0].tensor.to_vector()[0], 1.0f - 0.1f, 1e-5);
  EXPECT_NEAR(params.list[1].tensor.to_vector()[0], 1.0f - 0.025f, 1e-5);
  EXPECT_THROW(AdamW(params.list, {}, 0.0f, {1.0f}), Error);
}

}  // namespace
}  // namespace nuri
