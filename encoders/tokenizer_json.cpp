// Reading and writing Hugging Face tokenizer.json for the byte-level BPE tokenizer. Anything
// this tokenizer would not reproduce exactly is rejected with an error naming the field.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "encoders/tokenizer.h"
#include "encoders/tokenizer_model.h"
#include "kernels/error.h"

namespace nuri {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

// Reads tokenizer.json fields, naming the file and the field's path in every error.
class Reader {
 public:
  explicit Reader(const std::string& origin) : origin_(origin) {}

  [[noreturn]] void fail_at(const std::string& field, const std::string& what) const {
    fail(origin_, ": ", field, " ", what);
  }
  const json& object(const json& parent, const std::string& field, const std::string& key) const {
    const auto found = parent.find(key);
    if (found == parent.end()) fail_at(join(field, key), "is missing");
    if (!found->is_object()) fail_at(join(field, key), "must be an object");
    return *found;
  }
  std::string string(const json& parent, const std::string& field, const std::string& key) const {
    const auto found = parent.find(key);
    if (found == parent.end()) fail_at(join(field, key), "is missing");
    if (!found->is_string()) fail_at(join(field, key), "must be a string");
    return found->get<std::string>();
  }
  // A boolean that may be absent (then `fallback`).
  bool boolean(const json& parent, const std::string& field, const std::string& key,
               bool fallback) const {
    const auto found = parent.find(key);
    if (found == parent.end() || found->is_null()) return fallback;
    if (!found->is_boolean()) fail_at(join(field, key), "must be true or false");
    return found->get<bool>();
  }
  // A boolean that must be absent, null or equal to `required`.
  void require_flag(const json& parent, const std::string& field, const std::string& key,
                    bool required) const {
    if (boolean(parent, field, key, required) != required) {
      fail_at(join(field, key), cat("must be ", required ? "true" : "false", " (not supported)"));
    }
  }
  // A field that must be absent or null, or (when allowed) an empty string.
  void require_unset(const json& parent, const std::string& field, const std::string& key,
                     bool empty_string_ok = false) const {
    const auto found = parent.find(key);
    if (found == parent.end() || found->is_null()) return;
    if (empty_string_ok && found->is_string() && found->get<std::string>().empty()) return;
    fail_at(join(field, key), cat("is ", found->dump(), ", but only null is supported"));
  }
  std::string type(const json& value, const std::string& field) const {
    if (!value.is_object()) fail_at(field, "must be an object");
    return string(value, field, "type");
  }
  static std::string join(const std::string& field, const std::string& key) {
    return field.empty() ? key : field + "." + key;
  }

 private:
  const std::string& origin_;
};

// The normalizer: null, NFC, or a Sequence of NFC (or of nothing). Returns whether NFC applies.
bool read_normalizer(const Reader& r, const json& root) {
  const auto found = root.find("normalizer");
  if (found == root.end() || found->is_null()) return false;
  const std::string type = r.type(*found, "normalizer");
  if (type == "NFC") return true;
  if (type != "Sequence") r.fail_at("normalizer.type", cat("'", type, "' is not supported"));
  const auto list = found->find("normalizers");
  if (list == found->end() || !list->is_array()) {
    r.fail_at("normalizer.normalizers", "must be an array");
  }
  bool nfc = false;
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string field = cat("normalizer.normalizers[", i, "]");
    const std::string inner = r.type((*list)[i], field);
    if (inner != "NFC") r.fail_at(field + ".type", cat("'", inner, "' is not supported"));
    nfc = true;
  }
  return nfc;
}

