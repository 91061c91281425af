// The decoder backbone: parameter names and shapes, initialisation, checkpoints, the loss and its
// gradients.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>

#include "decoder/model.h"
#include "decoder_test_util.h"
#include "kernels/autograd.h"
#include "kernels/safetensors.h"
#include "tests/common/adamw_losses.h"

namespace nuri {
namespace {

using test::initialised;
using test::small_config;
using test::TempDir;
using test::token_ids;

TEST(DecoderModel, ParametersCarryHuggingFaceNamesAndShapes) {
  for (bool tied : {false, true}) {
    const DecoderConfig config = small_config(tied);
    Decoder model(config);
    std::map<std::string, Shape> expected = {
        {"model.embed_tokens.weight", {53, 32}},
        {"model.norm.weight", {32}},
    };
    if (!tied) expected["lm_head.weight"] = {53, 32};
    for (int i = 0; i < 2; ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      expected[p + "input_layernorm.weight"] = {32};
      expected[p + "post_attention_layernorm.weight"] = {32};
      expected[p + "self_attn.q_proj.weight"] = {32, 32};  // 4 heads of 8
      expected[p + "self_attn.k_proj.weight"] = {16, 32};  // 2 kv heads of 8
      expected[p + "self_attn.v_proj.weight"] = {16, 32};
      expected[p + "self_attn.o_proj.weight"] = {32, 32};
      expected[p + "mlp.gate_proj.weight"] = {72, 32};
      expected[p + "mlp.up_proj.weight"] = {72, 32};
      expected[p + "mlp.down_proj.weight"] = {32, 72};
    }
    std::map<std::string, Shape> actual;
    int64_t count = 0;
    for (const NamedParameter& p : model.parameters()) {
      EXPECT_TRUE(p.tensor.requires_grad()) << p.name;
      EXPECT_EQ(p.tensor.dtype(), DType::f32) << p.name;
      actual[p.name] = p.tensor.shape();
      count += p.tensor.numel();
    }
    EXPECT_EQ(actual, expected) << "tied " << tied;
    EXPECT_EQ(count, config.parameter_count());
    EXPECT_EQ(model.parameters().front().name, "model.embed_tokens.weight");
    EXPECT_TRUE(model.parameter("model.layers.1.mlp.up_proj.weight")
                    .same(model.parameters()[model.parameters().size() - (tied ? 3 : 4)].tensor));
  }
  Decoder tied(small_config(true));
  try {
    tied.parameter("lm_head.weight");
    FAIL() << "a tied model has no lm_head.weight";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tied"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tied.parameter("model.layers.2.mlp.up_proj.weight"), Error);
}

TEST(DecoderModel, InitDrawsNormalWeightsAndUnitNorms) {
  DecoderConfig config = small_config(false);
  config.initializer_range = 0.05f;
  const Decoder a = initialised(config, 7), b = initialised(config, 7), c = initialised(config, 8);
  double sum = 0, sum_sq = 0;
  int64_t n = 0;
  for (size_t i = 0; i < a.parameters().size(); ++i) {
    const NamedParameter& p = a.parameters()[i];
    const std::vector<float> values = p.tensor.to_vector();
    EXPECT_EQ(values, b.parameters()[i].tensor.to_vector()) << p.name;
    if (p.name.ends_with("norm.weight")) {
      for (float v : values) ASSERT_EQ(v, 1.0f) << p.name;
      continue;
    }
    EXPECT_NE(values, c.parameters()[i].tensor.to_vector()) << p.name;
    for (float v : values) {
      sum += v;
      sum_sq += static_cast<double>(v) * v;
      ++n;
    }
  }
  // Tens of thousands of N(0, 0.05^2) draws: mean within ~4 standard errors, std within 2%.
  const double mean = sum / n, std = std::sqrt(sum_sq / n - mean * mean);
  EXPECT_LT(std::abs(mean), 4 * 0.05 / std::sqrt(static_cast<double>(n)));
  EXPECT_NEAR(std, 0.05, 0.001);
}

TEST(DecoderModel, SaveLoadRoundTripsAndTiedHeadIsNotWritten) {
  TempDir dir;
  for (bool tied : {false, true}) {
    const DecoderConfig config = small_config(tied);
    const Decoder source = initialised(config, 3);
    const std::string path = dir.file(tied ? "tied.safetensors" : "untied.safetensors");
    source.save(path);
    const SafetensorsFile file = SafetensorsFile::open(path);
    EXPECT_EQ(file.contains("lm_head.weight"), !tied);
    EXPECT_EQ(file.names().size(), source.parameters().size());

    Decoder loaded(config);
    const Tensor before = loaded.parameters().front().tensor;
    loaded.load(path);
    EXPECT_TRUE(loaded.parameters().front().tensor.same(before)) << "loads in place";
    for (size_t i = 0; i < source.parameters().size(); ++i) {
      EXPECT_EQ(loaded.parameters()[i].tensor.to_vector(),
                source.parameters()[i].tensor.to_vector())
          << source.parameters()[i].name;
    }
    const Tensor ids = token_ids(2, 5, config.vocab_size, 11);
    NoGradScope no_grad;
    EXPECT_EQ(loaded.forward(ids).to_vector(), source.forward(ids).to_vector());
  }
}

// Writes `model`'s parameters to `path` after `edit` changes the list.
void save_edited(const Decoder& model, const std::string& path,
                 const std::function<void(std::vector<std::pair<std::string, Tensor>>&)>& edit) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const NamedParameter& p : model.parameters())
    tensors.emplace_back(p.name, p.tensor.detach());
  edit(tensors);
  save_safetensors(path, tensors);
}

// Expects load(path) to throw a message holding each of `words`, and to leave `model` unchanged.
void expect_load_error(Decoder& model, const std::string& path,
                       const std::vector<std::string>& words) {
  const std::vector<float> before = model.parameters().back().tensor.to_vector();
  try {
    model.load(path);
    ADD_FAILURE() << "load of " << path << " did not throw";
  } catch (const Error& e) {
    for (const std::string& word : words) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos)
          << "'" << word << "' not in: " << e.what();
    }
  }
  EXPECT_EQ(model.parameters().back().tensor.to_vector(), before) << "a failed load changed it";
}

