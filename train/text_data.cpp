#include "train/text_data.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kernels/error.h"
#include "kernels/log.h"
#include "train/files.h"

namespace nuri {

namespace fs = std::filesystem;

namespace {

constexpr int kShardFormat = 1;
constexpr int64_t kShardTokens = int64_t{1} << 26;  // 256 MiB of i32 per shard

// The documents of a text file: runs of lines separated by blank lines.
std::vector<std::string> read_documents(const std::string& path) {
  const std::string text = read_file(path);
  std::vector<std::string> documents;
  std::string current;
  std::istringstream lines(text);
  std::string line;
  auto flush = [&] {
    if (!current.empty()) documents.push_back(std::move(current));
    current.clear();
  };
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) {
      flush();
    } else {
      if (!current.empty()) current += '\n';
      current += line;
    }
  }
  flush();
  return documents;
}

// What the cache must match: the tokenizer and each source's size and modification time.
nlohmann::json cache_key(const std::vector<std::string>& files, const Tokenizer& tokenizer) {
  nlohmann::json sources = nlohmann::json::array();
  for (const auto& file : files) {
    std::error_code error;
    const auto size = fs::file_size(file, error);
    NURI_CHECK(!error, "data file ", file, ": ", error.message());
    const auto mtime = fs::last_write_time(file).time_since_epoch().count();
    sources.push_back({{"path", fs::absolute(file).string()}, {"bytes", size}, {"mtime", mtime}});
  }
  return {{"format", kShardFormat},
          {"tokenizer_fnv1a", fnv1a_hex(tokenizer.to_json())},
          {"sources", sources}};
}

// Reads cached shards back, or returns false when they are missing, stale or damaged.
bool read_cache(const fs::path& index_path, const nlohmann::json& key, TokenStream& stream) {
  if (!fs::exists(index_path)) return false;
  try {
    const auto index = nlohmann::json::parse(read_file(index_path.string()));
    if (index.at("key") != key) return false;
    stream.documents = index.at("documents");
    stream.tokens.resize(index.at("tokens").get<size_t>());
    size_t filled = 0;
    for (const auto& shard : index.at("shards")) {
      const auto path = index_path.parent_path() / shard.at("file").get<std::string>();
      const size_t count = shard.at("tokens");
      NURI_CHECK(filled + count <= stream.tokens.size(), "more shard tokens than the index says");
      NURI_CHECK(fs::file_size(path) == count * sizeof(int32_t), "shard ", path.string(),
                 " has the wrong size");
      std::ifstream in(path, std::ios::binary);
      in.read(reinterpret_cast<char*>(stream.tokens.data() + filled), count * sizeof(int32_t));
      NURI_CHECK(in.good(), "cannot read shard ", path.string());
      filled += count;
    }
    NURI_CHECK(filled == stream.tokens.size(), "shards hold fewer tokens than the index says");
    return true;
  } catch (const std::exception& e) {
    log_warn("token cache ", index_path.string(), " is unusable (", e.what(), "); rebuilding it");
    stream = {};
    return false;
  }
}

}  // namespace

TokenStream load_token_stream(const std::vector<std::string>& files, const Tokenizer& tokenizer,
                              const std::string& shard_dir, const std::string& split) {
  NURI_CHECK(!files.empty(), "data split '", split, "' names no files");
  const auto end_of_text = tokenizer.token_to_id("<|endoftext|>");
  NURI_CHECK(end_of_text, "the tokenizer has no <|endoftext|> token to separate documents");
  const nlohmann::json key = cache_key(files, tokenizer);
  const fs::path index_path = fs::path(shard_dir) / (split + "-index.json");
  TokenStream stream;
  if (read_cache(index_path, key, stream)) {
    log_info("data ", split, ": ", stream.tokens.size(), " tokens in ", stream.documents,
             " documents (cached in ", shard_dir, ")");
    return stream;
  }

  std::vector<std::string> documents;
  for (const auto& file : files) {
    auto more = read_documents(file);
    documents.insert(documents.end(), std::make_move_iterator(more.begin()),
                     std::make_move_iterator(more.end()));
  }
  NURI_CHECK(!documents.empty(), "data split '", split, "': the files hold no text");
  std::vector<std::vector<int32_t>> encoded(documents.size());
#pragma omp parallel for schedule(dynamic, 16)
  for (size_t i = 0; i < documents.size(); ++i) encoded[i] = tokenizer.encode(documents[i]);
  for (auto& ids : encoded) {
    stream.tokens.insert(stream.tokens.end(), ids.begin(), ids.end());
    stream.tokens.push_back(*end_of_text);
  }
  stream.documents = static_cast<int64_t>(documents.size());

  fs::create_directories(shard_dir);
  nlohmann::json shards = nlohmann::json::array();
  for (int64_t start = 0, n = 0; start < static_cast<int64_t>(stream.tokens.size());
       start += kShardTokens, ++n) {
    const int64_t count = std::min<int64_t>(kShardTokens, stream.tokens.size() - start);
    char name[64];
    std::snprintf(name, sizeof(name), "%s-%05lld.bin", split.c_str(), static_cast<long long>(n));
    write_file_atomic((fs::path(shard_dir) / name).string(),
                      std::string_view(reinterpret_cast<const char*>(stream.tokens.data() + start),
                                       count * sizeof(int32_t)));
    shards.push_back({{"file", name}, {"tokens", count}});
  }
  const nlohmann::json index = {{"key", key},
                                {"documents", stream.documents},
                                {"tokens", stream.tokens.size()},
                                {"shards", shards}};
  write_file_atomic(index_path.string(), index.dump(1));
  log_info("data ", split, ": ", stream.tokens.size(), " tokens in ", stream.documents,
           " documents, tokenized into ", shard_dir);
  return stream;
}