// The pre-tokenizer: Sequence[Split(Regex, Isolated), ByteLevel(no prefix space, no regex)].
void read_pre_tokenizer(const Reader& r, const json& root, TokenizerModel& model) {
  const auto found = root.find("pre_tokenizer");
  if (found == root.end() || found->is_null()) r.fail_at("pre_tokenizer", "is missing");
  const std::string type = r.type(*found, "pre_tokenizer");
  if (type != "Sequence") {
    r.fail_at("pre_tokenizer.type", cat("'", type, "' is not supported (expected Sequence)"));
  }
  const auto list = found->find("pretokenizers");
  if (list == found->end() || !list->is_array() || list->size() != 2) {
    r.fail_at("pre_tokenizer.pretokenizers", "must be an array of Split and ByteLevel");
  }
  const json& split = (*list)[0];
  const std::string split_type = r.type(split, "pre_tokenizer.pretokenizers[0]");
  if (split_type != "Split") {
    r.fail_at("pre_tokenizer.pretokenizers[0].type",
              cat("'", split_type, "' is not supported (expected Split)"));
  }
  const json& pattern = r.object(split, "pre_tokenizer.pretokenizers[0]", "pattern");
  const auto regex = pattern.find("Regex");
  if (regex == pattern.end() || !regex->is_string()) {
    r.fail_at("pre_tokenizer.pretokenizers[0].pattern", "must be {\"Regex\": \"...\"}");
  }
  model.pattern = regex->get<std::string>();
  const std::string behavior = r.string(split, "pre_tokenizer.pretokenizers[0]", "behavior");
  if (behavior != "Isolated") {
    r.fail_at("pre_tokenizer.pretokenizers[0].behavior",
              cat("'", behavior, "' is not supported (expected Isolated)"));
  }
  r.require_flag(split, "pre_tokenizer.pretokenizers[0]", "invert", false);

  const json& byte_level = (*list)[1];
  const std::string level_type = r.type(byte_level, "pre_tokenizer.pretokenizers[1]");
  if (level_type != "ByteLevel") {
    r.fail_at("pre_tokenizer.pretokenizers[1].type",
              cat("'", level_type, "' is not supported (expected ByteLevel)"));
  }
  r.require_flag(byte_level, "pre_tokenizer.pretokenizers[1]", "add_prefix_space", false);
  r.require_flag(byte_level, "pre_tokenizer.pretokenizers[1]", "use_regex", false);
  model.trim_offsets =
      r.boolean(byte_level, "pre_tokenizer.pretokenizers[1]", "trim_offsets", true);
}

// The BPE model: vocab, merges (strings "a b" or pairs ["a", "b"]) and the flags it supports.
void read_model(const Reader& r, const json& root, TokenizerModel& model) {
  const json& m = r.object(root, "", "model");
  const std::string type = r.string(m, "model", "type");
  if (type != "BPE") r.fail_at("model.type", cat("'", type, "' is not supported"));
  r.require_unset(m, "model", "dropout");
  r.require_unset(m, "model", "unk_token");
  r.require_unset(m, "model", "continuing_subword_prefix", true);
  r.require_unset(m, "model", "end_of_word_suffix", true);
  r.require_flag(m, "model", "fuse_unk", false);
  r.require_flag(m, "model", "byte_fallback", false);
  model.ignore_merges = r.boolean(m, "model", "ignore_merges", false);

  const json& vocab = r.object(m, "model", "vocab");
  model.vocab.assign(vocab.size(), std::string());
  std::vector<uint8_t> seen(vocab.size(), 0);
  for (const auto& [token, id] : vocab.items()) {
    const std::string field = cat("model.vocab['", token, "']");
    if (!id.is_number_integer()) r.fail_at(field, "must be an integer id");
    const int64_t value = id.get<int64_t>();
    if (value < 0 || value >= static_cast<int64_t>(vocab.size())) {
      r.fail_at(field, cat("is ", value, ", outside 0..", vocab.size() - 1,
                           " (ids must number the vocabulary densely)"));
    }
    if (seen[value]) r.fail_at(field, cat("repeats id ", value));
    seen[value] = 1;
    model.vocab[value] = token;
  }
  std::unordered_map<std::string, int32_t> ids;
  ids.reserve(model.vocab.size());
  for (size_t id = 0; id < model.vocab.size(); ++id)
    ids.emplace(model.vocab[id], static_cast<int32_t>(id));

  const auto merges = m.find("merges");
  if (merges == m.end() || !merges->is_array()) r.fail_at("model.merges", "must be an array");
  model.merges.reserve(merges->size());
  bool strings = false;
  bool pairs = false;
  for (size_t i = 0; i < merges->size(); ++i) {
    const json& merge = (*merges)[i];
    const std::string field = cat("model.merges[", i, "]");
    std::string a;
    std::string b;
    if (merge.is_string()) {
      const std::string text = merge.get<std::string>();
      const size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
        r.fail_at(field, cat("'", text, "' must be two tokens separated by one space"));
      }
      a = text.substr(0, space);
      b = text.substr(space + 1);
      strings = true;
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      a = merge[0].get<std::string>();
      b = merge[1].get<std::string>();
      pairs = true;
    } else {
      r.fail_at(field, "must be a string \"a b\" or a pair [\"a\", \"b\"]");
    }
    const auto left = ids.find(a);
    const auto right = ids.find(b);
    if (left == ids.end()) r.fail_at(field, cat("names '", a, "', which is not in model.vocab"));
    if (right == ids.end()) r.fail_at(field, cat("names '", b, "', which is not in model.vocab"));
    model.merges.emplace_back(left->second, right->second);
  }
  if (strings && pairs) r.fail_at("model.merges", "mixes strings and pairs");
  model.merges_as_strings = strings;
}

