#include "decoder/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <unordered_set>

#include "kernels/autograd.h"
#include "kernels/philox.h"

namespace nuri {
namespace {

// The first index of the largest value (ties go to the lowest id).
int32_t argmax(const std::vector<float>& values) {
  return static_cast<int32_t>(std::max_element(values.begin(), values.end()) - values.begin());
}

}  // namespace

Sampler::Sampler(const SamplingOptions& options) : options_(options), generator_{options.seed, 0} {
  NURI_CHECK(std::isfinite(options.temperature) && options.temperature >= 0,
             "sampling: temperature must be finite and >= 0, got ", options.temperature);
  NURI_CHECK(options.top_k >= 0, "sampling: top_k must be >= 0, got ", options.top_k);
  NURI_CHECK(options.top_p > 0 && options.top_p <= 1, "sampling: top_p must be in (0, 1], got ",
             options.top_p);
  NURI_CHECK(std::isfinite(options.repetition_penalty) && options.repetition_penalty > 0,
             "sampling: repetition_penalty must be finite and > 0, got ",
             options.repetition_penalty);
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  const int64_t vocab = static_cast<int64_t>(logits.size());
  NURI_CHECK(vocab > 0, "sampling: empty logits");
  std::vector<float> scores(logits.begin(), logits.end());
  for (size_t i = 0; i < scores.size(); ++i) {
    NURI_CHECK(!std::isnan(scores[i]), "sampling: logit ", i, " is NaN");
  }
  if (options_.repetition_penalty != 1.0f) {
    // CTRL (Keskar et al.): a seen token's positive logit is divided, a negative one multiplied.
    const float penalty = options_.repetition_penalty;
    for (int32_t id : std::unordered_set<int32_t>(history.begin(), history.end())) {
      NURI_CHECK(id >= 0 && id < vocab, "sampling: history id ", id,
                 " is outside the vocabulary of ", vocab);
      float& s = scores[id];
      s = s > 0 ? s / penalty : s * penalty;
    }
  }
  if (options_.temperature == 0) return argmax(scores);

  // Candidates by descending score (ties by id), cut to the top k.
  std::vector<int32_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  const auto before = [&](int32_t a, int32_t b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  };
  const int64_t keep = options_.top_k > 0 ? std::min(options_.top_k, vocab) : vocab;
  std::partial_sort(order.begin(), order.begin() + keep, order.end(), before);
  order.resize(keep);

  // Softmax of score / temperature over the candidates, in double.
  std::vector<double> probs(order.size());
  const double top = scores[order[0]], inv_t = 1.0 / options_.temperature;
  NURI_CHECK(std::isfinite(top), "sampling: the largest logit is ", top, "; nothing to draw");
  double total = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    probs[i] = std::exp((scores[order[i]] - top) * inv_t);
    total += probs[i];
  }
  // Nucleus: the shortest prefix whose mass reaches top_p (at least one token).
  size_t count = probs.size();
  if (options_.top_p < 1) {
    double mass = 0;
    for (size_t i = 0; i < probs.size(); ++i) {
      mass += probs[i] / total;
      if (mass >= options_.top_p) {
        count = i + 1;
        break;
      }
    }
  }
  const double kept = std::accumulate(probs.begin(), probs.begin() + count, 0.0);
  const uint64_t block = generator_.take(1);
  const double u = philox::to_unit(philox::generate(block, generator_.seed).v[0]) * kept;
  double cumulative = 0;
  for (size_t i = 0; i < count; ++i) {
    cumulative += probs[i];
    if (u < cumulative) return order[i];
  }
  return order[count - 1];  // u within rounding of the total
}

std::vector<int32_t> generate(const Decoder& decoder, std::span<const int32_t> prompt,
                              const GenerateOptions& options,
                              const std::function<bool(int32_t)>& on_token, KvCache* cache) {
  const DecoderConfig& config = decoder.config();
  const auto prompt_len = static_cast<int64_t>(prompt.size());
  NURI_CHECK(prompt_len > 0, "generate: the prompt is empty");
  NURI_CHECK(options.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0, got ",
             options.max_new_tokens);
  for (size_t i = 0; i < prompt.size(); ++i) {
    NURI_CHECK(prompt[i] >= 0 && prompt[i] < config.vocab_size, "generate: prompt id ", prompt[i],
               " at position ", i, " is outside the vocabulary of ", config.vocab_size);
  }
  const int64_t start = cache ? cache->length() : 0;
  const int64_t needed = start + prompt_len + options.max_new_tokens;
  NURI_CHECK(needed <= config.max_position_embeddings, "generate: ", start, " cached + ",
             prompt_len, " prompt + ", options.max_new_tokens, " new tokens = ", needed,
             " exceed max_position_embeddings ", config.max_position_embeddings);
  const bool caller_cache = cache != nullptr;
  std::optional<KvCache> own_cache;
  if (!cache) cache = &own_cache.emplace(config, 1, needed, decoder.device());
  NURI_CHECK(cache->batch() == 1, "generate: the KV cache holds ", cache->batch(),
             " sequences; generation runs one");
  NURI_CHECK(needed <= cache->capacity(), "generate: ", start, " cached + ", prompt_len,
             " prompt + ", options.max_new_tokens, " new tokens = ", needed,
             " exceed the KV cache capacity ", cache->capacity());

  NoGradScope no_grad;
  Sampler sampler(options.sampling);
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  std::vector<int32_t> generated;
  // Runs `ids` through the model into the cache and returns the last one's hidden state [1, D].
  const auto step = [&](std::span<const int32_t> ids) {
    const auto t = static_cast<int64_t>(ids.size());
    const Tensor hidden =
        decoder.forward_hidden(decoder.embed(Tensor::from_data<int32_t>(ids, {1, t})),
                               position_ids(cache->length(), t), cache);
    return hidden.view({t, config.hidden_size}).outer_slice(t - 1, t);
  };
  Tensor logits = decoder.logits(step(prompt));
  while (static_cast<int64_t>(generated.size()) < options.max_new_tokens) {
    const Tensor scores = logits.on(Device::cpu());  // the host's (no copy for a CPU model)
    const int32_t id =
        sampler.sample({scores.data<float>(), static_cast<size_t>(scores.numel())}, history);
    generated.push_back(id);
    history.push_back(id);
    const bool stop =
        std::find(options.stop_ids.begin(), options.stop_ids.end(), id) != options.stop_ids.end();
    if ((on_token && !on_token(id)) || stop) break;
    if (static_cast<int64_t>(generated.size()) < options.max_new_tokens) {
      logits = decoder.logits(step(std::span<const int32_t>(&id, 1)));
    }
  }
  if (caller_cache && !generated.empty()) step(std::span<const int32_t>(&generated.back(), 1));
  return generated;
}

}  // namespace nuri
