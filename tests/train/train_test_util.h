// Shared set-up for the training tests: a tiny config over the committed sample text, in a
// fresh directory per test.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "kernels/file_io.h"
#include "train/config.h"
#include "train/trainer.h"

namespace nuri::test {

// A new empty directory under the build tree, named after the test.
inline std::string fresh_dir(const std::string& name) {
  const auto dir = std::filesystem::path(NURI_BINARY_DIR) / "test-runs" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// A config that trains a 2-layer, 32-wide model for `steps` steps in well under a second.
inline nlohmann::json tiny_config(const std::string& dir, int steps) {
  const std::string text = std::string(NURI_SOURCE_DIR) + "/tests/data/text/";
  return {
      {"model",
       {{"hidden_size", 32},
        {"intermediate_size", 64},
        {"num_hidden_layers", 2},
        {"num_attention_heads", 2},
        {"num_key_value_heads", 1},
        {"max_position_embeddings", 64}}},
      {"data", {{"train", {text + "train.txt"}}, {"valid", {text + "valid.txt"}}}},
      {"tokenizer", {{"path", dir + "/tokenizer.json"}, {"vocab_size", 320}}},
      {"optim", {{"lr", 0.01}}},
      {"schedule", {{"warmup_steps", 2}}},
      {"train", {{"steps", steps}, {"batch_size", 4}, {"seq_len", 16}, {"seed", 7}}},
      {"checkpoint", {{"dir", dir + "/run"}, {"every", 3}, {"keep", 10}}},
      {"eval", {{"every", 3}, {"batches", 2}}},
      {"log", {{"progress", false}}},
  };
}

// The metrics lines of a run that carry `key`, as (step, value) pairs.
inline std::vector<std::pair<int64_t, double>> series(const std::string& metrics,
                                                      const std::string& key) {
  std::vector<std::pair<int64_t, double>> out;
  std::ifstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    const auto record = nlohmann::json::parse(line);
    if (record.contains(key)) out.emplace_back(record["step"], record[key]);
  }
  return out;
}

// Trains a text model from a JSON config (optionally resuming from a checkpoint).
inline TrainSummary train_tiny(const nlohmann::json& config, const std::string& resume = "") {
  return train_text_model(parse_train_config(config, {}, "test config"), {resume, nullptr});
}

// Trains tiny_config(whole, 9) with grad_accum 2 (through `adjust`), then, as after a crash,
// resumes a copy of its step-3 checkpoint in `split` to step 9, and expects the resumed steps,
// the last model and the last optimizer state to be the whole run's bit for bit.
template <class Adjust>
void expect_resume_bit_identical(const std::string& whole, const std::string& split,
                                 Adjust adjust) {
  namespace fs = std::filesystem;
  auto config = tiny_config(whole, 9);
  config["train"]["grad_accum"] = 2;
  train_tiny(adjust(config));
  fs::copy(whole + "/tokenizer.json", split + "/tokenizer.json");
  fs::create_directories(split + "/run");
  fs::copy(whole + "/run/step-3", split + "/run/step-3", fs::copy_options::recursive);
  auto resumed = tiny_config(split, 9);
  resumed["train"]["grad_accum"] = 2;
  resumed["data"]["shard_dir"] = split + "/shards";
  train_tiny(adjust(resumed), split + "/run/step-3");

  for (const char* key : {"loss", "grad_norm"}) {
    const auto a = series(whole + "/run/metrics.jsonl", key);
    const auto b = series(split + "/run/metrics.jsonl", key);
    ASSERT_EQ(a.size(), 9u) << key;
    ASSERT_EQ(b.size(), 6u) << key;  // steps 4..9; the copied checkpoint brought no metrics
    for (size_t i = 0; i < b.size(); ++i) {
      EXPECT_EQ(b[i].first, a[i + 3].first);
      EXPECT_EQ(b[i].second, a[i + 3].second) << key << " at step " << b[i].first;
    }
  }
  for (const char* file : {"model.safetensors", "optimizer.safetensors"}) {
    EXPECT_EQ(read_file(split + "/run/step-9/" + file), read_file(whole + "/run/step-9/" + file))
        << file;
  }
}

}  // namespace nuri::test