namespace {

// Whole windows of seq_len + 1 tokens (overlapping by one) in a stream; at least one.
int64_t window_count(const TokenStream& stream, int64_t seq_len) {
  const int64_t windows = (static_cast<int64_t>(stream.tokens.size()) - 1) / seq_len;
  NURI_CHECK(windows > 0, "data: ", stream.tokens.size(),
             " tokens are too few for one window of seq_len + 1 = ", seq_len + 1);
  return windows;
}

}  // namespace

WindowLoader::WindowLoader(const TokenStream& stream, int64_t seq_len, uint64_t seed)
    : stream_(stream),
      seq_len_(seq_len),
      windows_(window_count(stream, seq_len)),
      order_(windows_, seed) {}

Batch WindowLoader::gather(const std::vector<int64_t>& windows) const {
  const int64_t batch = static_cast<int64_t>(windows.size());
  Batch out{Tensor::empty({batch, seq_len_}, DType::i32),
            Tensor::empty({batch, seq_len_}, DType::i32)};
  int32_t* ids = out.ids.data<int32_t>();
  int32_t* targets = out.targets.data<int32_t>();
  for (int64_t b = 0; b < batch; ++b) {
    const int32_t* window = stream_.tokens.data() + windows[b] * seq_len_;
    std::copy(window, window + seq_len_, ids + b * seq_len_);
    std::copy(window + 1, window + seq_len_ + 1, targets + b * seq_len_);
  }
  return out;
}

Batch WindowLoader::shuffled_batch(int64_t position, int64_t batch) const {
  std::vector<int64_t> windows(batch);
  for (int64_t b = 0; b < batch; ++b) windows[b] = order_.at(position + b);
  return gather(windows);
}

Batch WindowLoader::ordered_batch(int64_t first, int64_t count) const {
  NURI_CHECK(first >= 0 && first + count <= windows_, "evaluation windows ", first, "..",
             first + count, " outside the ", windows_, " held-out windows");
  std::vector<int64_t> windows(count);
  for (int64_t b = 0; b < count; ++b) windows[b] = first + b;
  return gather(windows);
}

double unigram_loss(const TokenStream& train, const TokenStream& valid, int64_t vocab_size,
                    int64_t seq_len, int64_t windows) {
  std::vector<double> counts(vocab_size, 1.0);
  for (int32_t id : train.tokens) {
    NURI_CHECK(id >= 0 && id < vocab_size, "token id ", id, " outside the vocabulary of ",
               vocab_size);
    counts[id] += 1.0;
  }
  const double total = static_cast<double>(train.tokens.size()) + static_cast<double>(vocab_size);
  const int64_t available = (static_cast<int64_t>(valid.tokens.size()) - 1) / seq_len;
  windows = std::min(windows, available);
  NURI_CHECK(windows > 0, "held-out data too short for one window of ", seq_len + 1, " tokens");
  double loss = 0;
  for (int64_t w = 0; w < windows; ++w) {
    for (int64_t t = 1; t <= seq_len; ++t)
      loss -= std::log(counts[valid.tokens[w * seq_len + t]] / total);
  }
  return loss / static_cast<double>(windows * seq_len);
}

}  // namespace nuri
