// Sampling rules (greedy, temperature, top-k, top-p, repetition penalty, seeds) and generate().
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "decoder/sampling.h"
#include "decoder_test_util.h"
#include "kernels/autograd.h"

namespace nuri {
namespace {

using test::initialised;
using test::small_config;

// Counts of each id over `draws` samples of `logits` with `options` (seed varied per draw set).
std::map<int32_t, int> histogram(const std::vector<float>& logits, const SamplingOptions& options,
                                 int draws) {
  Sampler sampler(options);
  std::map<int32_t, int> counts;
  for (int i = 0; i < draws; ++i) ++counts[sampler.sample(logits, {})];
  return counts;
}

// Pseudo-random logits in [-4, 4).
std::vector<float> random_logits(int64_t n, uint32_t seed) {
  std::vector<float> out(static_cast<size_t>(n));
  for (float& x : out) {
    seed = seed * 1664525u + 1013904223u;
    x = static_cast<float>(seed >> 8) / 16777216.0f * 8.0f - 4.0f;
  }
  return out;
}

TEST(DecoderSampling, TemperatureZeroIsArgmaxWithLowestIdOnTies) {
  Sampler greedy({.temperature = 0});
  EXPECT_EQ(greedy.sample(std::vector<float>{0.1f, 2.0f, -1.0f, 1.9f}, {}), 1);
  EXPECT_EQ(greedy.sample(std::vector<float>{3.0f, 1.0f, 3.0f}, {}), 0);
  EXPECT_EQ(greedy.sample(std::vector<float>{-INFINITY, -5.0f}, {}), 1);
}

TEST(DecoderSampling, TopKOneEqualsGreedy) {
  for (uint32_t seed = 0; seed < 20; ++seed) {
    const std::vector<float> logits = random_logits(97, seed);
    Sampler greedy({.temperature = 0});
    Sampler top1({.temperature = 1.3f, .top_k = 1, .seed = seed});
    EXPECT_EQ(top1.sample(logits, {}), greedy.sample(logits, {})) << "seed " << seed;
  }
}

TEST(DecoderSampling, TemperatureSamplesFollowTheSoftmax) {
  const std::vector<float> logits = {1.0f, 0.0f, -1.0f, 0.5f};
  for (float temperature : {1.0f, 0.5f, 2.0f}) {
    const int draws = 40000;
    const auto counts = histogram(logits, {.temperature = temperature, .seed = 3}, draws);
    double total = 0;
    std::vector<double> p;
    for (float x : logits) total += std::exp(x / temperature);
    for (float x : logits) p.push_back(std::exp(x / temperature) / total);
    for (int32_t id = 0; id < 4; ++id) {
      const double expected = p[id], sd = std::sqrt(expected * (1 - expected) / draws);
      const double observed = counts.count(id) ? counts.at(id) / static_cast<double>(draws) : 0;
      EXPECT_NEAR(observed, expected, 5 * sd) << "id " << id << " temperature " << temperature;
    }
  }
}

TEST(DecoderSampling, TopKDrawsOnlyTheKLargest) {
  const std::vector<float> logits = {0.0f, 0.3f, 0.2f, 0.1f, 0.25f};
  const auto counts = histogram(logits, {.top_k = 2, .seed = 1}, 4000);
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_GT(counts.count(1) ? counts.at(1) : 0, 1500);
  EXPECT_GT(counts.count(4) ? counts.at(4) : 0, 1500);
}

TEST(DecoderSampling, TopPExcludesTheTail) {
  // Probabilities 0.5, 0.3, 0.15, 0.05 (log-probabilities as logits).
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f),
                                     std::log(0.05f)};
  // 0.5 falls short of 0.75 and 0.5 + 0.3 reaches it: ids 2 and 3 never come, and 0 and 1 keep
  // their 5:3 ratio.
  const auto counts = histogram(logits, {.top_p = 0.75f, .seed = 9}, 16000);
  EXPECT_EQ(counts.count(2) + counts.count(3), 0u);
  EXPECT_NEAR(counts.at(0) / 16000.0, 0.625, 0.02);
  // Above 0.8 the third token joins; the fourth stays out.
  const auto wider = histogram(logits, {.top_p = 0.85f, .seed = 9}, 16000);
  EXPECT_GT(wider.count(2) ? wider.at(2) : 0, 1000);
  EXPECT_EQ(wider.count(3), 0u);
  // A nucleus smaller than the top token keeps just that token.
  EXPECT_EQ(histogram(logits, {.top_p = 0.1f, .seed = 9}, 200).size(), 1u);
}

