// Parity with an independent PyTorch implementation of the Hugging Face Llama forward
// (tests/reference/decoder_reference.py): the logits and loss of two small random models, one
// with its own output head and F32 weights, one tied with BF16 weights and an explicit head_dim.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "decoder/model.h"
#include "decoder_test_util.h"
#include "kernels/autograd.h"
#include "kernels/safetensors.h"

namespace nuri {
namespace {

using test::relative_max_diff;

std::string golden_dir(const std::string& name) {
  return std::string(NURI_SOURCE_DIR) + "/tests/data/decoder/" + name + "/";
}

DecoderConfig read_config(const std::string& path) {
  std::ifstream in(path);
  NURI_CHECK(in.good(), "cannot read ", path);
  return DecoderConfig::from_json(nlohmann::json::parse(in));
}

// Rows [begin, end) along T of logits [1, T, V].
Tensor time_rows(const Tensor& logits, int64_t begin, int64_t end) {
  const int64_t v = logits.size(2);
  return logits.view({logits.size(1), v}).outer_slice(begin, end).clone().view({1, end - begin, v});
}

class DecoderParity : public testing::TestWithParam<std::string> {};

// Metric: max |nuri - reference| / max |reference| over every logit, at most 1e-4.
TEST_P(DecoderParity, LogitsAndLossMatchPyTorch) {
  const std::string dir = golden_dir(GetParam());
  const DecoderConfig config = read_config(dir + "config.json");
  Decoder model(config);
  model.load(dir + "model.safetensors");
  const SafetensorsFile golden = SafetensorsFile::open(dir + "golden.safetensors");
  const Tensor ids = golden.tensor("ids"), targets = golden.tensor("targets");
  const Tensor expected = golden.tensor("logits");
  NoGradScope no_grad;
  const Tensor logits = model.forward(ids);
  ASSERT_EQ(logits.shape(), expected.shape());
  EXPECT_LT(relative_max_diff(logits, expected), 1e-4);
  const float loss = model.loss(ids, targets).item(), expected_loss = golden.tensor("loss").item();
  EXPECT_NEAR(loss, expected_loss, 1e-5 * expected_loss);

  // The cached path reaches the same logits: a prefill of half, then one token at a time.
  const int64_t b = ids.size(0), t = ids.size(1);
  for (int64_t row = 0; row < b; ++row) {
    const Tensor seq = ids.outer_slice(row, row + 1);
    const Tensor reference = expected.outer_slice(row, row + 1);
    KvCache cache(config, 1, t);
    const int64_t half = t / 2;
    const std::vector<int32_t> all(seq.data<int32_t>(), seq.data<int32_t>() + t);
    const Tensor prefill = model.forward(
        Tensor::from_data<int32_t>(std::span(all).subspan(0, half), {1, half}), &cache);
    EXPECT_LT(relative_max_diff(prefill, time_rows(reference, 0, half)), 1e-4);
    for (int64_t i = half; i < t; ++i) {
      const Tensor step =
          model.forward(Tensor::from_data<int32_t>(std::span(all).subspan(i, 1), {1, 1}), &cache);
      EXPECT_LT(relative_max_diff(step, time_rows(reference, i, i + 1)), 1e-4)
          << "row " << row << " position " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, DecoderParity, testing::Values("untied", "tied"));

}  // namespace
}  // namespace nuri
