// The audio encoder: token counts, streaming against whole-input encoding, block-causality,
// gradients, configs and checkpoints.
#include "encoders/audio_encoder.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "encoder_test_util.h"
#include "kernels/ops/shape.h"
#include "kernels/safetensors.h"

namespace nuri {
namespace {

using test::check_gradients;
using test::random_tensor;
using test::relative_max_diff;
using test::TempDir;

// 8 mel bins, chunks of 8 frames (4 after the stride, 2 tokens with pool 2).
AudioEncoderConfig tiny_config(int64_t pool_stride = 2) {
  AudioEncoderConfig c;
  c.n_mels = 8;
  c.hidden_size = 16;
  c.num_layers = 2;
  c.num_heads = 2;
  c.intermediate_size = 24;
  c.chunk_seconds = 0.08;
  c.pool_stride = pool_stride;
  c.output_size = 12;
  c.initializer_range = 0.2f;
  return c;
}

AudioEncoder initialised(const AudioEncoderConfig& config, uint64_t seed) {
  AudioEncoder encoder(config);
  Generator gen{seed, 0};
  encoder.init(gen);
  return encoder;
}

// Columns [begin, end) of mel [M, F].
Tensor frames_of(const Tensor& mel, int64_t begin, int64_t end) {
  NoGradScope no_grad;
  return slice(mel, 1, begin, end);
}

TEST(AudioEncoder, ParameterNamesAndShapes) {
  const AudioEncoderConfig config = tiny_config();
  const AudioEncoder encoder(config);
  std::map<std::string, Shape> actual;
  for (const NamedParameter& p : encoder.parameters()) {
    EXPECT_TRUE(p.tensor.requires_grad()) << p.name;
    actual[p.name] = p.tensor.shape();
  }
  std::map<std::string, Shape> expected = {
      {"audio_encoder.conv1.weight", {16, 8, 3}},  {"audio_encoder.conv1.bias", {16}},
      {"audio_encoder.conv2.weight", {16, 16, 3}}, {"audio_encoder.conv2.bias", {16}},
      {"audio_encoder.norm.weight", {16}},         {"audio_encoder.norm.bias", {16}},
      {"audio_projector.fc1.weight", {12, 16}},    {"audio_projector.fc1.bias", {12}},
      {"audio_projector.fc2.weight", {12, 12}},    {"audio_projector.fc2.bias", {12}},
      {"audio_projector.norm.weight", {12}},
  };
  for (int i = 0; i < 2; ++i) {
    const std::string p = "audio_encoder.layers." + std::to_string(i) + ".";
    for (const char* norm : {"input_layernorm", "post_attention_layernorm"}) {
      expected[p + norm + ".weight"] = {16};
      expected[p + norm + ".bias"] = {16};
    }
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
      expected[p + "self_attn." + proj + ".weight"] = {16, 16};
      expected[p + "self_attn." + proj + ".bias"] = {16};
    }
    expected[p + "mlp.fc1.weight"] = {24, 16};
    expected[p + "mlp.fc1.bias"] = {24};
    expected[p + "mlp.fc2.weight"] = {16, 24};
    expected[p + "mlp.fc2.bias"] = {16};
  }
  EXPECT_EQ(actual, expected);
}

TEST(AudioEncoder, TokenCountsFollowTheCeilRule) {
  AudioEncoderConfig defaults;
  EXPECT_EQ(defaults.chunk_frames(), 200);
  EXPECT_EQ(defaults.chunk_tokens(), 50);  // 25 tokens per second
  EXPECT_EQ(defaults.token_count(100), 25);
  EXPECT_EQ(defaults.token_count(101), 26);
  defaults.pool_stride = 4;
  EXPECT_EQ(defaults.chunk_tokens(), 25);  // 12.5 tokens per second
  EXPECT_EQ(defaults.token_count(0), 0);

  for (int64_t pool : {1, 2, 4}) {
    const AudioEncoderConfig config = tiny_config(pool);
    const AudioEncoder encoder = initialised(config, 1);
    NoGradScope no_grad;
    for (int64_t frames : {1, 3, 4, 5, 8, 9, 17, 23}) {
      const int64_t expected = (frames + 2 * pool - 1) / (2 * pool);
      EXPECT_EQ(encoder.token_count(frames), expected);
      const Tensor out = encoder.encode(random_tensor({8, frames}, frames));
      EXPECT_EQ(out.shape(), (Shape{1, expected, 12})) << "pool " << pool << " frames " << frames;
    }
  }
}

TEST(AudioEncoder, PartialChunkIsZeroPadded) {
  const AudioEncoder encoder = initialised(tiny_config(), 2);
  NoGradScope no_grad;
  const Tensor mel = random_tensor({8, 21}, 3);  // 2 chunks + 5 frames, padded to 8
  const Tensor padded = concat({mel, Tensor::zeros({8, 3})}, 1);
  EXPECT_LT(relative_max_diff(encoder.encode(mel), encoder.encode(padded)), 1e-6);
}

TEST(AudioEncoder, BatchItemsAreEncodedIndependently) {
  const AudioEncoder encoder = initialised(tiny_config(), 4);
  NoGradScope no_grad;
  const Tensor a = random_tensor({8, 19}, 5), b = random_tensor({8, 19}, 6);
  const Tensor both = encoder.encode(concat({a.view({1, 8, 19}), b.view({1, 8, 19})}, 0));
  ASSERT_EQ(both.shape(), (Shape{2, 5, 12}));
  EXPECT_LT(relative_max_diff(slice(both, 0, 0, 1), encoder.encode(a)), 1e-5);
  EXPECT_LT(relative_max_diff(slice(both, 0, 1, 2), encoder.encode(b)), 1e-5);
}

TEST(AudioEncoder, StreamingEqualsWholeForAnyPieces) {
  for (int64_t pool : {2, 4}) {
    const AudioEncoder encoder = initialised(tiny_config(pool), 7);
    const int64_t total = 8 * 4 + 5;  // four full chunks and a final partial one
    const Tensor mel = random_tensor({8, total}, 8);
    Tensor whole;
    {
      NoGradScope no_grad;
      whole = encoder.encode(mel);
    }
    const std::vector<std::vector<int64_t>> patterns = {
        {total}, {8, 8, 8, 8, 5}, {1, 2, 3, 5, 7, 11, 8}, {0, 16, 0, 13, 3, 0, 5}, {36, 1}};
    std::vector<int64_t> ones(total, 1);
    std::vector<std::vector<int64_t>> all = patterns;
    all.push_back(ones);
    for (const std::vector<int64_t>& pieces : all) {
      AudioEncoderStream stream(encoder);
      std::vector<Tensor> outputs;
      int64_t at = 0, completed = 0;
      for (int64_t size : pieces) {
        const Tensor out = stream.push(frames_of(mel, at, at + size));
        at += size;
        // Each push returns exactly the tokens of the chunks completed so far.
        EXPECT_EQ(out.size(0), at / 8 * encoder.config().chunk_tokens() - completed);
        completed += out.size(0);
        if (out.size(0) > 0) outputs.push_back(out);
      }
      ASSERT_EQ(at, total);
      outputs.push_back(stream.finish());
      EXPECT_EQ(stream.frames(), total);
      EXPECT_EQ(stream.tokens(), encoder.token_count(total));
      const Tensor streamed = concat(outputs, 0);
      ASSERT_EQ(streamed.shape(), (Shape{whole.size(1), 12}));
      EXPECT_LT(relative_max_diff(streamed, whole.view({whole.size(1), 12})), 1e-5)
          << "pool " << pool << ", " << pieces.size() << " pieces";
    }
  }
}

TEST(AudioEncoder, StreamingEqualsWholeWithTwoSecondChunks) {
  // The default 200-frame chunks: blocks of 100 frames after the stride, so attention tiles of
  // 128 keys straddle chunk boundaries.
  AudioEncoderConfig config = tiny_config();
  config.chunk_seconds = 2.0;
  const AudioEncoder encoder = initialised(config, 31);
  const int64_t total = 200 * 3 + 37;
  const Tensor mel = random_tensor({8, total}, 32);
  Tensor whole;
  {
    NoGradScope no_grad;
    whole = encoder.encode(mel);
  }
  ASSERT_EQ(whole.shape(), (Shape{1, 160, 12}));
  AudioEncoderStream stream(encoder);
  std::vector<Tensor> outputs;
  for (int64_t at = 0; at < total; at += 73) {
    const Tensor out = stream.push(frames_of(mel, at, std::min<int64_t>(total, at + 73)));
    if (out.size(0) > 0) outputs.push_back(out);
  }
  outputs.push_back(stream.finish());
  EXPECT_LT(relative_max_diff(concat(outputs, 0), whole.view({160, 12})), 1e-5);
}

TEST(AudioEncoder, StreamOfWholeChunksHasNothingLeftToFinish) {
  const AudioEncoder encoder = initialised(tiny_config(), 9);
  AudioEncoderStream stream(encoder);
  EXPECT_EQ(stream.push(random_tensor({8, 16}, 10)).shape(), (Shape{4, 12}));
  EXPECT_EQ(stream.finish().shape(), (Shape{0, 12}));
  EXPECT_THROW(stream.push(random_tensor({8, 1}, 11)), Error);
  EXPECT_THROW(stream.finish(), Error);
  AudioEncoderStream wrong(encoder);
  try {
    wrong.push(random_tensor({7, 4}, 12));
    FAIL() << "7 mel bins were accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[8, frames]"), std::string::npos) << e.what();
  }
}

