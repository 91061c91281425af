// Shared set-up for the training tests: a tiny config over the committed sample text, in a
// fresh directory per test.
#pragma once

#include <filesystem>
#include <string>

#include "train/config.h"

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

}  // namespace nuri::test
