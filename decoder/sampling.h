// Turning logits into the next token: greedy, temperature, top-k, top-p and repetition penalty,
// reproducible from a seed.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "decoder/model.h"
#include "kernels/ops/random.h"

namespace nuri {

struct SamplingOptions {
  float temperature = 1.0f;         // 0 means greedy
  int64_t top_k = 0;                // 0 means no limit
  float top_p = 1.0f;               // nucleus mass; 1 means no limit
  float repetition_penalty = 1.0f;  // CTRL-style, on tokens already in the history; 1 means off
  uint64_t seed = 0;
};

// Draws token ids from logits, one call per step, with its own counter-based stream.
class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options);
  // The next id from one row of logits [V], given the ids so far (for the repetition penalty).
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);

 private:
  SamplingOptions options_;
  Generator generator_;
};

// Generation settings beyond sampling.
struct GenerateOptions {
  int64_t max_new_tokens = 128;
  std::vector<int32_t> stop_ids = {};  // generation ends after emitting one of these
  SamplingOptions sampling = {};
};

// Prefills `prompt` and samples up to max_new_tokens ids (batch 1), calling on_token for each as
// soon as it is drawn (return false to stop early). Returns the generated ids. Without a cache it
// uses one of its own, sized to the prompt and max_new_tokens; with one, the prompt continues
// the cached tokens and, on return, the cache also holds every generated id (the next turn goes
// on from there). Throws when the cached tokens + prompt + max_new_tokens exceed
// max_position_embeddings or the cache's capacity.
std::vector<int32_t> generate(const Decoder& decoder, std::span<const int32_t> prompt,
                              const GenerateOptions& options,
                              const std::function<bool(int32_t)>& on_token = {},
                              KvCache* cache = nullptr);

}  // namespace nuri
