// The BPE trainer: vocabulary size and special token ids, min_frequency, the same result at any
// thread count, whole-syllable Hangul pieces, and errors that name the faulty input.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "encoders/tokenizer.h"
#include "kernels/error.h"

namespace nuri {
namespace {

namespace fs = std::filesystem;

const std::string kData = std::string(NURI_SOURCE_DIR) + "/tests/data/tokenizer/";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot open " << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A scratch directory removed with its files when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string name = (fs::temp_directory_path() / "nuri_bpe_XXXXXX").string();
    NURI_CHECK(::mkdtemp(name.data()) != nullptr, "mkdtemp failed for ", name);
    path_ = name;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string path = (path_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

 private:
  fs::path path_;
};

// About `bytes` of text built from the sample's lines with numbered variations, so that it
// spans several 1 MiB chunks of the trainer.
std::string corpus(size_t bytes) {
  const std::string sample = read_text(kData + "sample.txt");
  std::vector<std::string> lines;
  std::stringstream in(sample);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string out;
  for (size_t i = 0; out.size() < bytes; ++i) {
    out += lines[i % lines.size()];
    out += ' ';
    out += std::to_string(i * 7919 % 100003);
    out += (i % 5 == 0) ? "\n\n" : "\n";
  }
  return out;
}

// Korean prose made of syllables from a fixed set, in words of two to five syllables.
std::string korean_corpus(size_t bytes) {
  const std::u32string syllables =
      U"가나다라마바사아자차카타파하는은이가을를에서의로와과도고며한국어학생선생님공부책읽";
  std::string out;
  uint32_t state = 12345;
  while (out.size() < bytes) {
    state = state * 1103515245u + 12345u;
    const int length = 2 + static_cast<int>((state >> 16) % 4);
    for (int k = 0; k < length; ++k) {
      state = state * 1103515245u + 12345u;
      const char32_t c = syllables[(state >> 16) % syllables.size()];
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
    state = state * 1103515245u + 12345u;
    out += ((state >> 16) % 9 == 0) ? ".\n" : " ";
  }
  return out;
}

// Bytes of a UTF-8 sequence that starts with `lead`: 1 to 4, or 0 for a continuation byte.
int sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 0;
}

// Whether `bytes` is a run of complete UTF-8 characters, or the first bytes of one character.
bool whole_characters_or_one_prefix(const std::string& bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    const int length = sequence_length(static_cast<uint8_t>(bytes[i]));
    if (length == 0) return false;
    size_t k = 1;
    while (k < static_cast<size_t>(length) && i + k < bytes.size() &&
           (static_cast<uint8_t>(bytes[i + k]) & 0xC0) == 0x80) {
      ++k;
    }
    if (k < static_cast<size_t>(length)) return i == 0 && i + k == bytes.size();
    i += static_cast<size_t>(length);
  }
  return true;
}

TEST(BpeTrainer, FillsTheVocabularyAndPlacesSpecialsAfterIt) {
  TempDir dir;
  TokenizerTrainOptions options;
  options.inputs = {dir.write("a.txt", corpus(200000)), dir.write("b.txt", korean_corpus(100000))};
  options.vocab_size = 1500;
  const Tokenizer tok = train_tokenizer(options);
  ASSERT_EQ(tok.vocab_size(), 1500);
  const auto specials = default_special_tokens();
  const int32_t first = 1500 - static_cast<int32_t>(specials.size());
  for (size_t i = 0; i < specials.size(); ++i) {
    EXPECT_EQ(tok.token_to_id(specials[i]), first + static_cast<int32_t>(i)) << specials[i];
    EXPECT_TRUE(tok.is_special(first + static_cast<int32_t>(i)));
  }
  for (int32_t id = 0; id < first; ++id) EXPECT_FALSE(tok.is_special(id));
  // Every byte has a token, so any text round-trips.
  const std::string text = "처음 보는 글자: 龘 ﷺ 𝄞 \x01\x7f";
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
  // The learned merges compress the training text.
  const std::string sample = read_text(kData + "sample.txt");
  EXPECT_LT(tok.encode(sample).size() * 3, sample.size());
}

TEST(BpeTrainer, RespectsMinFrequency) {
  TempDir dir;
  TokenizerTrainOptions options;
  options.inputs = {dir.write("a.txt", "ab ab ab cd cd\n")};
  options.vocab_size = 1000;
  options.min_frequency = 3;
  const Tokenizer tok = train_tokenizer(options);
  // "ab" (3 times) and " ab" parts merge; "cd" (twice) does not.
  EXPECT_TRUE(tok.token_to_id("ab").has_value());
  EXPECT_FALSE(tok.token_to_id("cd").has_value());
  options.min_frequency = 4;
  const Tokenizer none = train_tokenizer(options);
  EXPECT_EQ(none.vocab_size(), 256 + static_cast<int32_t>(default_special_tokens().size()));
}

TEST(BpeTrainer, SameResultAtOneAndTwoThreads) {
  TempDir dir;
  TokenizerTrainOptions options;
  options.inputs = {dir.write("a.txt", corpus(2600000)), dir.write("b.txt", korean_corpus(300000))};
  options.vocab_size = 2000;
  options.threads = 1;
  const std::string one = train_tokenizer(options).to_json();
  options.threads = 2;
  const std::string two = train_tokenizer(options).to_json();
  EXPECT_EQ(one, two);
  options.threads = 2;
  EXPECT_EQ(train_tokenizer(options).to_json(), two);
}

TEST(BpeTrainer, HangulPiecesAreWholeSyllablesOrOneSyllablePrefix) {
  TempDir dir;
  TokenizerTrainOptions options;
  options.inputs = {dir.write("ko.txt", korean_corpus(400000) + read_text(kData + "sample.txt"))};
  options.vocab_size = 3000;
  options.min_frequency = 1;
  const Tokenizer tok = train_tokenizer(options);
  int32_t checked = 0;
  int32_t multi_syllable = 0;
  for (int32_t id = 256; id < tok.vocab_size(); ++id) {
    if (tok.is_special(id)) continue;
    const std::string bytes = tok.decode(std::vector<int32_t>{id});
    EXPECT_TRUE(whole_characters_or_one_prefix(bytes)) << "token " << id;
    ++checked;
    if (bytes.size() >= 6 && static_cast<uint8_t>(bytes[0]) == 0xEA) ++multi_syllable;
  }
  EXPECT_GT(checked, 2500);
  EXPECT_GT(multi_syllable, 100);  // syllables do join into words
}

TEST(BpeTrainer, ErrorsNameTheInput) {
  TempDir dir;
  TokenizerTrainOptions options;
  options.inputs = {dir.write("ok.txt", "hello\n"), "/nonexistent/corpus.txt"};
  try {
    train_tokenizer(options);
    ADD_FAILURE() << "no error for a missing input";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/corpus.txt"), std::string::npos) << e.what();
  }
  options.inputs = {dir.write("bad.txt", "hello\nwor\xffld\n")};
  try {
    train_tokenizer(options);
    ADD_FAILURE() << "no error for invalid UTF-8";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.txt"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("byte 9"), std::string::npos) << e.what();
  }
  options.inputs = {dir.write("ok.txt", "hello\n")};
  options.vocab_size = 100;
  EXPECT_THROW(train_tokenizer(options), Error);
  options.vocab_size = 1000;
  options.special_tokens = {"<a>", "<a>"};
  EXPECT_THROW(train_tokenizer(options), Error);
  options.inputs.clear();
  EXPECT_THROW(train_tokenizer(options), Error);
}

}  // namespace
}  // namespace nuri