TEST(DecoderSampling, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  Sampler penalised({.temperature = 0, .repetition_penalty = 2.0f});
  Sampler plain({.temperature = 0});
  const std::vector<float> positive = {2.0f, 1.5f, -3.0f};
  const std::vector<int32_t> history = {0, 0, 2};
  EXPECT_EQ(plain.sample(positive, history), 0);
  EXPECT_EQ(penalised.sample(positive, history), 1);  // 2.0 / 2 = 1.0 < 1.5
  const std::vector<float> negative = {-1.0f, -1.5f};
  EXPECT_EQ(plain.sample(negative, std::vector<int32_t>{0}), 0);
  EXPECT_EQ(penalised.sample(negative, std::vector<int32_t>{0}), 1);  // -1 * 2 = -2 < -1.5
  EXPECT_EQ(penalised.sample(positive, {}), 0) << "no history, no penalty";
  EXPECT_THROW(penalised.sample(positive, std::vector<int32_t>{3}), Error);
}

TEST(DecoderSampling, ASeedReproducesItsSequence) {
  const std::vector<float> logits = random_logits(50, 77);
  auto draw = [&](uint64_t seed) {
    Sampler sampler({.temperature = 1.0f, .top_k = 20, .top_p = 0.95f, .seed = seed});
    std::vector<int32_t> ids;
    for (int i = 0; i < 64; ++i) ids.push_back(sampler.sample(logits, {}));
    return ids;
  };
  EXPECT_EQ(draw(42), draw(42));
  EXPECT_NE(draw(42), draw(43));
}

TEST(DecoderSampling, RejectsBadOptions) {
  EXPECT_THROW(Sampler({.temperature = -1}), Error);
  EXPECT_THROW(Sampler({.temperature = NAN}), Error);
  EXPECT_THROW(Sampler({.top_k = -1}), Error);
  EXPECT_THROW(Sampler({.top_p = 0}), Error);
  EXPECT_THROW(Sampler({.top_p = 1.5f}), Error);
  EXPECT_THROW(Sampler({.repetition_penalty = 0}), Error);
  Sampler ok({});
  EXPECT_THROW(ok.sample(std::vector<float>{}, {}), Error);
  EXPECT_THROW(ok.sample(std::vector<float>{1.0f, NAN}, {}), Error);
  EXPECT_THROW(ok.sample(std::vector<float>{-INFINITY, -INFINITY}, {}), Error);
}

// Greedy continuation by full forwards without a cache: the reference for generate().
std::vector<int32_t> greedy_without_cache(const Decoder& model, std::vector<int32_t> ids,
                                          int64_t steps) {
  NoGradScope no_grad;
  const int64_t v = model.config().vocab_size;
  std::vector<int32_t> out;
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t t = static_cast<int64_t>(ids.size());
    const std::vector<float> logits =
        model.forward(Tensor::from_data<int32_t>(ids, {1, t})).to_vector();
    const auto last = logits.begin() + (t - 1) * v;
    const auto id = static_cast<int32_t>(std::max_element(last, last + v) - last);
    out.push_back(id);
    ids.push_back(id);
  }
  return out;
}

TEST(DecoderGenerate, GreedyMatchesFullForwardsAndStreamsEachToken) {
  const DecoderConfig config = small_config(true);
  const Decoder model = initialised(config, 31);
  const std::vector<int32_t> prompt = {3, 17, 5, 40, 2};
  std::vector<int32_t> streamed;
  const std::vector<int32_t> out = generate(
      model, prompt, {.max_new_tokens = 12, .sampling = {.temperature = 0}}, [&](int32_t id) {
        streamed.push_back(id);
        return true;
      });
  EXPECT_EQ(out, greedy_without_cache(model, prompt, 12));
  EXPECT_EQ(streamed, out);
}

TEST(DecoderGenerate, StopsOnAStopIdOrWhenTheCallbackSaysSo) {
  const DecoderConfig config = small_config(true);
  const Decoder model = initialised(config, 31);
  const std::vector<int32_t> prompt = {3, 17, 5, 40, 2};
  const std::vector<int32_t> full = greedy_without_cache(model, prompt, 12);
  const int32_t stop = full[4];
  const auto first_stop = std::find(full.begin(), full.end(), stop) - full.begin();
  const std::vector<int32_t> stopped = generate(
      model, prompt, {.max_new_tokens = 12, .stop_ids = {stop}, .sampling = {.temperature = 0}});
  EXPECT_EQ(stopped, std::vector<int32_t>(full.begin(), full.begin() + first_stop + 1));
  int calls = 0;
  const std::vector<int32_t> early =
      generate(model, prompt, {.max_new_tokens = 12, .sampling = {.temperature = 0}},
               [&](int32_t) { return ++calls < 3; });
  EXPECT_EQ(early, std::vector<int32_t>(full.begin(), full.begin() + 3));
}

