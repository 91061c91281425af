// The tokenizer: round trips, special tokens, both merges formats, malformed tokenizer.json
// files, invalid UTF-8, atomic saves, concurrent encoding and the NFC quick check.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <utf8proc.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "encoders/tokenizer.h"
#include "encoders/tokenizer_model.h"
#include "kernels/error.h"

namespace nuri {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kData = std::string(NURI_SOURCE_DIR) + "/tests/data/tokenizer/";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot open " << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

const Tokenizer& fixture() {
  static const Tokenizer tokenizer = Tokenizer::load(kData + "tokenizer.json");
  return tokenizer;
}

// Strings in many scripts and shapes, already in NFC.
std::vector<std::string> nfc_samples() {
  return {
      "",
      "누리는 한국어를 먼저 생각하는 멀티모달 모델 엔진입니다.",
      "The quick brown fox didn't jump; it's 12345 or 3.14159 meters away.",
      "Emoji 😀👍🇰🇷 👩‍💻 and ZWJ families 👨‍👩‍👧‍👦",
      "int main() {\n\treturn a[i] * 2;  // 주석\n}\n",
      "def f(x):\r\n    return x ** 2\r\n\r\n",
      "     leading and trailing     ",
      "\n\n\n\t\t\v\f \u00a0\u3000\u2028",
      "Ελληνικά русский 日本語 中文 العربية हिन्दी",
      "café Straße ÅÉÎ ﬁ ① ㈜ ｶ",
      std::string("nul\0byte", 8),
      std::string(5000, 'a') + std::string(3000, ' ') + "가나다라마바사" + std::string(700, '9'),
  };
}

TEST(Tokenizer, DecodeInvertsEncode) {
  const Tokenizer& tok = fixture();
  for (const std::string& text : nfc_samples()) {
    const std::vector<int32_t> ids = tok.encode(text);
    EXPECT_EQ(tok.decode(ids), text) << text;
    for (int32_t id : ids) EXPECT_TRUE(id >= 0 && id < tok.vocab_size());
  }
}

TEST(Tokenizer, EncodeNormalizesToNfc) {
  const Tokenizer& tok = fixture();
  // Decomposed input decodes to the composed form, and encodes like it.
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"cafe\u0301", "caf\u00e9"},
      {"A\u030a and \u212b", "\u00c5 and \u00c5"},
      {"\u1112\u1161\u11ab\u1100\u1173\u11af", "\ud55c\uae00"},
      {"\u1100\u1161\u11a8 \uac00\u11a8", "\uac01 \uac01"},
  };
  for (const auto& [decomposed, composed] : pairs) {
    EXPECT_EQ(tok.encode(decomposed), tok.encode(composed)) << composed;
    EXPECT_EQ(tok.decode(tok.encode(decomposed)), composed);
  }
}

TEST(Tokenizer, SpecialTokensAreSplitOut) {
  const Tokenizer& tok = fixture();
  const auto eot = tok.token_to_id("<|endoftext|>");
  const auto user = tok.token_to_id("<|user|>");
  ASSERT_TRUE(eot && user);
  EXPECT_TRUE(tok.is_special(*eot));
  EXPECT_FALSE(tok.is_special(tok.encode("a")[0]));
  EXPECT_EQ(tok.encode("<|endoftext|>"), std::vector<int32_t>{*eot});

  std::vector<int32_t> expected = tok.encode("안녕 hello");
  expected.push_back(*eot);
  expected.push_back(*user);
  const std::vector<int32_t> tail = tok.encode(" world");
  expected.insert(expected.end(), tail.begin(), tail.end());
  const std::vector<int32_t> ids = tok.encode("안녕 hello<|endoftext|><|user|> world");
  EXPECT_EQ(ids, expected);
  EXPECT_EQ(tok.decode(ids), "안녕 hello<|endoftext|><|user|> world");
  EXPECT_EQ(tok.decode(ids, /*skip_special=*/true), "안녕 hello world");

  // Near misses are ordinary text.
  for (const std::string text : {"<|endoftext|", "<|endoftext |>", "<|ENDOFTEXT|>"}) {
    for (int32_t id : tok.encode(text)) EXPECT_FALSE(tok.is_special(id)) << text;
  }
  EXPECT_EQ(tok.id_to_token(*eot), "<|endoftext|>");
  EXPECT_EQ(tok.vocab_size(), *tok.token_to_id(default_special_tokens().back()) + 1);
}