void read_added_tokens(const Reader& r, const json& root, TokenizerModel& model) {
  const auto found = root.find("added_tokens");
  if (found == root.end() || found->is_null()) return;
  if (!found->is_array()) r.fail_at("added_tokens", "must be an array");
  for (size_t i = 0; i < found->size(); ++i) {
    const json& entry = (*found)[i];
    const std::string field = cat("added_tokens[", i, "]");
    if (!entry.is_object()) r.fail_at(field, "must be an object");
    AddedToken token;
    const auto id = entry.find("id");
    if (id == entry.end() || !id->is_number_integer())
      r.fail_at(field + ".id", "must be an integer");
    const int64_t value = id->get<int64_t>();
    if (value < 0 || value > INT32_MAX) r.fail_at(field + ".id", cat("is out of range: ", value));
    token.id = static_cast<int32_t>(value);
    token.content = r.string(entry, field, "content");
    token.special = r.boolean(entry, field, "special", false);
    token.single_word = r.boolean(entry, field, "single_word", false);
    token.lstrip = r.boolean(entry, field, "lstrip", false);
    token.rstrip = r.boolean(entry, field, "rstrip", false);
    token.normalized = r.boolean(entry, field, "normalized", !token.special);
    model.added_tokens.push_back(std::move(token));
  }
}

// Writes `text` to `path` through a temporary file in the same directory and a rename.
void write_atomically(const std::string& path, const std::string& text) {
  static std::atomic<uint64_t> counter{0};
  const std::string temp = cat(path, ".tmp.", ::getpid(), ".", counter++);
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  NURI_CHECK(fd >= 0, path, ": creating ", temp, " failed: ", std::strerror(errno));
  size_t done = 0;
  int error = 0;
  while (done < text.size() && error == 0) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno != EINTR) error = errno;
    if (n > 0) done += static_cast<size_t>(n);
  }
  if (error == 0 && ::fsync(fd) != 0) error = errno;
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error == 0 && ::rename(temp.c_str(), path.c_str()) != 0) error = errno;
  if (error != 0) {
    ::unlink(temp.c_str());
    fail(path, ": writing failed: ", std::strerror(error));
  }
}

}  // namespace

