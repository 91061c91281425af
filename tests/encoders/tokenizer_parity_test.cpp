// Parity with Hugging Face tokenizers: tests/data/tokenizer/expected.json holds the ids and
// decodings that the Hugging Face library (npm `tokenizers`) produced for each test string with
// each tokenizer.json in that folder (tests/reference/make_tokenizer_fixtures.sh makes them).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "encoders/tokenizer.h"

namespace nuri {
namespace {

const std::string kData = std::string(NURI_SOURCE_DIR) + "/tests/data/tokenizer/";

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot open " << path;
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str());
}

class TokenizerParity : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerParity, IdsAndDecodingsEqualHuggingFace) {
  const std::string name = GetParam();
  const Tokenizer tokenizer = Tokenizer::load(kData + name);
  const nlohmann::json expected = read_json(kData + "expected.json");
  const auto& cases = expected.at("cases");
  ASSERT_GE(cases.size(), 20u);
  for (const auto& c : cases) {
    const std::string text = c.at("text").get<std::string>();
    const auto ids = c.at("ids").at(name).get<std::vector<int32_t>>();
    EXPECT_EQ(tokenizer.encode(text), ids) << name << " text: " << text;
    EXPECT_EQ(tokenizer.decode(ids), c.at("decoded").at(name).get<std::string>()) << text;
    EXPECT_EQ(tokenizer.decode(ids, true), c.at("decoded_skip_special").at(name).get<std::string>())
        << text;
  }
}

INSTANTIATE_TEST_SUITE_P(Files, TokenizerParity,
                         ::testing::Values("tokenizer.json", "tokenizer_merge_strings.json",
                                           "tokenizer_added.json", "tokenizer_hf_saved.json"),
                         [](const auto& info) {
                           std::string name = info.param.substr(0, info.param.find('.'));
                           return name;
                         });

// Saving writes what the library loads: the saved file has the fixture's vocabulary, merges
// and added tokens, in the same merges format.
TEST(TokenizerParityFiles, SavedJsonMatchesTheFixture) {
  for (const std::string name : {"tokenizer.json", "tokenizer_merge_strings.json"}) {
    const nlohmann::json original = read_json(kData + name);
    const nlohmann::json saved = nlohmann::json::parse(Tokenizer::load(kData + name).to_json());
    EXPECT_EQ(saved.at("model").at("vocab"), original.at("model").at("vocab")) << name;
    EXPECT_EQ(saved.at("model").at("merges"), original.at("model").at("merges")) << name;
    EXPECT_EQ(saved.at("added_tokens"), original.at("added_tokens")) << name;
    EXPECT_EQ(saved.at("pre_tokenizer"), original.at("pre_tokenizer")) << name;
  }
}

}  // namespace
}  // namespace nuri