TEST(AudioEncoder, LaterChunksDoNotChangeEarlierTokens) {
  const AudioEncoder encoder = initialised(tiny_config(), 13);
  NoGradScope no_grad;
  const Tensor mel = random_tensor({8, 30}, 14);
  // Frames from 16 on (chunks 2 and 3) replaced.
  const Tensor changed = concat({frames_of(mel, 0, 16), random_tensor({8, 14}, 15)}, 1);
  const Tensor a = encoder.encode(mel), b = encoder.encode(changed);
  ASSERT_EQ(a.shape(), (Shape{1, 8, 12}));
  EXPECT_LT(relative_max_diff(slice(b, 1, 0, 4), slice(a, 1, 0, 4)), 1e-6);
  EXPECT_GT(relative_max_diff(slice(b, 1, 4, 8), slice(a, 1, 4, 8)), 1e-2);
  // And an earlier chunk does reach later ones.
  const Tensor first_changed = concat({random_tensor({8, 8}, 16), frames_of(mel, 8, 30)}, 1);
  EXPECT_GT(relative_max_diff(slice(encoder.encode(first_changed), 1, 4, 8), slice(a, 1, 4, 8)),
            1e-3);
}

TEST(AudioEncoder, FramesSeeTheirWholeChunk) {
  // Attention is block-causal, not causal: the first token (mel frames 0-3, and 4 through the
  // stem's receptive field) changes with frames 6 and 7 of its chunk.
  const AudioEncoder encoder = initialised(tiny_config(), 25);
  NoGradScope no_grad;
  const Tensor mel = random_tensor({8, 16}, 26);
  const Tensor changed =
      concat({frames_of(mel, 0, 6), random_tensor({8, 2}, 27), frames_of(mel, 8, 16)}, 1);
  EXPECT_GT(relative_max_diff(slice(encoder.encode(changed), 1, 0, 1),
                              slice(encoder.encode(mel), 1, 0, 1)),
            1e-3);
}