TEST(Tokenizer, BothMergesFormatsEncodeAlike) {
  const Tokenizer pairs = Tokenizer::load(kData + "tokenizer.json");
  const Tokenizer strings = Tokenizer::load(kData + "tokenizer_merge_strings.json");
  ASSERT_TRUE(json::parse(read_text(kData + "tokenizer.json"))["model"]["merges"][0].is_array());
  ASSERT_TRUE(json::parse(read_text(kData + "tokenizer_merge_strings.json"))["model"]["merges"][0]
                  .is_string());
  for (const std::string& text : nfc_samples()) EXPECT_EQ(pairs.encode(text), strings.encode(text));
  // Each file saves in its own format.
  EXPECT_TRUE(json::parse(pairs.to_json())["model"]["merges"][0].is_array());
  EXPECT_TRUE(json::parse(strings.to_json())["model"]["merges"][0].is_string());
}

TEST(Tokenizer, InvalidUtf8NamesTheByteOffset) {
  const Tokenizer& tok = fixture();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"abc\xff", "byte 3"},
      {"한\xed\x95", "byte 3"},          // cut short
      {"ok \xc0\xaf", "byte 3"},         // overlong
      {"x\xed\xa0\x80", "byte 1"},       // surrogate
      {"<|endoftext|>\x80", "byte 13"},  // after a special token
  };
  for (const auto& [text, where] : cases) {
    try {
      tok.encode(text);
      ADD_FAILURE() << "no error for invalid UTF-8";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(where), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("invalid UTF-8"), std::string::npos) << e.what();
    }
  }
}

TEST(Tokenizer, DecodeRejectsUnknownIds) {
  const Tokenizer& tok = fixture();
  const std::vector<int32_t> ids = {1, tok.vocab_size()};
  try {
    tok.decode(ids);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(tok.vocab_size())), std::string::npos);
  }
  EXPECT_THROW(tok.decode(std::vector<int32_t>{-1}), Error);
  EXPECT_THROW(tok.id_to_token(-1), Error);
}

TEST(Tokenizer, SaveIsAtomicAndLoadsBack) {
  std::string dir = (fs::temp_directory_path() / "nuri_tokenizer_XXXXXX").string();
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/tokenizer.json";
  fixture().save(path);
  const Tokenizer loaded = Tokenizer::load(path);
  EXPECT_EQ(loaded.to_json(), fixture().to_json());
  for (const std::string& text : nfc_samples())
    EXPECT_EQ(loaded.encode(text), fixture().encode(text));
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    ++files;
    EXPECT_EQ(entry.path().filename(), "tokenizer.json");
  }
  EXPECT_EQ(files, 1u);
  // A directory that does not exist: an error naming the path, nothing written.
  EXPECT_THROW(fixture().save(dir + "/missing/tokenizer.json"), Error);
  fs::remove_all(dir);
  EXPECT_THROW(Tokenizer::load(dir + "/tokenizer.json"), Error);
}