TEST(DecoderModel, LoadNamesTheMissingExtraOrMisShapedTensor) {
  TempDir dir;
  const Decoder source = initialised(small_config(false), 3);
  Decoder target = initialised(small_config(false), 4);
  const std::string missing = dir.file("missing.safetensors");
  save_edited(source, missing, [](auto& t) {
    std::erase_if(t, [](const auto& p) { return p.first == "model.layers.1.mlp.up_proj.weight"; });
  });
  expect_load_error(target, missing, {missing, "missing", "model.layers.1.mlp.up_proj.weight"});

  const std::string extra = dir.file("extra.safetensors");
  save_edited(source, extra, [](auto& t) {
    t.emplace_back("model.layers.2.input_layernorm.weight", Tensor::ones({32}));
  });
  expect_load_error(target, extra, {extra, "unexpected", "model.layers.2.input_layernorm.weight"});

  const std::string shaped = dir.file("shaped.safetensors");
  save_edited(source, shaped, [](auto& t) {
    for (auto& [name, tensor] : t) {
      if (name == "model.layers.0.self_attn.k_proj.weight") tensor = Tensor::zeros({32, 32});
    }
  });
  expect_load_error(target, shaped,
                    {shaped, "model.layers.0.self_attn.k_proj.weight", "[32, 32]", "[16, 32]"});

  // A tied model accepts a stored head only when it equals the embeddings.
  Decoder tied = initialised(small_config(true), 5);
  const std::string head_copy = dir.file("head_copy.safetensors");
  save_edited(tied, head_copy,
              [](auto& t) { t.emplace_back("lm_head.weight", t.front().second.clone()); });
  EXPECT_NO_THROW(tied.load(head_copy));
  const std::string head_other = dir.file("head_other.safetensors");
  save_edited(tied, head_other, [](auto& t) {
    t.emplace_back("lm_head.weight", Tensor::zeros({53, 32}));
  });
  expect_load_error(tied, head_other, {"lm_head.weight", "tie_word_embeddings"});
}

// Mean next-token cross-entropy in double from the logits, skipping targets of -100.
double reference_loss(const Tensor& logits, const std::vector<int32_t>& targets, int64_t vocab) {
  const std::vector<float> z = logits.to_vector();
  double total = 0;
  int counted = 0;
  for (size_t r = 0; r < targets.size(); ++r) {
    if (targets[r] == -100) continue;
    const float* row = z.data() + r * vocab;
    double top = row[0], sum = 0;
    for (int64_t j = 0; j < vocab; ++j) top = std::max(top, static_cast<double>(row[j]));
    for (int64_t j = 0; j < vocab; ++j) sum += std::exp(row[j] - top);
    total += top + std::log(sum) - row[targets[r]];
    ++counted;
  }
  return total / counted;
}

