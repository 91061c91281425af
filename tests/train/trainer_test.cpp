#include "train/trainer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "kernels/error.h"
#include "kernels/file_io.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "train_test_util.h"

namespace nuri {
namespace {

namespace fs = std::filesystem;

using test::series;

TrainSummary run(const nlohmann::json& config, const std::string& resume = "") {
  return test::train_tiny(config, resume);
}

TEST(Trainer, LearnsAndWritesEverything) {
  const auto dir = test::fresh_dir("learns");
  auto config = test::tiny_config(dir, 40);
  config["checkpoint"]["every"] = 10;
  config["checkpoint"]["keep"] = 2;
  config["eval"]["every"] = 20;
  const auto summary = run(config);
  EXPECT_EQ(summary.step, 40);
  EXPECT_EQ(summary.skipped_steps, 0);
  EXPECT_FALSE(summary.interrupted);
  // Held-out loss is measured against the unigram baseline of the same tokens.
  EXPECT_TRUE(std::isfinite(summary.eval_loss));
  EXPECT_GT(summary.unigram_loss, 0);

  const auto losses = series(dir + "/run/metrics.jsonl", "loss");
  ASSERT_EQ(losses.size(), 40u);
  EXPECT_LT(losses.back().second, losses.front().second - 1.0);  // it learns
  for (const auto* key : {"lr", "grad_norm", "tokens_per_s", "elapsed_s"}) {
    EXPECT_EQ(series(dir + "/run/metrics.jsonl", key).size(), 40u) << key;
  }
  EXPECT_EQ(series(dir + "/run/metrics.jsonl", "eval_loss").size(), 2u);

  // Only the newest two checkpoints remain, each complete, and no temporary directory.
  EXPECT_EQ(list_checkpoints(dir + "/run"), (std::vector<int64_t>{30, 40}));
  for (const auto& entry : fs::directory_iterator(dir + "/run")) {
    EXPECT_NE(entry.path().filename().string()[0], '.') << entry.path();
  }
  for (const auto* file : {"model.safetensors", "optimizer.safetensors", "trainer_state.json",
                           "config.json", "train_config.json", "tokenizer.json"}) {
    EXPECT_TRUE(fs::exists(dir + "/run/step-40/" + file)) << file;
  }
  const auto config_json = nlohmann::json::parse(read_file(dir + "/run/step-40/config.json"));
  EXPECT_EQ(config_json["architectures"][0], "LlamaForCausalLM");
  EXPECT_EQ(config_json["num_key_value_heads"], 1);
  if (loss_plot_available()) {
    EXPECT_EQ(read_file(dir + "/run/loss.png").substr(0, 4), "\x89PNG");
  } else {
    EXPECT_FALSE(fs::exists(dir + "/run/loss.png"));
    std::printf("built without OpenCV: the loss plot is not checked\n");
  }

  // A new run into the same directory would mix two runs' checkpoints: it is refused.
  try {
    run(config);
    ADD_FAILURE() << "a new run started over an earlier run's checkpoints";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds checkpoints of an earlier run"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(list_checkpoints(dir + "/run"), (std::vector<int64_t>{30, 40}));

  // The checkpoint loads as a model with the same vocabulary as its tokenizer.
  const auto loaded = load_model(dir + "/run");
  EXPECT_EQ(loaded.model.config().vocab_size, loaded.tokenizer.vocab_size());
}

TEST(Trainer, ResumeIsBitIdentical) {
  test::expect_resume_bit_identical(test::fresh_dir("resume-whole"),
                                    test::fresh_dir("resume-split"),
                                    [](nlohmann::json config) { return config; });
}

// schedule.decay_steps beyond train.steps stops a run part way down a longer schedule: its steps
// are the longer run's first steps, bit for bit, learning rates and losses alike.
TEST(Trainer, StopsPartWayDownALongerSchedule) {
  const auto whole_dir = test::fresh_dir("schedule-whole");
  const auto part_dir = test::fresh_dir("schedule-part");
  run(test::tiny_config(whole_dir, 12));
  auto config = test::tiny_config(part_dir, 6);
  config["schedule"]["decay_steps"] = 12;
  EXPECT_EQ(run(config).step, 6);
  for (const auto* key : {"lr", "loss"}) {
    auto whole = series(whole_dir + "/run/metrics.jsonl", key);
    const auto part = series(part_dir + "/run/metrics.jsonl", key);
    ASSERT_EQ(whole.size(), 12u) << key;
    whole.resize(6);
    EXPECT_EQ(part, whole) << key;
  }
  // Without it, the same 6 steps decay to the floor by step 6.
  const auto short_dir = test::fresh_dir("schedule-short");
  run(test::tiny_config(short_dir, 6));
  EXPECT_LT(series(short_dir + "/run/metrics.jsonl", "lr").back().second,
            series(part_dir + "/run/metrics.jsonl", "lr").back().second);
}

// log.profile_step writes that step's kernel times: every kernel of a decoder step is there, and
// the kernels' time fits inside the step's.
TEST(Trainer, ProfilesTheKernelsOfTheChosenStep) {
  const auto dir = test::fresh_dir("profile");
  auto config = test::tiny_config(dir, 3);
  config["log"]["profile_step"] = 2;
  run(config);
  const auto report = nlohmann::json::parse(read_file(dir + "/run/kernel-profile.json"));
  EXPECT_EQ(report.at("step"), 2);
  std::map<std::string, int64_t> calls;
  double in_kernels = 0;
  for (const auto& k : report.at("kernels")) {
    calls[k.at("kernel")] = k.at("calls");
    EXPECT_EQ(k.at("device"), "cpu");
    in_kernels += k.at("ms").get<double>();
  }
  for (const char* kernel :
       {"embedding_forward", "linear_forward", "linear_backward", "attention_forward",
        "attention_backward", "cross_entropy_forward", "adamw_multi_update"}) {
    EXPECT_GT(calls[kernel], 0) << kernel;
  }
  EXPECT_EQ(calls["adamw_multi_update"], 1);  // one step, one optimizer launch
  EXPECT_LE(in_kernels, report.at("step_ms").get<double>());
  EXPECT_NEAR(report.at("outside_kernels_ms").get<double>(),
              report.at("step_ms").get<double>() - in_kernels, 1e-6);
}

// Mixed precision (train.precision "bf16") follows the fp32 loss curve: bf16 GEMM operands keep 8
// bits, which moves each step's loss by well under 3% over 20 steps of the tiny model.
TEST(Trainer, Bf16FollowsTheFp32LossCurve) {
  const auto fp32_dir = test::fresh_dir("bf16-reference");
  const auto bf16_dir = test::fresh_dir("bf16-run");
  run(test::tiny_config(fp32_dir, 20));
  auto config = test::tiny_config(bf16_dir, 20);
  config["train"]["precision"] = "bf16";
  EXPECT_EQ(run(config).skipped_steps, 0);
  const auto fp32 = series(fp32_dir + "/run/metrics.jsonl", "loss");
  const auto bf16 = series(bf16_dir + "/run/metrics.jsonl", "loss");
  ASSERT_EQ(fp32.size(), 20u);
  ASSERT_EQ(bf16.size(), 20u);
  bool differs = false;
  for (size_t i = 0; i < fp32.size(); ++i) {
    EXPECT_NEAR(bf16[i].second, fp32[i].second, 0.03 * fp32[i].second) << "step " << i + 1;
    differs = differs || bf16[i].second != fp32[i].second;
  }
  EXPECT_TRUE(differs) << "bf16 gave the fp32 losses bit for bit: the GEMMs did not round";
  EXPECT_LT(bf16.back().second, bf16.front().second - 1.0);  // it learns
}

TEST(Trainer, DamagedCheckpointsAreNamedErrors) {
  const auto dir = test::fresh_dir("damaged");
  auto config = test::tiny_config(dir, 3);
  run(config);
  const std::string step = dir + "/run/step-3";

  auto expect_error = [&](const std::string& needle) {
    try {
      run(config, step);
      ADD_FAILURE() << "resume succeeded; expected an error naming " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const std::string state = read_file(step + "/trainer_state.json");
  write_file_atomic(step + "/trainer_state.json", "{\"step\": 3}");
  expect_error("'samples' is missing");
  write_file_atomic(step + "/trainer_state.json", "{not json");
  expect_error("trainer_state.json: not valid JSON");
  write_file_atomic(step + "/trainer_state.json", state);

  const std::string model = read_file(step + "/model.safetensors");
  write_file_atomic(step + "/model.safetensors", model.substr(0, model.size() / 2));
  expect_error("model.safetensors");
  write_file_atomic(step + "/model.safetensors", model);

  fs::remove(step + "/optimizer.safetensors");
  expect_error("optimizer.safetensors");
  EXPECT_THROW(resolve_checkpoint(dir + "/nothing-here"), Error);
}

}  // namespace
}  // namespace nuri
