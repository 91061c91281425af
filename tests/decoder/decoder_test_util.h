// Helpers shared by the decoder tests: a small config, random ids and a temporary directory.
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "decoder/model.h"
#include "tests/common/compare.h"
#include "tests/common/temp_dir.h"

namespace nuri::test {

// A decoder small enough for finite differences and quick loops (GQA: 4 query, 2 kv heads).
inline DecoderConfig small_config(bool tied) {
  DecoderConfig c;
  c.vocab_size = 53;
  c.hidden_size = 32;
  c.intermediate_size = 72;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  c.initializer_range = 0.2f;
  c.tie_word_embeddings = tied;
  return c;
}

// A decoder of `config` initialised from `seed`.
inline Decoder initialised(const DecoderConfig& config, uint64_t seed) {
  Decoder model(config);
  Generator gen{seed, 0};
  model.init(gen);
  return model;
}

// Ids [b, t] (i32) from a fixed linear congruential sequence over [0, vocab).
inline Tensor token_ids(int64_t b, int64_t t, int64_t vocab, uint32_t seed) {
  std::vector<int32_t> ids(static_cast<size_t>(b * t));
  uint32_t state = seed;
  for (int32_t& id : ids) {
    state = state * 1664525u + 1013904223u;
    id = static_cast<int32_t>((state >> 8) % static_cast<uint32_t>(vocab));
  }
  return Tensor::from_data<int32_t>(ids, {b, t});
}

}  // namespace nuri::test