TEST(Tokenizer, ConcurrentEncodeEqualsSerial) {
  const Tokenizer& tok = fixture();
  std::vector<std::string> texts = nfc_samples();
  const std::string sample = read_text(kData + "sample.txt");
  for (size_t i = 0; i + 200 < sample.size(); i += 97) {
    size_t begin = i;
    while (begin < sample.size() && (static_cast<uint8_t>(sample[begin]) & 0xC0) == 0x80) ++begin;
    size_t end = begin + 150;
    while (end < sample.size() && (static_cast<uint8_t>(sample[end]) & 0xC0) == 0x80) ++end;
    texts.push_back(sample.substr(begin, end - begin) + "<|im_end|>");
  }
  std::vector<std::vector<int32_t>> serial;
  for (const std::string& text : texts) serial.push_back(tok.encode(text));

  constexpr int kThreads = 6;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          const size_t k = (i * 7 + static_cast<size_t>(t + round)) % texts.size();
          if (tok.encode(texts[k]) != serial[k]) ++mismatches[t];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

// Two tokenizers used alternately on one thread keep their own cached results.
TEST(Tokenizer, CachesDoNotMixTokenizers) {
  const Tokenizer& a = fixture();
  TokenizerTrainOptions options;
  options.inputs = {kData + "sample.txt"};
  options.vocab_size = 300;
  const Tokenizer b = train_tokenizer(options);
  const std::string text = "누리는 한국어를 먼저 생각합니다";
  const auto ids_a = a.encode(text);
  const auto ids_b = b.encode(text);
  EXPECT_NE(ids_a, ids_b);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(a.encode(text), ids_a);
    EXPECT_EQ(b.encode(text), ids_b);
  }
}

// Every code point the quick check calls NFC-inert is one that NFC keeps in any company: it is
// its own NFC, has combining class 0, and is never the second part of a canonical composition.
TEST(Tokenizer, NfcQuickCheckIsSound) {
  const auto inert = [](int32_t c) {
    utf8proc_uint8_t bytes[4];
    const auto n = utf8proc_encode_char(c, bytes);
    bool needs_nfc = true;
    EXPECT_EQ(check_utf8(std::string_view(reinterpret_cast<char*>(bytes), n), needs_nfc),
              std::string_view::npos);
    return !needs_nfc;
  };
  size_t inert_count = 0;
  for (int32_t c = 0; c <= 0x10FFFF; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    utf8proc_uint8_t bytes[4];
    const auto n = utf8proc_encode_char(c, bytes);
    const std::string text(reinterpret_cast<char*>(bytes), n);
    if (inert(c)) {
      ++inert_count;
      ASSERT_EQ(utf8proc_get_property(c)->combining_class, 0) << std::hex << c;
      ASSERT_EQ(nfc(text), text) << std::hex << c;
    }
    // Canonical compositions: the second part must not be inert.
    utf8proc_int32_t parts[4];
    int last = 0;
    const auto count = utf8proc_decompose_char(c, parts, 4, UTF8PROC_DECOMPOSE, &last);
    if (count == 2 && nfc(text) == text) {
      ASSERT_FALSE(inert(parts[1])) << std::hex << c << " ends with " << parts[1];
    }
  }
  EXPECT_GT(inert_count, 30000u);
  // Hangul: leading+vowel and syllable+trailing jamo compose, so vowels and trailing jamo are
  // not inert.
  for (int32_t c = 0x1161; c <= 0x1175; ++c) EXPECT_FALSE(inert(c));
  for (int32_t c = 0x11A8; c <= 0x11C2; ++c) EXPECT_FALSE(inert(c));
}

// NFC that copies inert stretches equals utf8proc's NFC of the whole text, on random mixes of
// starters, combining marks, jamo and compatibility characters.
TEST(Tokenizer, NfcByStretchesEqualsWholeNfc) {
  const std::vector<std::string> parts = {
      "a",      "e",      " ",      "가",     "\u1100", "\u1161", "\u11a8", "\u0301", "\u0323",
      "\u212b", "\u00c5", "\u0041", "\u030a", "\u3099", "\u304b", "ﬁ",      "\n",     "😀"};
  uint32_t state = 7;
  for (int round = 0; round < 2000; ++round) {
    std::string text;
    for (int k = 0; k < 12; ++k) {
      state = state * 1664525u + 1013904223u;
      text += parts[(state >> 16) % parts.size()];
    }
    utf8proc_uint8_t* whole = utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(text.c_str()));
    ASSERT_NE(whole, nullptr);
    EXPECT_EQ(nfc(text), std::string(reinterpret_cast<char*>(whole))) << text;
    std::free(whole);
  }
}

// A valid tokenizer.json to break in one place at a time.
json valid_json() {
  return json::parse(read_text(kData + "tokenizer.json"));
}