Tokenizer Tokenizer::from_json(std::string_view text, const std::string& origin) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& e) {
    fail(origin, ": not valid JSON: ", e.what());
  }
  const Reader r(origin);
  if (!root.is_object()) r.fail_at("(top level)", "must be an object");
  static const char* const kKnown[] = {"version",        "truncation", "padding",
                                       "added_tokens",   "normalizer", "pre_tokenizer",
                                       "post_processor", "decoder",    "model"};
  for (const auto& [key, value] : root.items()) {
    if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown)) {
      r.fail_at(key, "is not a tokenizer.json field");
    }
  }
  r.require_unset(root, "", "truncation");
  r.require_unset(root, "", "padding");

  TokenizerModel model;
  model.nfc = read_normalizer(r, root);
  read_pre_tokenizer(r, root, model);
  const auto post = root.find("post_processor");
  if (post != root.end() && !post->is_null()) {
    const std::string type = r.type(*post, "post_processor");
    if (type != "ByteLevel") r.fail_at("post_processor.type", cat("'", type, "' is not supported"));
    model.byte_level_post = true;
  }
  const auto decoder = root.find("decoder");
  if (decoder == root.end() || decoder->is_null()) r.fail_at("decoder", "is missing");
  const std::string decoder_type = r.type(*decoder, "decoder");
  if (decoder_type != "ByteLevel") {
    r.fail_at("decoder.type", cat("'", decoder_type, "' is not supported"));
  }
  read_model(r, root, model);
  read_added_tokens(r, root, model);
  return TokenizerAccess::build(std::move(model), origin);
}

Tokenizer Tokenizer::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  NURI_CHECK(in, path, ": cannot open: ", std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  NURI_CHECK(!in.bad(), path, ": read failed");
  return from_json(text.str(), path);
}

std::string Tokenizer::to_json() const {
  const TokenizerModel& model = TokenizerAccess::model(*this);
  ordered_json root;
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;
  ordered_json added = ordered_json::array();
  for (const AddedToken& token : model.added_tokens) {
    added.push_back({{"id", token.id},
                     {"content", token.content},
                     {"single_word", token.single_word},
                     {"lstrip", token.lstrip},
                     {"rstrip", token.rstrip},
                     {"normalized", token.normalized},
                     {"special", token.special}});
  }
  root["added_tokens"] = added;
  root["normalizer"] = model.nfc ? ordered_json{{"type", "NFC"}} : ordered_json(nullptr);
  root["pre_tokenizer"] = {{"type", "Sequence"},
                           {"pretokenizers",
                            {{{"type", "Split"},
                              {"pattern", {{"Regex", model.pattern}}},
                              {"behavior", "Isolated"},
                              {"invert", false}},
                             {{"type", "ByteLevel"},
                              {"add_prefix_space", false},
                              {"trim_offsets", model.trim_offsets},
                              {"use_regex", false}}}}};
  root["post_processor"] = model.byte_level_post ? ordered_json{{"type", "ByteLevel"},
                                                                {"add_prefix_space", false},
                                                                {"trim_offsets", false},
                                                                {"use_regex", false}}
                                                 : ordered_json(nullptr);
  root["decoder"] = {{"type", "ByteLevel"},
                     {"add_prefix_space", true},
                     {"trim_offsets", true},
                     {"use_regex", true}};
  ordered_json vocab = ordered_json::object();
  for (size_t id = 0; id < model.vocab.size(); ++id) vocab[model.vocab[id]] = id;
  ordered_json merges = ordered_json::array();
  for (const auto& [a, b] : model.merges) {
    if (model.merges_as_strings) {
      merges.push_back(model.vocab[a] + " " + model.vocab[b]);
    } else {
      merges.push_back({model.vocab[a], model.vocab[b]});
    }
  }
  root["model"] = {{"type", "BPE"},
                   {"dropout", nullptr},
                   {"unk_token", nullptr},
                   {"continuing_subword_prefix", nullptr},
                   {"end_of_word_suffix", nullptr},
                   {"fuse_unk", false},
                   {"byte_fallback", false},
                   {"ignore_merges", model.ignore_merges},
                   {"vocab", std::move(vocab)},
                   {"merges", std::move(merges)}};
  return root.dump(2) + "\n";
}

void Tokenizer::save(const std::string& path) const {
  write_atomically(path, to_json());
}

}  // namespace nuri