TEST(DecoderModel, LossIsMeanCrossEntropyIgnoringMinus100) {
  const DecoderConfig config = small_config(false);
  const Decoder model = initialised(config, 9);
  const Tensor ids = token_ids(2, 6, config.vocab_size, 21);
  std::vector<int32_t> targets(12);
  const std::vector<float> id_values = ids.to_vector();
  for (size_t i = 0; i < targets.size(); ++i)
    targets[i] = (static_cast<int32_t>(id_values[i]) + 1) % 53;
  targets[0] = targets[5] = targets[9] = -100;
  const Tensor target_tensor = Tensor::from_data<int32_t>(targets, {2, 6});
  NoGradScope no_grad;
  const double expected = reference_loss(model.forward(ids), targets, config.vocab_size);
  EXPECT_NEAR(model.loss(ids, target_tensor).item(), expected, 1e-5 * expected);
  EXPECT_THROW(model.loss(ids, Tensor::zeros({2, 5}, DType::i32)), Error);
}

TEST(DecoderModel, GradientsMatchFiniteDifferences) {
  for (bool tied : {false, true}) {
    const DecoderConfig config = small_config(tied);
    Decoder model = initialised(config, 13);
    const Tensor ids = token_ids(2, 7, config.vocab_size, 5);
    const Tensor targets = token_ids(2, 7, config.vocab_size, 6);
    Tape tape;
    Tensor loss;
    {
      TapeScope scope(tape);
      loss = model.loss(ids, targets);
    }
    tape.backward(loss);
    for (NamedParameter& p : model.parameters()) {
      const Tensor grad = p.tensor.grad();
      ASSERT_TRUE(grad.defined()) << p.name;
      // The three largest-gradient elements of each parameter, by central differences.
      std::vector<float> g = grad.to_vector();
      std::vector<size_t> order(g.size());
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + 3, order.end(),
                        [&](size_t a, size_t b) { return std::abs(g[a]) > std::abs(g[b]); });
      float* w = p.tensor.data<float>();
      for (int i = 0; i < 3; ++i) {
        const size_t e = order[i];
        const float saved = w[e], h = 1e-2f;
        NoGradScope no_grad;
        w[e] = saved + h;
        const double up = model.loss(ids, targets).item();
        w[e] = saved - h;
        const double down = model.loss(ids, targets).item();
        w[e] = saved;
        const double numeric = (up - down) / (2.0 * h);
        EXPECT_NEAR(g[e], numeric, 2e-2 * std::abs(numeric) + 2e-4)
            << p.name << " element " << e << " tied " << tied;
      }
    }
  }
}

TEST(DecoderModel, AdamWStepsFitAFixedBatch) {
  const DecoderConfig config = small_config(true);
  Decoder model = initialised(config, 17);
  const Tensor ids = token_ids(4, 16, config.vocab_size, 8);
  const Tensor targets = token_ids(4, 16, config.vocab_size, 9);
  const std::vector<double> losses =
      test::adamw_losses(model.parameters(), 60, {.lr = 1e-2f, .weight_decay = 0.0f},
                         [&] { return model.loss(ids, targets); });
  const double first = losses.front(), last = losses.back();
  // Random targets over 53 ids start near ln 53 = 3.97; 60 steps memorise most of the batch.
  EXPECT_NEAR(first, std::log(53.0), 1.0);
  EXPECT_LT(last, 0.5 * first);
}

TEST(DecoderModel, RejectsMalformedInput) {
  const DecoderConfig config = small_config(false);
  const Decoder model = initialised(config, 1);
  NoGradScope no_grad;
  EXPECT_THROW(model.forward(Tensor::zeros({5}, DType::i32)), Error);
  EXPECT_THROW(model.forward(Tensor::full({1, 3}, 53, DType::i32)), Error);
  EXPECT_THROW(model.forward(Tensor::zeros({1, 65}, DType::i32)), Error);  // past max positions
  EXPECT_THROW(model.forward_hidden(Tensor::zeros({1, 3, 31}), position_ids(0, 3)), Error);
  EXPECT_THROW(Decoder(DecoderConfig{.num_attention_heads = 3}), Error);
}

}  // namespace
}  // namespace nuri
