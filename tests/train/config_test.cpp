#include "train/config.h"

#include <gtest/gtest.h>

#include "kernels/error.h"
#include "train_test_util.h"

namespace nuri {
namespace {

// The message of the nuri::Error that `body` throws, or "" when it throws none.
template <class Body>
std::string error_of(Body body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TrainConfig, FillsDefaultsAndReadsSections) {
  const auto c = parse_train_config(test::tiny_config("/tmp/x", 5), {}, "test");
  EXPECT_EQ(c.model.hidden_size, 32);
  EXPECT_EQ(c.model.vocab_size, 0);  // taken from the tokenizer later
  EXPECT_EQ(c.train.steps, 5);
  EXPECT_EQ(c.train.grad_accum, 1);  // a default
  EXPECT_EQ(c.checkpoint.keep, 10);
  EXPECT_FLOAT_EQ(c.optim.adamw.lr, 0.01f);
  EXPECT_TRUE(c.json["optim"].contains("grad_clip"));  // defaults are written into the saved config
}

TEST(TrainConfig, UnknownKeyIsNamed) {
  auto json = test::tiny_config("/tmp/x", 5);
  json["optim"]["learning_rate"] = 0.1;
  EXPECT_NE(error_of([&] {
              parse_train_config(json, {}, "cfg");
            }).find("unknown key 'optim.learning_rate'"),
            std::string::npos);
  json = test::tiny_config("/tmp/x", 5);
  json["extras"] = 1;
  EXPECT_NE(error_of([&] { parse_train_config(json, {}, "cfg"); }).find("unknown key 'extras'"),
            std::string::npos);
}

TEST(TrainConfig, IllTypedKeyIsNamed) {
  auto json = test::tiny_config("/tmp/x", 5);
  json["train"]["batch_size"] = "eight";
  const auto message = error_of([&] { parse_train_config(json, {}, "cfg"); });
  EXPECT_NE(message.find("'train.batch_size' must be an integer"), std::string::npos) << message;
  json = test::tiny_config("/tmp/x", 5);
  json["model"]["num_hidden_layers"] = 2.5;
  EXPECT_NE(error_of([&] { parse_train_config(json, {}, "cfg"); }).find("model.num_hidden_layers"),
            std::string::npos);
  json = test::tiny_config("/tmp/x", 5);
  json["data"]["train"] = {1, 2};
  EXPECT_NE(error_of([&] { parse_train_config(json, {}, "cfg"); }).find("data.train"),
            std::string::npos);
}

TEST(TrainConfig, SetOverridesKeys) {
  const auto c =
      parse_train_config(test::tiny_config("/tmp/x", 5),
                         {"train.steps=42", "optim.lr=3e-4", "checkpoint.dir=elsewhere"}, "cfg");
  EXPECT_EQ(c.train.steps, 42);
  EXPECT_FLOAT_EQ(c.optim.adamw.lr, 3e-4f);
  EXPECT_EQ(c.checkpoint.dir, "elsewhere");
  EXPECT_NE(error_of([&] {
              parse_train_config(test::tiny_config("/tmp/x", 5), {"train.stepz=1"}, "cfg");
            }).find("unknown key 'train.stepz'"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              parse_train_config(test::tiny_config("/tmp/x", 5), {"train.steps"}, "cfg");
            }).find("key=value"),
            std::string::npos);
}

TEST(TrainConfig, LearningRateFactorsPerModule) {
  auto json = test::tiny_config("/tmp/x", 5);
  json["optim"]["lr_scale"] = {{"vision_encoder", 0.1}};
  const auto c = parse_train_config(json, {}, "cfg");
  EXPECT_DOUBLE_EQ(c.optim.lr_scale.at("vision_encoder"), 0.1);
  EXPECT_DOUBLE_EQ(c.optim.lr_scale.at("decoder"), 1.0);  // a default
  json["optim"]["lr_scale"] = {{"vision_tower", 0.1}};
  EXPECT_NE(error_of([&] {
              parse_train_config(json, {}, "cfg");
            }).find("unknown key 'optim.lr_scale.vision_tower'"),
            std::string::npos);
  json["optim"]["lr_scale"] = {{"audio_projector", 0}};
  EXPECT_NE(error_of([&] {
              parse_train_config(json, {}, "cfg");
            }).find("'optim.lr_scale.audio_projector' must be positive"),
            std::string::npos);
}

TEST(TrainConfig, InconsistentValuesAreErrors) {
  auto json = test::tiny_config("/tmp/x", 5);
  json["model"]["num_key_value_heads"] = 3;
  EXPECT_NE(error_of([&] { parse_train_config(json, {}, "cfg"); }).find("num_key_value_heads"),
            std::string::npos);
  json = test::tiny_config("/tmp/x", 0);
  EXPECT_NE(error_of([&] { parse_train_config(json, {}, "cfg"); }).find("train.steps"),
            std::string::npos);
  json = test::tiny_config("/tmp/x", 5);
  json["log"]["profile_step"] = 6;
  EXPECT_NE(error_of([&] {
              parse_train_config(json, {}, "cfg");
            }).find("'log.profile_step' is 6, beyond train.steps 5"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              load_train_config("/nonexistent/config.json");
            }).find("/nonexistent/config.json"),
            std::string::npos);
}

}  // namespace
}  // namespace nuri
