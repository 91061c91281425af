// Learning a byte-level BPE from text files: NFC and pre-tokenization in parallel over chunks,
// then merges chosen by pair count with incremental updates (pair → count, pair → words, and a
// priority queue whose stale entries are refreshed when popped). Merges never join part of a
// UTF-8 character with bytes of another character, so Hangul syllables stay whole.
#include <omp.h>
#include <utf8proc.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <mutex>
#include <queue>
#include <sstream>
#include <unordered_map>

#include "encoders/tokenizer.h"
#include "encoders/tokenizer_model.h"
#include "kernels/error.h"

namespace nuri {

namespace {

constexpr size_t kChunkBytes = size_t{1} << 20;

// A stretch of one input file that pre-tokenizes the same alone as inside the whole file.
struct Chunk {
  const std::string* file_name;
  std::string_view text;
  size_t offset;  // in the file
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  NURI_CHECK(in, "tokenizer train: cannot open input ", path, ": ", std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  NURI_CHECK(!in.bad(), "tokenizer train: reading input ", path, " failed");
  return text.str();
}

// Whether a chunk may end just before byte i: right after a newline and before a character
// that is not white space, so that no pre-token and no NFC composition spans the cut.
bool cut_point(std::string_view text, size_t i) {
  if (i == 0 || i >= text.size() || text[i - 1] != '\n') return false;
  utf8proc_int32_t c = 0;
  const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + i),
                                  static_cast<utf8proc_ssize_t>(text.size() - i), &c);
  return n > 0 && !is_white_space(static_cast<uint32_t>(c));
}

// Splits a file into chunks of about kChunkBytes at cut points that depend on the text only,
// so the counts do not depend on the number of threads.
void add_chunks(const std::string& name, std::string_view text, std::vector<Chunk>& chunks) {
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = std::min(text.size(), begin + kChunkBytes);
    while (end < text.size() && !cut_point(text, end)) ++end;
    chunks.push_back({&name, text.substr(begin, end - begin), begin});
    begin = end;
  }
}

// Calls `piece` for each stretch of `text` between occurrences of the special tokens.
template <class F>
void without_specials(std::string_view text, const std::vector<std::string>& specials, F&& piece) {
  size_t done = 0;
  while (done < text.size()) {
    size_t hit = std::string_view::npos;
    size_t length = 0;
    for (const std::string& s : specials) {
      const size_t at = text.find(s, done);
      if (at < hit || (at == hit && at != std::string_view::npos && s.size() > length)) {
        hit = at;
        length = s.size();
      }
    }
    if (hit == std::string_view::npos) break;
    if (hit > done) piece(text.substr(done, hit - done), done);
    done = hit + length;
  }
  if (done < text.size()) piece(text.substr(done), done);
}

using Counts = std::unordered_map<std::string, uint64_t>;

