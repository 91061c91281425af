// Data parallelism in one process: ZeRO-1 over a single rank takes AdamW's steps, and optimizer
// states move between ZeRO stages and layouts through checkpoints. (Several ranks: tests/mpi.)
#include "train/data_parallel.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "kernels/error.h"
#include "kernels/safetensors.h"

namespace nuri {
namespace {

namespace fs = std::filesystem;

// Three parameters of mixed shapes, values and gradients set by `seed`.
std::vector<NamedParameter> make_parameters(float seed) {
  std::vector<NamedParameter> list = {
      {"w", Tensor::empty({3, 4})}, {"norm", Tensor::empty({5})}, {"v", Tensor::empty({2, 3})}};
  float x = seed;
  for (auto& p : list) {
    float* d = p.tensor.data<float>();
    for (int64_t i = 0; i < p.tensor.numel(); ++i)
      d[i] = (x = std::fmod(x * 1.7f + 0.31f, 2.0f)) - 1;
    p.tensor.set_requires_grad();
  }
  return list;
}

void set_gradients(std::vector<NamedParameter>& list, float seed) {
  float x = seed;
  for (auto& p : list) {
    Tensor g = Tensor::empty(p.tensor.shape());
    for (int64_t i = 0; i < g.numel(); ++i)
      g.data<float>()[i] = (x = std::fmod(x * 2.3f + 0.7f, 2.0f)) - 1;
    p.tensor.set_grad(g);
  }
}

std::vector<std::vector<float>> values(const std::vector<NamedParameter>& list) {
  std::vector<std::vector<float>> out;
  for (const auto& p : list) out.push_back(p.tensor.to_vector());
  return out;
}

const AdamWOptions kAdamW{.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.95f, .weight_decay = 0.1f};

TEST(DataParallel, ZeroOneOnOneRankTakesAdamWsSteps) {
  auto plain = make_parameters(0.3f), sharded = make_parameters(0.3f);
  const std::vector<float> scales = {1.0f, 2.0f, 0.5f};
  AdamW adamw(plain, kAdamW, 0.5f, scales);
  auto alone = make_single_communicator();
  DataParallel parallel(*alone, sharded, {.zero = 1, .bucket_elements = 7}, kAdamW, 0.5f, scales);
  for (int step = 0; step < 4; ++step) {
    set_gradients(plain, 0.1f * step);
    set_gradients(sharded, 0.1f * step);
    const StepResult a = adamw.step(0.01), b = parallel.step(0.01);
    EXPECT_DOUBLE_EQ(a.grad_norm, b.grad_norm);
    EXPECT_EQ(values(plain), values(sharded)) << "step " << step;
    EXPECT_FALSE(sharded[0].tensor.grad().defined());
  }
}

TEST(DataParallel, OptimizerStatesMoveBetweenZeroStages) {
  const fs::path dir = fs::path(testing::TempDir()) / "nuri-data-parallel-states";
  fs::remove_all(dir);
  fs::create_directories(dir / "zero1");
  fs::create_directories(dir / "zero0");
  auto alone = make_single_communicator();
  // Two steps under ZeRO-1, saved; then ZeRO-0 and ZeRO-1 continue from that state alike.
  auto first = make_parameters(0.6f);
  DataParallel zero1(*alone, first, {.zero = 1, .bucket_elements = 5}, kAdamW, 1.0f, {});
  for (int step = 0; step < 2; ++step) {
    set_gradients(first, 0.2f * step);
    zero1.step(0.01);
  }
  zero1.save_optimizer((dir / "zero1").string());
  ASSERT_TRUE(fs::exists(dir / "zero1" / "optimizer-rank-0-of-1.safetensors"));

  auto second = make_parameters(0.0f), third = make_parameters(0.0f);
  for (size_t i = 0; i < first.size(); ++i) {
    second[i].tensor.copy_from(first[i].tensor);
    third[i].tensor.copy_from(first[i].tensor);
  }
  DataParallel zero0(*alone, second, {}, kAdamW, 1.0f, {});
  zero0.load_optimizer((dir / "zero1").string());
  zero0.save_optimizer((dir / "zero0").string());
  DataParallel again(*alone, third, {.zero = 1}, kAdamW, 1.0f, {});
  again.load_optimizer((dir / "zero0").string());
  for (auto* p : {&zero0, &again, &zero1}) p->set_steps_taken(2);
  set_gradients(first, 0.9f);
  set_gradients(second, 0.9f);
  set_gradients(third, 0.9f);
  zero1.step(0.01);
  zero0.step(0.01);
  again.step(0.01);
  EXPECT_EQ(values(second), values(first));
  EXPECT_EQ(values(third), values(first));
  fs::remove_all(dir);
}

TEST(DataParallel, MissingOrPartialStatesAreErrorsNamingThem) {
  const fs::path dir = fs::path(testing::TempDir()) / "nuri-data-parallel-errors";
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto alone = make_single_communicator();
  auto list = make_parameters(0.4f);
  DataParallel parallel(*alone, list, {.zero = 1}, kAdamW, 1.0f, {});
  try {
    parallel.load_optimizer(dir.string());
    ADD_FAILURE() << "an empty directory has no optimizer state";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds no optimizer state"), std::string::npos)
        << e.what();
  }
  // A shard of a two-rank run whose other shard is gone.
  save_safetensors((dir / "optimizer-rank-0-of-2.safetensors").string(),
                   {{"w.exp_avg", Tensor::zeros({12})}, {"w.exp_avg_sq", Tensor::zeros({12})}},
                   {{"w", "0 12"}, {"ranks", "2"}});
  try {
    parallel.load_optimizer(dir.string());
    ADD_FAILURE() << "a missing shard must be named";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer-rank-1-of-2.safetensors of 2 is missing"),
              std::string::npos)
        << e.what();
  }
  // Both shards, but nothing for "norm" and "v".
  save_safetensors((dir / "optimizer-rank-1-of-2.safetensors").string(), {}, {{"ranks", "2"}});
  try {
    parallel.load_optimizer(dir.string());
    ADD_FAILURE() << "an uncovered parameter must be named";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'norm' covers 0 of the 5 elements"), std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace nuri
