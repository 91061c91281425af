// Reading and writing Hugging Face tokenizer.json for the byte-level BPE tokenizer. Anything
// this tokenizer would not reproduce exactly is rejected with an error naming the field.

#include <utf8proc.h>

#include <nlohmann/json.hpp>

#include "encoders/tokenizer.h"
#include "encoders/tokenizer_model.h"
#include "kernels/error.h"
#include "kernels/file_io.h"

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

// One normalizer step: NFC, or Prepend (after any NFC) with a non-empty string.
void read_normalizer_step(const Reader& r, const json& step, const std::string& field,
                          TokenizerModel& model) {
  const std::string type = r.type(step, field);
  if (type == "NFC") {
    if (!model.prepend.empty()) r.fail_at(field + ".type", "NFC after Prepend is not supported");
    model.nfc = true;
  } else if (type == "Prepend") {
    if (!model.prepend.empty()) r.fail_at(field + ".type", "a second Prepend is not supported");
    model.prepend = r.string(step, field, "prepend");
    if (model.prepend.empty()) r.fail_at(field + ".prepend", "must not be empty");
  } else {
    r.fail_at(field + ".type", cat("'", type, "' is not supported"));
  }
}

// The normalizer: null, NFC, Prepend, or a Sequence of those with any Prepend last.
void read_normalizer(const Reader& r, const json& root, TokenizerModel& model) {
  model.nfc = false;
  const auto found = root.find("normalizer");
  if (found == root.end() || found->is_null()) return;
  if (r.type(*found, "normalizer") != "Sequence") {
    read_normalizer_step(r, *found, "normalizer", model);
    return;
  }
  const auto list = found->find("normalizers");
  if (list == found->end() || !list->is_array()) {
    r.fail_at("normalizer.normalizers", "must be an array");
  }
  for (size_t i = 0; i < list->size(); ++i) {
    read_normalizer_step(r, (*list)[i], cat("normalizer.normalizers[", i, "]"), model);
  }
}

// The decoder: ByteLevel, or a Sequence of ByteLevel and Strip.
void read_decoder(const Reader& r, const json& root, TokenizerModel& model) {
  const auto found = root.find("decoder");
  if (found == root.end() || found->is_null()) r.fail_at("decoder", "is missing");
  const std::string type = r.type(*found, "decoder");
  if (type == "ByteLevel") return;
  if (type != "Sequence") r.fail_at("decoder.type", cat("'", type, "' is not supported"));
  const auto list = found->find("decoders");
  if (list == found->end() || !list->is_array() || list->size() != 2) {
    r.fail_at("decoder.decoders", "must be an array of ByteLevel and Strip");
  }
  const std::string first = r.type((*list)[0], "decoder.decoders[0]");
  if (first != "ByteLevel") {
    r.fail_at("decoder.decoders[0].type",
              cat("'", first, "' is not supported (expected ByteLevel)"));
  }
  const json& strip = (*list)[1];
  const std::string second = r.type(strip, "decoder.decoders[1]");
  if (second != "Strip") {
    r.fail_at("decoder.decoders[1].type", cat("'", second, "' is not supported (expected Strip)"));
  }
  model.strip = r.string(strip, "decoder.decoders[1]", "content");
  utf8proc_int32_t c = 0;
  const auto length =
      utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(model.strip.data()),
                       static_cast<utf8proc_ssize_t>(model.strip.size()), &c);
  if (model.strip.empty() || length != static_cast<utf8proc_ssize_t>(model.strip.size()))
    r.fail_at("decoder.decoders[1].content", "must be one character");
  const auto count = [&](const char* key) {
    const auto value = strip.find(key);
    if (value == strip.end() || !value->is_number_unsigned()) {
      r.fail_at(cat("decoder.decoders[1].", key), "must be an integer 0 or more");
    }
    return value->get<size_t>();
  };
  model.strip_start = count("start");
  model.strip_stop = count("stop");
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
  read_normalizer(r, root, model);
  read_pre_tokenizer(r, root, model);
  const auto post = root.find("post_processor");
  if (post != root.end() && !post->is_null()) {
    const std::string type = r.type(*post, "post_processor");
    if (type != "ByteLevel") r.fail_at("post_processor.type", cat("'", type, "' is not supported"));
    model.byte_level_post = true;
  }
  read_decoder(r, root, model);
  read_model(r, root, model);
  read_added_tokens(r, root, model);
  return TokenizerAccess::build(std::move(model), origin);
}

Tokenizer Tokenizer::load(const std::string& path) {
  return from_json(read_file(path), path);
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
  ordered_json normalizers = ordered_json::array();
  if (model.nfc) normalizers.push_back({{"type", "NFC"}});
  if (!model.prepend.empty())
    normalizers.push_back({{"type", "Prepend"}, {"prepend", model.prepend}});
  root["normalizer"] = normalizers.empty() ? ordered_json(nullptr)
                       : normalizers.size() == 1
                           ? normalizers[0]
                           : ordered_json{{"type", "Sequence"}, {"normalizers", normalizers}};
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
  const ordered_json byte_level = {{"type", "ByteLevel"},
                                   {"add_prefix_space", true},
                                   {"trim_offsets", true},
                                   {"use_regex", true}};
  ordered_json decoder = byte_level;
  if (!model.strip.empty()) {
    const ordered_json strip = {{"type", "Strip"},
                                {"content", model.strip},
                                {"start", model.strip_start},
                                {"stop", model.strip_stop}};
    decoder = {{"type", "Sequence"}, {"decoders", ordered_json::array({byte_level, strip})}};
  }
  root["decoder"] = decoder;
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
  write_file_atomic(path, to_json());
}

}  // namespace nuri