// Distinct pre-tokens of all inputs with their counts, sorted by bytes.
std::vector<std::pair<std::string, uint64_t>> count_pre_tokens(const TokenizerTrainOptions& options,
                                                               const Regex& regex) {
  std::vector<std::string> files;
  files.reserve(options.inputs.size());
  for (const std::string& path : options.inputs) files.push_back(read_file(path));
  std::vector<Chunk> chunks;
  for (size_t f = 0; f < files.size(); ++f) add_chunks(options.inputs[f], files[f], chunks);

  const int threads = options.threads > 0 ? options.threads : omp_get_max_threads();
  std::vector<Counts> counts(static_cast<size_t>(threads));
  std::exception_ptr error;
  std::mutex error_mutex;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (size_t c = 0; c < chunks.size(); ++c) {
    try {
      Counts& local = counts[static_cast<size_t>(omp_get_thread_num())];
      const Chunk& chunk = chunks[c];
      without_specials(chunk.text, options.special_tokens, [&](std::string_view part, size_t at) {
        bool needs_nfc = false;
        const size_t bad = check_utf8(part, needs_nfc);
        NURI_CHECK(bad == std::string_view::npos, "tokenizer train: ", *chunk.file_name,
                   ": invalid UTF-8 at byte ", chunk.offset + at + bad);
        const std::string normalized = needs_nfc ? nfc(part) : std::string();
        regex.split(needs_nfc ? std::string_view(normalized) : part,
                    [&](std::string_view word) { ++local[std::string(word)]; });
      });
    } catch (...) {
      const std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);

  Counts& total = counts[0];
  for (size_t t = 1; t < counts.size(); ++t) {
    for (auto& [word, n] : counts[t]) total[word] += n;
    Counts().swap(counts[t]);
  }
  std::vector<std::pair<std::string, uint64_t>> words(total.begin(), total.end());
  std::sort(words.begin(), words.end());
  return words;
}

uint64_t pack(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

// The merge loop's state: tokens, words as token sequences, and the pair statistics.
class BpeLearner {
 public:
  explicit BpeLearner(const std::vector<std::pair<std::string, uint64_t>>& counted) {
    for (int b = 0; b < 256; ++b) add_token(std::string(1, static_cast<char>(b)));
    words_.reserve(counted.size());
    for (const auto& [text, count] : counted) {
      Word word;
      word.count = count;
      word.symbols.reserve(text.size());
      for (char c : text) word.symbols.push_back(static_cast<uint8_t>(c));
      words_.push_back(std::move(word));
    }
    for (uint32_t w = 0; w < words_.size(); ++w) add_pairs(w, +1);
    for (const auto& [pair, stats] : pairs_) {
      if (stats.count > 0) queue_.push({stats.count, pair});
    }
  }

  // Learns merges until there are `target` tokens or no pair is seen `min_frequency` times.
  void learn(size_t target, uint64_t min_frequency, bool progress) {
    const size_t total = target > tokens_.size() ? target - tokens_.size() : 0;
    while (tokens_.size() < target && !queue_.empty()) {
      const Entry top = queue_.top();
      queue_.pop();
      const auto found = pairs_.find(top.pair);
      const uint64_t current = found == pairs_.end() ? 0 : found->second.count;
      if (current != top.count) {  // stale: counts only fall, so requeue the true count
        if (current > 0) queue_.push({current, top.pair});
        continue;
      }
      if (current < min_frequency) break;
      merge(top.pair);
      if (progress && merges_.size() % 256 == 0) {
        std::fprintf(stderr, "\rtokenizer: merges %zu/%zu", tokens_.size() - 256, total);
      }
    }
    if (progress)
      std::fprintf(stderr, "\rtokenizer: merges %zu/%zu done\n", tokens_.size() - 256, total);
  }

  const std::vector<std::string>& tokens() const { return tokens_; }
  const std::vector<std::pair<int32_t, int32_t>>& merges() const { return merges_; }

 private:
  struct Word {
    std::vector<int32_t> symbols;
    uint64_t count = 0;
  };
  struct PairStats {
    uint64_t count = 0;
    std::vector<uint32_t> words;  // may hold repeats and words that lost the pair
  };
  struct Entry {
    uint64_t count;
    uint64_t pair;
    // Highest count first; on equal counts the smaller pair of ids.
    bool operator<(const Entry& o) const {
      return count != o.count ? count < o.count : pair > o.pair;
    }
  };

  int32_t add_token(std::string bytes) {
    const auto found = ids_.find(bytes);
    if (found != ids_.end()) return found->second;
    const int32_t id = static_cast<int32_t>(tokens_.size());
    shapes_.push_back(utf8_shape(bytes));
    ids_.emplace(bytes, id);
    tokens_.push_back(std::move(bytes));
    return id;
  }

  // Whole characters join whole characters; the start of a character takes its next byte.
  bool mergeable(int32_t a, int32_t b) const {
    const Utf8Shape left = shapes_[a];
    const Utf8Shape right = shapes_[b];
    return (left == Utf8Shape::kWhole && right == Utf8Shape::kWhole) ||
           (left == Utf8Shape::kPrefix && right == Utf8Shape::kContinuation);
  }

  // Adds (sign +1) or removes (sign -1) the pairs of word w to the counts; with `index`, also
  // records w under each pair that holds `index_token`.
  void add_pairs(uint32_t w, int sign, int32_t index_token = -2) {
    const Word& word = words_[w];
    for (size_t i = 0; i + 1 < word.symbols.size(); ++i) {
      const int32_t a = word.symbols[i];
      const int32_t b = word.symbols[i + 1];
      if (!mergeable(a, b)) continue;
      PairStats& stats = pairs_[pack(a, b)];
      if (sign > 0) {
        stats.count += word.count;
        if (index_token == -2 || a == index_token || b == index_token) {
          if (stats.words.empty() || stats.words.back() != w) stats.words.push_back(w);
          if (index_token != -2) touched_.push_back(pack(a, b));
        }
      } else {
        stats.count -= word.count;
      }
    }
  }

  void merge(uint64_t pair) {
    const int32_t a = static_cast<int32_t>(pair >> 32);
    const int32_t b = static_cast<int32_t>(pair & 0xFFFFFFFFu);
    const int32_t merged = add_token(tokens_[a] + tokens_[b]);
    merges_.emplace_back(a, b);
    std::vector<uint32_t> affected = std::move(pairs_[pair].words);
    pairs_[pair].words.clear();
    std::sort(affected.begin(), affected.end());
    affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
    touched_.clear();
    for (uint32_t w : affected) {
      std::vector<int32_t>& symbols = words_[w].symbols;
      bool present = false;
      for (size_t i = 0; i + 1 < symbols.size() && !present; ++i) {
        present = symbols[i] == a && symbols[i + 1] == b;
      }
      if (!present) continue;
      add_pairs(w, -1);
      size_t out = 0;
      for (size_t i = 0; i < symbols.size(); ++i) {
        if (i + 1 < symbols.size() && symbols[i] == a && symbols[i + 1] == b) {
          symbols[out++] = merged;
          ++i;
        } else {
          symbols[out++] = symbols[i];
        }
      }
      symbols.resize(out);
      add_pairs(w, +1, merged);
    }
    std::sort(touched_.begin(), touched_.end());
    touched_.erase(std::unique(touched_.begin(), touched_.end()), touched_.end());
    for (uint64_t p : touched_) {
      const uint64_t count = pairs_[p].count;
      if (count > 0) queue_.push({count, p});
    }
  }

  std::vector<std::string> tokens_;
  std::vector<Utf8Shape> shapes_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<Word> words_;
  std::unordered_map<uint64_t, PairStats> pairs_;
  std::priority_queue<Entry> queue_;
  std::vector<std::pair<int32_t, int32_t>> merges_;
  std::vector<uint64_t> touched_;
};

}  // namespace

Tokenizer train_tokenizer(const TokenizerTrainOptions& options) {
  NURI_CHECK(!options.inputs.empty(), "tokenizer train: no input files");
  NURI_CHECK(options.threads >= 0, "tokenizer train: threads must be 0 or more, not ",
             options.threads);
  NURI_CHECK(options.min_frequency >= 1, "tokenizer train: min_frequency must be 1 or more, not ",
             options.min_frequency);
  const int64_t fixed = 256 + static_cast<int64_t>(options.special_tokens.size());
  NURI_CHECK(options.vocab_size >= fixed, "tokenizer train: vocab_size ", options.vocab_size,
             " is smaller than the 256 byte tokens plus ", options.special_tokens.size(),
             " special tokens");
  for (size_t i = 0; i < options.special_tokens.size(); ++i) {
    NURI_CHECK(!options.special_tokens[i].empty(), "tokenizer train: special token ", i,
               " is empty");
    for (size_t j = 0; j < i; ++j) {
      NURI_CHECK(options.special_tokens[i] != options.special_tokens[j],
                 "tokenizer train: special token '", options.special_tokens[i], "' is repeated");
    }
  }

  const Regex regex(std::string(kLlama3Pattern), "tokenizer train");
  const auto words = count_pre_tokens(options, regex);
  BpeLearner learner(words);
  learner.learn(
      static_cast<size_t>(options.vocab_size - static_cast<int64_t>(options.special_tokens.size())),
      static_cast<uint64_t>(options.min_frequency), options.progress);

  TokenizerModel model;
  model.vocab.reserve(learner.tokens().size());
  for (const std::string& token : learner.tokens())
    model.vocab.push_back(bytes_to_byte_level(token));
  model.merges = learner.merges();
  int32_t next_id = static_cast<int32_t>(model.vocab.size());
  for (const std::string& content : options.special_tokens) {
    AddedToken token;
    const auto in_vocab = std::find(model.vocab.begin(), model.vocab.end(), content);
    token.id = in_vocab != model.vocab.end() ? static_cast<int32_t>(in_vocab - model.vocab.begin())
                                             : next_id++;
    token.content = content;
    token.special = true;
    token.normalized = false;
    model.added_tokens.push_back(std::move(token));
  }
  return TokenizerAccess::build(std::move(model), "tokenizer train");
}

}  // namespace nuri
