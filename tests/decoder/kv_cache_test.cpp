// The cached forward: a prefill followed by single-token steps gives the logits of a full
// forward over the whole sequence.
#include <gtest/gtest.h>

#include "decoder/kv_cache.h"
#include "decoder/model.h"
#include "decoder_test_util.h"
#include "kernels/autograd.h"

namespace nuri {
namespace {

using test::initialised;
using test::relative_max_diff;
using test::small_config;
using test::token_ids;

// Columns [begin, end) of ids [B, T].
Tensor columns(const Tensor& ids, int64_t begin, int64_t end) {
  const int64_t b = ids.size(0), t = ids.size(1);
  const std::vector<float> all = ids.to_vector();
  std::vector<int32_t> out;
  for (int64_t r = 0; r < b; ++r) {
    for (int64_t c = begin; c < end; ++c) out.push_back(static_cast<int32_t>(all[r * t + c]));
  }
  return Tensor::from_data<int32_t>(out, {b, end - begin});
}

// Logits [B, T, V] of ids fed through a cache in chunks of the given sizes, joined along T.
Tensor chunked_logits(const Decoder& model, const Tensor& ids, const std::vector<int64_t>& chunks,
                      KvCache& cache) {
  const int64_t b = ids.size(0), v = model.config().vocab_size;
  std::vector<std::vector<float>> rows(static_cast<size_t>(b));
  int64_t at = 0;
  for (int64_t chunk : chunks) {
    const std::vector<float> logits =
        model.forward(columns(ids, at, at + chunk), &cache).to_vector();
    for (int64_t r = 0; r < b; ++r) {
      rows[r].insert(rows[r].end(), logits.begin() + r * chunk * v,
                     logits.begin() + (r + 1) * chunk * v);
    }
    at += chunk;
  }
  std::vector<float> joined;
  for (const auto& row : rows) joined.insert(joined.end(), row.begin(), row.end());
  return Tensor::from_vector(joined, {b, at, v});
}

TEST(DecoderKvCache, PrefillThenStepsEqualsFullForward) {
  for (int64_t batch : {1, 3}) {
    for (bool tied : {false, true}) {
      const DecoderConfig config = small_config(tied);
      const Decoder model = initialised(config, 21);
      const Tensor ids = token_ids(batch, 12, config.vocab_size, 4);
      NoGradScope no_grad;
      const Tensor full = model.forward(ids);
      KvCache cache(config, batch, 16);
      const Tensor stepped = chunked_logits(model, ids, {5, 1, 1, 1, 1, 1, 1, 1}, cache);
      EXPECT_EQ(cache.length(), 12);
      // Relative to the largest logit; the GEMMs' blocking differs between the two paths.
      EXPECT_LT(relative_max_diff(stepped, full), 2e-6) << "batch " << batch << " tied " << tied;
      KvCache chunked(config, batch, 12);
      EXPECT_LT(relative_max_diff(chunked_logits(model, ids, {3, 4, 5}, chunked), full), 2e-6);
    }
  }
}

TEST(DecoderKvCache, RecordsNothingOnTheTape) {
  const DecoderConfig config = small_config(true);
  const Decoder model = initialised(config, 2);
  KvCache cache(config, 1, 8);
  Tape tape;
  TapeScope scope(tape);
  const Tensor logits = model.forward(token_ids(1, 4, config.vocab_size, 1), &cache);
  EXPECT_EQ(tape.size(), 0u);
  EXPECT_FALSE(logits.requires_grad());
}

TEST(DecoderKvCache, TruncateRewindsToAnEarlierPrefix) {
  const DecoderConfig config = small_config(false);
  const Decoder model = initialised(config, 5);
  const Tensor ids = token_ids(1, 8, config.vocab_size, 9);
  const Tensor other = token_ids(1, 8, config.vocab_size, 10);
  NoGradScope no_grad;
  const Tensor full = model.forward(ids);
  KvCache cache(config, 1, 8);
  model.forward(columns(ids, 0, 5), &cache);
  model.forward(columns(other, 5, 8), &cache);  // a turn that is then taken back
  cache.truncate(5);
  EXPECT_EQ(cache.length(), 5);
  const Tensor tail = model.forward(columns(ids, 5, 8), &cache);
  const std::vector<float> expected = full.to_vector();
  const Tensor expected_tail = Tensor::from_vector(
      std::vector<float>(expected.begin() + 5 * config.vocab_size, expected.end()),
      {1, 3, config.vocab_size});
  EXPECT_LT(relative_max_diff(tail, expected_tail), 2e-6);
  cache.reset();
  EXPECT_EQ(cache.length(), 0);
  EXPECT_THROW(cache.truncate(1), Error);
}

TEST(DecoderKvCache, RejectsOverflowAndMismatchedShapes) {
  const DecoderConfig config = small_config(true);
  const Decoder model = initialised(config, 5);
  NoGradScope no_grad;
  KvCache cache(config, 1, 4);
  model.forward(token_ids(1, 3, config.vocab_size, 1), &cache);
  try {
    model.forward(token_ids(1, 2, config.vocab_size, 1), &cache);
    FAIL() << "overflow not detected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("KV cache"), std::string::npos) << e.what();
  }
  EXPECT_EQ(cache.length(), 3) << "a failed step leaves the cache as it was";
  EXPECT_THROW(model.forward(token_ids(2, 1, config.vocab_size, 1), &cache), Error);
  EXPECT_THROW(cache.append(0, Tensor::zeros({1, 1, 3, 8}), Tensor::zeros({1, 1, 3, 8})), Error);
  EXPECT_THROW(cache.append(2, Tensor::zeros({1, 1, 2, 8}), Tensor::zeros({1, 1, 2, 8})), Error);
  EXPECT_THROW(KvCache(config, 0, 4), Error);
  EXPECT_THROW(KvCache(config, 1, 0), Error);
}

}  // namespace
}  // namespace nuri