TEST(AudioEncoder, GradientsReachEveryParameterAndMatchFiniteDifferences) {
  AudioEncoder encoder = initialised(tiny_config(), 17);
  const Tensor mel = random_tensor({2, 8, 13}, 18);
  check_gradients(
      encoder.parameters(), [&] { return encoder.encode(mel); }, {2, 4, 12}, 2);
}

TEST(AudioEncoder, CtcHeadReadsThePooledFeatures) {
  AudioEncoder encoder(tiny_config(), 7);
  Generator gen{19, 0};
  encoder.init(gen);
  EXPECT_EQ(encoder.ctc_classes(), 7);
  EXPECT_EQ(encoder.parameter("audio_encoder.ctc_head.weight").shape(), (Shape{7, 16}));
  EXPECT_EQ(encoder.parameter("audio_encoder.ctc_head.bias").shape(), (Shape{7}));
  const Tensor mel = random_tensor({2, 8, 13}, 20);
  {
    NoGradScope no_grad;
    const auto [tokens, logits] = encoder.encode_with_ctc(mel);
    EXPECT_EQ(tokens.to_vector(), encoder.encode(mel).to_vector());
    EXPECT_EQ(logits.shape(), (Shape{2, 4, 7}));
  }
  // The head's logits reach every parameter but the projector's.
  std::vector<NamedParameter> trunk;
  for (const NamedParameter& p : encoder.parameters())
    if (p.name.rfind("audio_projector.", 0) != 0) trunk.push_back(p);
  check_gradients(
      trunk, [&] { return encoder.encode_with_ctc(mel).second; }, {2, 4, 7}, 2);
  const AudioEncoder plain = initialised(tiny_config(), 21);
  EXPECT_EQ(plain.ctc_classes(), 0);
  EXPECT_THROW(plain.encode_with_ctc(mel), Error);
}