TEST(DecoderGenerate, SeededSamplingReproducesAndACacheCarriesTheConversation) {
  const DecoderConfig config = small_config(false);
  const Decoder model = initialised(config, 8);
  const std::vector<int32_t> prompt = {1, 2, 3};
  const GenerateOptions options = {.max_new_tokens = 10,
                                   .sampling = {.temperature = 0.9f, .top_p = 0.9f, .seed = 5}};
  EXPECT_EQ(generate(model, prompt, options), generate(model, prompt, options));

  // With a caller's cache, the second turn continues where the first (and its reply) ended.
  KvCache cache(config, 1, 40);
  const GenerateOptions greedy = {.max_new_tokens = 4, .sampling = {.temperature = 0}};
  const std::vector<int32_t> reply = generate(model, prompt, greedy, {}, &cache);
  EXPECT_EQ(cache.length(), 3 + 4);
  const std::vector<int32_t> next_prompt = {7, 8};
  const std::vector<int32_t> second = generate(model, next_prompt, greedy, {}, &cache);
  std::vector<int32_t> whole = prompt;
  whole.insert(whole.end(), reply.begin(), reply.end());
  whole.insert(whole.end(), next_prompt.begin(), next_prompt.end());
  EXPECT_EQ(second, greedy_without_cache(model, whole, 4));
}

// Generation with the model and its KV cache on cuda:0 picks the CPU's greedy tokens, and a
// caller's GPU cache carries a conversation as on the CPU. Skips visibly without a GPU.
TEST(CudaGenerate, GreedyOnTheGpuMatchesTheCpu) {
  if (!cuda_compiled()) GTEST_SKIP() << "built without CUDA: generation on a GPU not checked";
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: generation on a GPU not checked";
  const DecoderConfig config = small_config(true);
  const Decoder cpu = initialised(config, 31);
  Decoder gpu = initialised(config, 31);
  gpu.to(Device::cuda(0));
  const std::vector<int32_t> prompt = {3, 17, 5, 40, 2};
  const GenerateOptions greedy = {.max_new_tokens = 12, .sampling = {.temperature = 0}};
  EXPECT_EQ(generate(gpu, prompt, greedy), generate(cpu, prompt, greedy));

  KvCache cpu_cache(config, 1, 40), gpu_cache(config, 1, 40, Device::cuda(0));
  EXPECT_TRUE(gpu_cache.device().is_cuda());
  for (const std::vector<int32_t>& turn : {prompt, std::vector<int32_t>{7, 8}}) {
    EXPECT_EQ(generate(gpu, turn, greedy, {}, &gpu_cache),
              generate(cpu, turn, greedy, {}, &cpu_cache));
    EXPECT_EQ(gpu_cache.length(), cpu_cache.length());
  }
  // A CPU cache does not serve a GPU model: the error names both devices.
  KvCache wrong(config, 1, 40);
  try {
    generate(gpu, prompt, greedy, {}, &wrong);
    FAIL() << "a CPU cache was accepted for a GPU model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda:0"), std::string::npos) << e.what();
  }
}

TEST(DecoderGenerate, RejectsWhatDoesNotFit) {
  const DecoderConfig config = small_config(true);  // 64 positions
  const Decoder model = initialised(config, 8);
  const std::vector<int32_t> prompt(60, 1);
  auto message = [&](const std::function<void()>& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] {
              generate(model, prompt, {.max_new_tokens = 5});
            }).find("max_position_embeddings"),
            std::string::npos);
  KvCache small(config, 1, 10);
  EXPECT_NE(message([&] {
              generate(model, std::vector<int32_t>{1, 2}, {.max_new_tokens = 9}, {}, &small);
            }).find("capacity"),
            std::string::npos);
  EXPECT_NE(message([&] { generate(model, std::vector<int32_t>{}, {}); }).find("empty"),
            std::string::npos);
  EXPECT_NE(message([&] { generate(model, std::vector<int32_t>{53}, {}); }).find("53"),
            std::string::npos);
}

}  // namespace
}  // namespace nuri
