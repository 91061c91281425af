// The byte-level BPE tokenizer: added-token splitting, NFC, regex pre-tokenization and BPE
// merges by rank, with a per-thread cache from pre-token to ids.
#include "encoders/tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <queue>
#include <unordered_map>

#include "encoders/tokenizer_model.h"
#include "kernels/error.h"

namespace nuri {

namespace {

// Decodes the code point at s[i] of valid UTF-8 and its length.
uint32_t decode_at(std::string_view s, size_t i, size_t& len) {
  utf8proc_int32_t c = 0;
  const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                  static_cast<utf8proc_ssize_t>(s.size() - i), &c);
  len = n > 0 ? static_cast<size_t>(n) : 1;
  return n > 0 ? static_cast<uint32_t>(c) : 0xFFFD;
}

// A word character (\w): letters, marks, decimal and letter numbers, connector punctuation.
bool is_word_char(uint32_t c) {
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

// Start of the last code point before byte `end` of valid UTF-8 `s`.
size_t previous_char(std::string_view s, size_t end) {
  size_t i = end - 1;
  while (i > 0 && (static_cast<uint8_t>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

// Finds added tokens in text the way Hugging Face's added vocabulary does: leftmost-longest
// non-overlapping matches, honouring single_word, lstrip and rstrip.
class AddedMatcher {
 public:
  // Adds a token to look for (`pattern` is its content, normalized when the token is).
  void add(std::string pattern, const AddedToken& token) {
    if (pattern.empty()) return;
    first_[static_cast<uint8_t>(pattern[0])] = true;
    entries_.push_back({std::move(pattern), &token});
    std::stable_sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
      return a.pattern.size() > b.pattern.size();
    });
  }
  bool empty() const { return entries_.empty(); }

  // Calls text(piece, offset) for the stretches between tokens and token(id) for each token.
  template <class Text, class Token>
  void split(std::string_view s, Text&& text, Token&& token) const {
    size_t done = 0;
    size_t pos = 0;
    while (pos < s.size()) {
      size_t start = pos;
      const Entry* hit = nullptr;
      for (; start < s.size() && hit == nullptr; ++start) {
        if (!first_[static_cast<uint8_t>(s[start])]) continue;
        for (const Entry& e : entries_) {
          if (s.compare(start, e.pattern.size(), e.pattern) == 0) {
            hit = &e;
            break;
          }
        }
        if (hit) break;
      }
      if (hit == nullptr) break;
      size_t stop = start + hit->pattern.size();
      pos = stop;
      const AddedToken& t = *hit->token;
      if (t.single_word) {
        size_t len = 0;
        const bool word_before =
            start > 0 && is_word_char(decode_at(s, previous_char(s, start), len));
        const bool word_after = stop < s.size() && is_word_char(decode_at(s, stop, len));
        if (word_before || word_after) continue;
      }
      if (t.lstrip) {
        size_t new_start = start;
        while (new_start > done) {
          size_t len = 0;
          const size_t prev = previous_char(s, new_start);
          if (!is_white_space(decode_at(s, prev, len))) break;
          new_start = prev;
        }
        start = new_start;
      }
      if (t.rstrip) {
        while (stop < s.size()) {
          size_t len = 0;
          if (!is_white_space(decode_at(s, stop, len))) break;
          stop += len;
        }
        pos = stop;
      }
      if (start > done) text(s.substr(done, start - done), done);
      token(t.id);
      done = stop;
    }
    if (done < s.size()) text(s.substr(done), done);
  }

 private:
  struct Entry {
    std::string pattern;
    const AddedToken* token;
  };
  std::array<bool, 256> first_{};
  std::vector<Entry> entries_;  // longest first
};

// Open-addressing map from a pair of token ids to the rank of their merge and the merged id;
// key and value share a 16-byte slot, so a lookup touches one cache line.
class MergeMap {
 public:
  struct Value {
    int32_t rank;
    int32_t id;
  };
  void build(const std::vector<std::pair<int32_t, int32_t>>& merges,
             const std::vector<int32_t>& merged_ids) {
    size_t capacity = 16;
    while (capacity < merges.size() * 2) capacity *= 2;
    slots_.assign(capacity, Slot{kEmpty, {0, 0}});
    mask_ = capacity - 1;
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const uint64_t key = pack(merges[rank].first, merges[rank].second);
      size_t slot = hash(key) & mask_;
      while (slots_[slot].key != kEmpty && slots_[slot].key != key) slot = (slot + 1) & mask_;
      // A repeated pair keeps its last rank, as in Hugging Face.
      slots_[slot] = {key, {static_cast<int32_t>(rank), merged_ids[rank]}};
    }
  }
  // The merge of (a, b), or nullptr.
  const Value* find(int32_t a, int32_t b) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = pack(a, b);
    for (size_t slot = hash(key) & mask_;; slot = (slot + 1) & mask_) {
      if (slots_[slot].key == key) return &slots_[slot].value;
      if (slots_[slot].key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  struct Slot {
    uint64_t key;
    Value value;
  };
  static uint64_t pack(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  static size_t hash(uint64_t key) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return static_cast<size_t>(key);
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

// Pre-token → ids for one thread and one tokenizer: open addressing over arenas, cleared
// whole when full, so a lookup or insert never allocates once the arenas have grown.
class PieceCache {
 public:
  static constexpr size_t kMaxKey = 64;
  PieceCache() : slots_(kSlots) {
    keys_.reserve(kKeyBytes);
    values_.reserve(kKeyBytes);
  }
  // Appends the cached ids of `key` to `out`; false when not cached.
  bool find(std::string_view key, uint64_t hash, std::vector<int32_t>& out) const {
    for (size_t slot = hash & (kSlots - 1);; slot = (slot + 1) & (kSlots - 1)) {
      const Slot& s = slots_[slot];
      if (s.hash == 0) return false;
      if (s.hash == hash && s.key_len == key.size() &&
          std::memcmp(keys_.data() + s.key_offset, key.data(), key.size()) == 0) {
        out.insert(out.end(), values_.begin() + s.value_offset,
                   values_.begin() + s.value_offset + s.value_len);
        return true;
      }
    }
  }
  void insert(std::string_view key, uint64_t hash, const int32_t* ids, size_t n) {
    if (used_ * 4 >= kSlots * 3 || keys_.size() + key.size() > kKeyBytes ||
        values_.size() + n > kKeyBytes) {
      std::fill(slots_.begin(), slots_.end(), Slot{});
      keys_.clear();
      values_.clear();
      used_ = 0;
    }
    size_t slot = hash & (kSlots - 1);
    while (slots_[slot].hash != 0) slot = (slot + 1) & (kSlots - 1);
    slots_[slot] = {hash, static_cast<uint32_t>(keys_.size()),
                    static_cast<uint32_t>(values_.size()), static_cast<uint16_t>(key.size()),
                    static_cast<uint16_t>(n)};
    keys_.append(key);
    values_.insert(values_.end(), ids, ids + n);
    ++used_;
  }

 private:
  static constexpr size_t kSlots = size_t{1} << 17;
  static constexpr size_t kKeyBytes = size_t{1} << 22;
  struct Slot {
    uint64_t hash = 0;  // 0: empty
    uint32_t key_offset = 0;
    uint32_t value_offset = 0;
    uint16_t key_len = 0;
    uint16_t value_len = 0;
  };
  std::vector<Slot> slots_;
  std::string keys_;
  std::vector<int32_t> values_;
  size_t used_ = 0;
};

// The scratch state of one thread: caches of the last few tokenizers it used, and buffers.
struct ThreadScratch {
  static constexpr size_t kMaxCaches = 4;
  std::vector<std::pair<uint64_t, std::unique_ptr<PieceCache>>> caches;  // most recent last
  std::vector<int32_t> symbols;
  std::vector<int32_t> ranks;

  PieceCache& cache_for(uint64_t owner) {
    if (!caches.empty() && caches.back().first == owner) return *caches.back().second;
    for (size_t i = 0; i < caches.size(); ++i) {
      if (caches[i].first == owner) {
        std::rotate(caches.begin() + i, caches.begin() + i + 1, caches.end());
        return *caches.back().second;
      }
    }
    if (caches.size() == kMaxCaches) caches.erase(caches.begin());
    caches.emplace_back(owner, std::make_unique<PieceCache>());
    return *caches.back().second;
  }
};

ThreadScratch& thread_scratch() {
  thread_local ThreadScratch scratch;
  return scratch;
}

std::atomic<uint64_t> next_tokenizer_uid{1};

}  // namespace

struct Tokenizer::Impl {
  TokenizerModel model;
  uint64_t uid = next_tokenizer_uid++;
  std::unique_ptr<Regex> regex;
  std::vector<std::string> token_bytes;  // raw bytes of each id (added tokens: their content)
  std::vector<uint8_t> special;          // per id
  std::vector<uint8_t> added;            // per id: an added token
  std::unordered_map<std::string, int32_t> ids_by_token;  // byte-level token or added content
  std::unordered_map<std::string, int32_t> ids_by_bytes;  // raw bytes → id, for ignore_merges
  std::array<int32_t, 256> byte_ids{};                    // -1: the byte has no token
  MergeMap merges;
  AddedMatcher raw_added;         // added tokens matched before normalization
  AddedMatcher normalized_added;  // added tokens matched in normalized text

  // Appends the BPE ids of one pre-token.
  void bpe(std::string_view piece, std::vector<int32_t>& out) const;
  void bpe_long(std::vector<int32_t>& symbols) const;
  // Appends the ids of one pre-token, through the cache.
  void encode_piece(std::string_view piece, PieceCache& cache, std::vector<int32_t>& out) const {
    if (piece.size() > PieceCache::kMaxKey) {
      bpe(piece, out);
      return;
    }
    const uint64_t hash = std::hash<std::string_view>{}(piece) | 1;
    if (cache.find(piece, hash, out)) return;
    const size_t before = out.size();
    bpe(piece, out);
    cache.insert(piece, hash, out.data() + before, out.size() - before);
  }
};

void Tokenizer::Impl::bpe(std::string_view piece, std::vector<int32_t>& out) const {
  if (model.ignore_merges) {
    const auto found = ids_by_bytes.find(std::string(piece));
    if (found != ids_by_bytes.end()) {
      out.push_back(found->second);
      return;
    }
  }
  ThreadScratch& scratch = thread_scratch();
  std::vector<int32_t>& symbols = scratch.symbols;
  symbols.clear();
  for (char c : piece) {
    const int32_t id = byte_ids[static_cast<uint8_t>(c)];
    if (id >= 0) symbols.push_back(id);  // a byte without a token is dropped, as without unk
  }
  if (symbols.size() > 256) {
    bpe_long(symbols);
    out.insert(out.end(), symbols.begin(), symbols.end());
    return;
  }
  // Short words: keep the rank of each adjacent pair and merge the lowest, leftmost first.
  std::vector<int32_t>& ranks = scratch.ranks;
  ranks.resize(symbols.size());
  const auto rank_at = [&](size_t i) {
    const MergeMap::Value* v = merges.find(symbols[i], symbols[i + 1]);
    return v ? v->rank : INT_MAX;
  };
  for (size_t i = 0; i + 1 < symbols.size(); ++i) ranks[i] = rank_at(i);
  size_t n = symbols.size();
  while (n > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < n; ++i) {
      if (ranks[i] < ranks[best]) best = i;
    }
    if (ranks[best] == INT_MAX) break;
    symbols[best] = merges.find(symbols[best], symbols[best + 1])->id;
    symbols.erase(symbols.begin() + best + 1);
    ranks.erase(ranks.begin() + best + 1);
    --n;
    if (best + 1 < n)
      ranks[best] = rank_at(best);
    else
      ranks[best] = INT_MAX;
    if (best > 0) ranks[best - 1] = rank_at(best - 1);
  }
  out.insert(out.end(), symbols.begin(), symbols.begin() + n);
}

void Tokenizer::Impl::bpe_long(std::vector<int32_t>& symbols) const {
  // Long words: linked symbols and a heap of candidate merges ordered by (rank, position);
  // entries made stale by earlier merges are skipped when popped.
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  const int32_t n = static_cast<int32_t>(symbols.size());
  std::vector<int32_t> prev(n), next(n);
  std::vector<uint8_t> alive(n, 1);
  for (int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  const auto push = [&](int32_t i) {
    if (i < 0 || next[i] < 0) return;
    if (const MergeMap::Value* v = merges.find(symbols[i], symbols[next[i]])) {
      heap.push({v->rank, i, v->id});
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    if (!alive[top.pos] || next[top.pos] < 0) continue;
    const MergeMap::Value* v = merges.find(symbols[top.pos], symbols[next[top.pos]]);
    if (v == nullptr || v->id != top.id || v->rank != top.rank) continue;
    const int32_t right = next[top.pos];
    symbols[top.pos] = top.id;
    alive[right] = 0;
    next[top.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = top.pos;
    push(prev[top.pos]);
    push(top.pos);
  }
  size_t kept = 0;
  for (int32_t i = 0; i < n; ++i) {
    if (alive[i]) symbols[kept++] = symbols[i];
  }
  symbols.resize(kept);
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  const Impl& impl = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 16);
  PieceCache& cache = thread_scratch().cache_for(impl.uid);
  const auto pre_tokenize = [&](std::string_view normalized) {
    impl.regex->split(normalized,
                      [&](std::string_view piece) { impl.encode_piece(piece, cache, out); });
  };
  const auto push_token = [&](int32_t id) { out.push_back(id); };
  std::string normalized_copy;
  impl.raw_added.split(
      text,
      [&](std::string_view segment, size_t offset) {
        bool needs_nfc = false;
        const size_t bad = check_utf8(segment, needs_nfc);
        NURI_CHECK(bad == std::string_view::npos, "tokenizer: encode: invalid UTF-8 at byte ",
                   offset + bad, " of the input");
        std::string_view normalized = segment;
        if (needs_nfc && impl.model.nfc) {
          normalized_copy = nfc(segment);
          normalized = normalized_copy;
        }
        if (impl.normalized_added.empty()) {
          pre_tokenize(normalized);
        } else {
          impl.normalized_added.split(
              normalized, [&](std::string_view piece, size_t) { pre_tokenize(piece); }, push_token);
        }
      },
      push_token);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  const Impl& impl = *impl_;
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    NURI_CHECK(id >= 0 && id < vocab_size(), "tokenizer: decode: id ", id, " at position ", i,
               " is outside the vocabulary of ", vocab_size(), " tokens");
    if (skip_special && impl.special[id]) continue;
    out += impl.token_bytes[id];
  }
  return out;
}

int32_t Tokenizer::vocab_size() const {
  return static_cast<int32_t>(impl_->token_bytes.size());
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  const auto found = impl_->ids_by_token.find(std::string(token));
  if (found == impl_->ids_by_token.end()) return std::nullopt;
  return found->second;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  NURI_CHECK(id >= 0 && id < vocab_size(), "tokenizer: id ", id, " is outside the vocabulary of ",
             vocab_size(), " tokens");
  const Impl& impl = *impl_;
  if (impl.added[id]) {
    const auto& tokens = impl.model.added_tokens;
    return std::find_if(tokens.begin(), tokens.end(),
                        [&](const AddedToken& t) { return t.id == id; })
        ->content;
  }
  return impl.model.vocab[id];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->special[id] != 0;
}

const TokenizerModel& TokenizerAccess::model(const Tokenizer& tokenizer) {
  return tokenizer.impl_->model;
}

Tokenizer TokenizerAccess::build(TokenizerModel model, const std::string& origin) {
  auto impl = std::make_unique<Tokenizer::Impl>();
  const int32_t base = static_cast<int32_t>(model.vocab.size());
  impl->token_bytes.reserve(model.vocab.size() + model.added_tokens.size());
  for (int32_t id = 0; id < base; ++id) {
    const std::string& token = model.vocab[id];
    NURI_CHECK(!token.empty(), origin, ": model.vocab: token with id ", id, " is empty");
    const bool fresh = impl->ids_by_token.emplace(token, id).second;
    NURI_CHECK(fresh, origin, ": model.vocab: token '", token, "' appears twice");
    impl->token_bytes.push_back(byte_level_to_bytes(token));
  }
  impl->special.assign(base, 0);
  impl->added.assign(base, 0);

  // Byte tokens: the single characters of the byte-level alphabet.
  const auto& chars = byte_level_chars();
  for (int b = 0; b < 256; ++b) {
    const auto found = impl->ids_by_token.find(chars[b]);
    impl->byte_ids[b] = found == impl->ids_by_token.end() ? -1 : found->second;
  }

  // Merges: both parts and their concatenation must be tokens.
  std::vector<int32_t> merged_ids(model.merges.size());
  for (size_t rank = 0; rank < model.merges.size(); ++rank) {
    const auto [a, b] = model.merges[rank];
    NURI_CHECK(a >= 0 && a < base && b >= 0 && b < base, origin, ": model.merges[", rank,
               "] names a token outside the vocabulary");
    const std::string joined = model.vocab[a] + model.vocab[b];
    const auto found = impl->ids_by_token.find(joined);
    NURI_CHECK(found != impl->ids_by_token.end(), origin, ": model.merges[", rank, "] ('",
               model.vocab[a], "' '", model.vocab[b], "') makes '", joined,
               "', which is not in model.vocab");
    merged_ids[rank] = found->second;
  }
  impl->merges.build(model.merges, merged_ids);
  if (model.ignore_merges) {
    for (int32_t id = 0; id < base; ++id) impl->ids_by_bytes.emplace(impl->token_bytes[id], id);
  }

  // Added tokens take their vocabulary id when the model has them, else the next free id.
  for (size_t i = 0; i < model.added_tokens.size(); ++i) {
    AddedToken& token = model.added_tokens[i];
    NURI_CHECK(!token.content.empty(), origin, ": added_tokens[", i, "].content is empty");
    bool needs_nfc = false;
    NURI_CHECK(check_utf8(token.content, needs_nfc) == std::string_view::npos, origin,
               ": added_tokens[", i, "].content is not valid UTF-8");
    const auto found = impl->ids_by_token.find(token.content);
    const int32_t expected = found != impl->ids_by_token.end()
                                 ? found->second
                                 : static_cast<int32_t>(impl->token_bytes.size());
    NURI_CHECK(token.id == expected, origin, ": added_tokens[", i, "] ('", token.content,
               "') has id ", token.id, " but its place gives it id ", expected);
    // A normalized token stands for its normalized text, and decodes to it.
    std::string text = token.normalized && model.nfc ? nfc(token.content) : token.content;
    if (found == impl->ids_by_token.end()) {
      impl->ids_by_token.emplace(token.content, token.id);
      impl->token_bytes.push_back(std::move(text));
      impl->special.push_back(0);
      impl->added.push_back(0);
    } else {
      impl->token_bytes[token.id] = std::move(text);
    }
    impl->special[token.id] = token.special;
    impl->added[token.id] = 1;
  }

  impl->regex = std::make_unique<Regex>(model.pattern, origin + ": pre_tokenizer Split pattern");
  impl->model = std::move(model);
  for (const AddedToken& token : impl->model.added_tokens) {
    AddedMatcher& matcher = token.normalized ? impl->normalized_added : impl->raw_added;
    matcher.add(impl->token_bytes[token.id], token);
  }
  return Tokenizer(std::move(impl));
}

}  // namespace nuri
