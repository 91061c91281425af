// The tokenizer's parts shared inside encoders/: the plain description of a byte-level BPE
// tokenizer (what tokenizer.json holds), the GPT-2 byte/character mapping, UTF-8 checks with NFC,
// and the regex pre-tokenizer. Not a public header.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "encoders/tokenizer.h"

namespace nuri {

// The Llama-3 split regex: contractions, letter runs with one leading non-letter, digit groups
// of up to three, punctuation runs, newlines and other whitespace.
inline constexpr std::string_view kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// One entry of tokenizer.json's added_tokens.
struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = true;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
};

// Everything a tokenizer.json describes, in the file's own terms: tokens are written in the
// byte-level alphabet (vocab[id] is the token of that id), merges are pairs of ids by rank.
struct TokenizerModel {
  std::vector<std::string> vocab;
  std::vector<std::pair<int32_t, int32_t>> merges;
  std::vector<AddedToken> added_tokens;  // in file order, ids at or past vocab.size() or aliases
  std::string pattern = std::string(kLlama3Pattern);
  bool nfc = true;                 // normalizer NFC (false: no normalizer)
  bool ignore_merges = false;      // a word found whole in the vocab is one token
  bool trim_offsets = true;        // ByteLevel pre-tokenizer flag, kept for saving
  bool byte_level_post = false;    // post_processor ByteLevel (true) or null
  bool merges_as_strings = false;  // save merges as "a b" strings instead of pairs
};

// Builds Tokenizer objects from a TokenizerModel (the JSON reader and the trainer use it).
struct TokenizerAccess {
  // Validates `model` (errors name `origin`) and builds the tokenizer.
  static Tokenizer build(TokenizerModel model, const std::string& origin);
  // The model a tokenizer was built from.
  static const TokenizerModel& model(const Tokenizer& tokenizer);
};

// The GPT-2 byte-level alphabet: byte b is written as the character byte_char(b).
const std::array<std::string, 256>& byte_level_chars();
// Writes raw bytes in the byte-level alphabet.
std::string bytes_to_byte_level(std::string_view bytes);
// The raw bytes of a byte-level token; characters outside the alphabet are kept as UTF-8.
std::string byte_level_to_bytes(std::string_view token);

// Returns the offset of the first byte that is not part of valid UTF-8, or npos.
// `needs_nfc` is set when the text holds a code point that NFC might change.
size_t check_utf8(std::string_view text, bool& needs_nfc);
// NFC of valid UTF-8 text.
std::string nfc(std::string_view text);

// A compiled split regex (PCRE2 with UTF, UCP and JIT). Matching uses per-thread match data,
// so one Regex may be used from several threads at once.
class Regex {
 public:
  // Compiles `pattern`; errors name `origin` and the offset in the pattern.
  Regex(const std::string& pattern, const std::string& origin);
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex();
  // Calls `piece` with each pre-token of valid UTF-8 `text`, in order: every match, and every
  // stretch between matches (the "Isolated" split behavior), so the pieces tile the text.
  template <class F>
  void split(std::string_view text, F&& piece) const {
    size_t start = 0;
    size_t done = 0;
    while (start < text.size()) {
      size_t match_begin = 0;
      size_t match_end = 0;
      if (!find(text, start, match_begin, match_end)) break;
      if (match_begin > done) piece(text.substr(done, match_begin - done));
      if (match_end > match_begin) {
        piece(text.substr(match_begin, match_end - match_begin));
        done = match_end;
        start = match_end;
      } else {
        start = match_begin + 1;  // an empty match: search again one character later
        while (start < text.size() && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) ++start;
      }
    }
    if (done < text.size()) piece(text.substr(done));
  }

 private:
  // Finds the first match at or after `start`; false when there is none.
  bool find(std::string_view text, size_t start, size_t& begin, size_t& end) const;
  void* code_ = nullptr;  // pcre2_code_8
};

// Unicode White_Space (what Rust's char::is_whitespace tests).
bool is_white_space(uint32_t c);

// A token's place in UTF-8: whole characters, the first bytes of one character, or a lone
// continuation byte. The trainer only merges whole+whole and prefix+continuation byte.
enum class Utf8Shape : uint8_t { kWhole, kPrefix, kContinuation, kOther };
Utf8Shape utf8_shape(std::string_view bytes);

}  // namespace nuri
