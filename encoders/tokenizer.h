// Byte-level BPE tokenizer that never produces an unknown token. It reads and writes Hugging Face
// tokenizer.json (NFC normalizer, Llama-3/Qwen2 split pre-tokenizer, byte-level BPE model and
// decoder), and `train_tokenizer` learns one from text files.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nuri {

// Special tokens every nuri tokenizer reserves, in id order right after the learned vocabulary:
// end of text, chat roles and modality spans.
std::vector<std::string> default_special_tokens();

class Tokenizer {
 public:
  // Reads a Hugging Face tokenizer.json; throws nuri::Error naming the file and field at fault.
  static Tokenizer load(const std::string& path);
  // Parses tokenizer.json text; `origin` names it in errors.
  static Tokenizer from_json(std::string_view json, const std::string& origin = "tokenizer.json");
  // Writes tokenizer.json atomically (temporary file, then rename).
  void save(const std::string& path) const;
  std::string to_json() const;

  // Token ids of `text`; special tokens written literally in the text map to their ids.
  // Safe to call from several threads at once. Invalid UTF-8 is a nuri::Error naming the byte
  // offset.
  std::vector<int32_t> encode(std::string_view text) const;
  // The text of `ids`; decode(encode(s)) == NFC(s) for any valid UTF-8 s. Added tokens decode
  // to their (normalized) text as written; skip_special drops the special ones.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  int32_t vocab_size() const;  // learned tokens plus added tokens
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::string id_to_token(int32_t id) const;
  bool is_special(int32_t id) const;

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

 private:
  struct Impl;
  friend struct TokenizerAccess;  // builds tokenizers from tokenizer.json and from training
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// What `train_tokenizer` learns from.
struct TokenizerTrainOptions {
  std::vector<std::string> inputs;  // UTF-8 text files
  int32_t vocab_size = 8192;        // total, special tokens included
  int32_t min_frequency = 2;        // a pair seen fewer times is never merged
  std::vector<std::string> special_tokens = default_special_tokens();
  int threads = 0;  // for counting pre-tokens; 0 means the OpenMP default
  bool progress = false;
};

// Learns a byte-level BPE from the inputs. Special tokens written in the inputs separate the text
// around them and are not learned from. Merges join whole UTF-8 characters, or a character's
// first bytes with its next byte, never bytes of different characters.
Tokenizer train_tokenizer(const TokenizerTrainOptions& options);

}  // namespace nuri
