// Multimodal RoPE in the decoder: the config's rope_scaling.mrope_section, and the forward pass
// with [3, T] positions.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "kernels/error.h"
#include "kernels/ops/shape.h"
#include "tests/decoder/decoder_test_util.h"

namespace nuri::test {
namespace {

DecoderConfig mrope_config() {
  DecoderConfig c = small_config(true);
  c.mrope_section = {2, 1, 1};  // head_dim 8: 4 frequencies
  return c;
}

// Positions [3, T] from three streams.
Tensor streams(const std::vector<int32_t>& t, const std::vector<int32_t>& h,
               const std::vector<int32_t>& w) {
  std::vector<int32_t> all = t;
  all.insert(all.end(), h.begin(), h.end());
  all.insert(all.end(), w.begin(), w.end());
  return Tensor::from_data<int32_t>(all, {3, static_cast<int64_t>(t.size())});
}

std::string error_of(const nlohmann::json& json) {
  try {
    DecoderConfig::from_json(json);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(DecoderMrope, ConfigRoundTripsThroughRopeScaling) {
  const DecoderConfig c = mrope_config();
  const nlohmann::json json = c.to_json();
  EXPECT_EQ(json["rope_scaling"]["type"], "mrope");
  EXPECT_EQ(json["rope_scaling"]["mrope_section"], nlohmann::json({2, 1, 1}));
  EXPECT_EQ(DecoderConfig::from_json(json).mrope_section, c.mrope_section);
  EXPECT_FALSE(small_config(true).to_json().contains("rope_scaling"));
}

TEST(DecoderMrope, ConfigErrorsNameTheFault) {
  nlohmann::json json = mrope_config().to_json();
  json["rope_scaling"]["mrope_section"] = {2, 2, 2};
  EXPECT_NE(error_of(json).find("sum to head_dim / 2 = 4"), std::string::npos) << error_of(json);
  json["rope_scaling"]["mrope_section"] = {2, "1", 1};
  EXPECT_NE(error_of(json).find("expected three integers"), std::string::npos);
  json["rope_scaling"] = {{"type", "yarn"}};
  EXPECT_NE(error_of(json).find("only \"default\" and \"mrope\""), std::string::npos);
  json["rope_scaling"] = {{"type", "mrope"}};
  EXPECT_NE(error_of(json).find("needs a non-zero mrope_section"), std::string::npos);
  json["rope_scaling"] = {{"type", "default"}, {"scale", 2}};
  EXPECT_NE(error_of(json).find("unknown key 'scale'"), std::string::npos);
}

TEST(DecoderMrope, EqualStreamsMatchPlainRopeAndSectionsMatter) {
  const Decoder plain = initialised(small_config(true), 7);
  const Decoder multi = initialised(mrope_config(), 7);
  const Tensor ids = token_ids(1, 6, 53, 3);
  const std::vector<int32_t> p = {0, 1, 2, 3, 4, 5};
  const Tensor same = multi.forward_hidden(multi.embed(ids), streams(p, p, p));
  EXPECT_LT(relative_max_diff(same, plain.forward_hidden(plain.embed(ids), position_ids(0, 6))),
            1e-6);
  EXPECT_LT(relative_max_diff(multi.forward(ids), plain.forward(ids)), 1e-6);
  // An image-like span: one temporal id, a 2x2 grid of heights and widths.
  const Tensor grid = multi.forward_hidden(
      multi.embed(ids), streams({0, 1, 1, 1, 1, 3}, {0, 1, 1, 2, 2, 3}, {0, 1, 2, 1, 2, 3}));
  EXPECT_GT(relative_max_diff(grid, same), 1e-3);
  // Swapping the height and width streams changes the result: each section reads its own.
  const Tensor swapped = multi.forward_hidden(
      multi.embed(ids), streams({0, 1, 1, 1, 1, 3}, {0, 1, 2, 1, 2, 3}, {0, 1, 1, 2, 2, 3}));
  EXPECT_GT(relative_max_diff(swapped, grid), 1e-3);
}

TEST(DecoderMrope, RejectsOneDimensionalPositions) {
  const Decoder multi = initialised(mrope_config(), 7);
  const Tensor ids = token_ids(1, 4, 53, 3);
  try {
    multi.forward_hidden(multi.embed(ids), position_ids(0, 4));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("positions [3, T] or [3, B, T]"), std::string::npos);
  }
}

}  // namespace
}  // namespace nuri::test