void expect_rejected(const json& file, const std::string& expected) {
  try {
    Tokenizer::from_json(file.dump(), "bad.json");
    ADD_FAILURE() << "accepted; expected an error naming " << expected;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("bad.json"), std::string::npos) << message;
    EXPECT_NE(message.find(expected), std::string::npos) << message;
  }
}

TEST(Tokenizer, MalformedFilesAreRejected) {
  {
    try {
      Tokenizer::from_json("{\"model\": ", "bad.json");
      ADD_FAILURE() << "accepted truncated JSON";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
    }
  }
  json f = valid_json();
  f["model"]["type"] = "Unigram";
  expect_rejected(f, "model.type 'Unigram' is not supported");

  f = valid_json();
  f["model"].erase("vocab");
  expect_rejected(f, "model.vocab is missing");

  f = valid_json();
  f["model"]["merges"][3] = json::array({"Ġ", "no-such-token"});
  expect_rejected(f, "model.merges[3] names 'no-such-token'");

  f = valid_json();
  f["model"]["merges"] = json::array({"a b c"});
  expect_rejected(f, "model.merges[0]");

  f = valid_json();
  f["model"]["merges"] = json::array({json::array({"a", "b"}), "a c"});
  expect_rejected(f, "model.merges mixes strings and pairs");

  f = valid_json();
  f["model"]["merges"] = json::array({json::array({"z", "Q"})});
  expect_rejected(f, "model.merges[0] ('z' 'Q') makes 'zQ', which is not in model.vocab");

  f = valid_json();
  f["model"]["vocab"]["a"] = 100000;
  expect_rejected(f, "model.vocab['a']");

  f = valid_json();
  f["model"]["byte_fallback"] = true;
  expect_rejected(f, "model.byte_fallback");

  f = valid_json();
  f["model"]["unk_token"] = "<unk>";
  expect_rejected(f, "model.unk_token");

  f = valid_json();
  f["normalizer"] = {{"type", "NFKC"}};
  expect_rejected(f, "normalizer.type 'NFKC' is not supported");

  f = valid_json();
  f["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = true;
  expect_rejected(f, "pre_tokenizer.pretokenizers[1].add_prefix_space");

  f = valid_json();
  f["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed";
  expect_rejected(f, "pre_tokenizer.pretokenizers[0].behavior 'Removed'");

  f = valid_json();
  f["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"Regex", "(unclosed"}};
  expect_rejected(f, "regex does not compile");

  f = valid_json();
  f["decoder"] = {{"type", "WordPiece"}};
  expect_rejected(f, "decoder.type 'WordPiece' is not supported");

  f = valid_json();
  f["post_processor"] = {{"type", "TemplateProcessing"}};
  expect_rejected(f, "post_processor.type 'TemplateProcessing'");

  f = valid_json();
  f["added_tokens"][1]["id"] = 5;
  expect_rejected(f, "added_tokens[1] ('<|im_start|>') has id 5");

  f = valid_json();
  f["added_tokens"][0].erase("content");
  expect_rejected(f, "added_tokens[0].content is missing");

  f = valid_json();
  f["truncation"] = {{"max_length", 512}};
  expect_rejected(f, "truncation");

  f = valid_json();
  f["extra"] = 1;
  expect_rejected(f, "extra is not a tokenizer.json field");
}

TEST(Tokenizer, AcceptsNfcSequenceAndNoNormalizer) {
  json f = valid_json();
  f["normalizer"] = {{"type", "Sequence"}, {"normalizers", json::array({{{"type", "NFC"}}})}};
  const Tokenizer sequence = Tokenizer::from_json(f.dump());
  EXPECT_EQ(sequence.decode(sequence.encode("cafe\u0301")), "caf\u00e9");
  f["normalizer"] = nullptr;
  const Tokenizer none = Tokenizer::from_json(f.dump());
  EXPECT_EQ(none.decode(none.encode("cafe\u0301")), "cafe\u0301");
  EXPECT_TRUE(json::parse(none.to_json())["normalizer"].is_null());
}

}  // namespace
}  // namespace nuri