TEST(AudioEncoder, ConfigJsonRoundTripsAndRejectsUnknownKeys) {
  AudioEncoderConfig config = tiny_config(4);
  config.rope_theta = 500.0f;
  const nlohmann::json json = config.to_json();
  EXPECT_EQ(json.at("chunk_seconds"), 0.08);
  EXPECT_EQ(json.at("pool_stride"), 4);
  const AudioEncoderConfig back = AudioEncoderConfig::from_json(json);
  EXPECT_EQ(back.to_json(), json);
  EXPECT_EQ(back.chunk_frames(), 8);
  EXPECT_EQ(AudioEncoderConfig::from_json(nlohmann::json::object()).to_json(),
            AudioEncoderConfig().to_json());

  auto error_of = [](const nlohmann::json& j) -> std::string {
    try {
      AudioEncoderConfig::from_json(j);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  nlohmann::json unknown = json;
  unknown["num_hidden_layers"] = 3;
  EXPECT_NE(error_of(unknown).find("unknown key 'num_hidden_layers'"), std::string::npos);
  nlohmann::json typed = json;
  typed["num_layers"] = "two";
  EXPECT_NE(error_of(typed).find("'num_layers'"), std::string::npos);
  nlohmann::json uneven = json;
  uneven["chunk_seconds"] = 0.1;  // 10 frames, not a multiple of 8
  EXPECT_NE(error_of(uneven).find("chunk_seconds"), std::string::npos);
  nlohmann::json heads = json;
  heads["num_heads"] = 3;
  EXPECT_NE(error_of(heads).find("num_heads"), std::string::npos);
  EXPECT_NE(error_of(nlohmann::json::array()).find("JSON object"), std::string::npos);
}

TEST(AudioEncoder, SaveAndLoadRoundTripAndNameBadTensors) {
  TempDir dir;
  const AudioEncoderConfig config = tiny_config();
  const AudioEncoder saved = initialised(config, 21);
  saved.save(dir.file("audio.safetensors"));
  AudioEncoder loaded = initialised(config, 22);
  loaded.load(dir.file("audio.safetensors"));
  const Tensor mel = random_tensor({8, 11}, 23);
  NoGradScope no_grad;
  EXPECT_EQ(loaded.encode(mel).to_vector(), saved.encode(mel).to_vector());

  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const NamedParameter& p : saved.parameters())
    tensors.emplace_back(p.name, p.tensor.detach());
  auto load_error = [&](const std::vector<std::pair<std::string, Tensor>>& file) -> std::string {
    save_safetensors(dir.file("bad.safetensors"), file);
    AudioEncoder target = initialised(config, 24);
    const std::vector<float> before = target.parameters()[5].tensor.to_vector();
    try {
      target.load(dir.file("bad.safetensors"));
    } catch (const Error& e) {
      EXPECT_EQ(target.parameters()[5].tensor.to_vector(), before) << "a failed load wrote";
      return e.what();
    }
    return "";
  };
  auto missing = tensors;
  missing.erase(missing.begin() + 3);
  EXPECT_NE(load_error(missing).find("missing tensor 'audio_encoder.conv2.bias'"),
            std::string::npos);
  auto extra = tensors;
  extra.emplace_back("audio_encoder.layers.2.mlp.fc1.weight", Tensor::zeros({24, 16}));
  EXPECT_NE(load_error(extra).find("unexpected tensor 'audio_encoder.layers.2.mlp.fc1.weight'"),
            std::string::npos);
  auto shaped = tensors;
  shaped[0].second = Tensor::zeros({16, 8, 5});
  EXPECT_NE(load_error(shaped).find("'audio_encoder.conv1.weight' has shape [16, 8, 5]"),
            std::string::npos);
}

}  // namespace
}  // namespace nuri
