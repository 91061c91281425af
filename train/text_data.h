// Text data for language-model training: documents tokenized once into packed shards of token
// ids (cached on disk and reused while the sources and the tokenizer are unchanged), and a loader
// that cuts the stream into fixed-length windows and visits them in a seeded order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "encoders/tokenizer.h"
#include "kernels/tensor.h"
#include "train/shuffled_order.h"

namespace nuri {

// One split's tokens: every document's ids followed by <|endoftext|>, documents in file order.
struct TokenStream {
  std::vector<int32_t> tokens;
  int64_t documents = 0;
};

// Tokenizes `files` (documents are separated by blank lines) into shards under `shard_dir`,
// named by `split`, or reads them back when the cache matches the files and the tokenizer.
// Encoding runs on several threads; the shards are written atomically.
TokenStream load_token_stream(const std::vector<std::string>& files, const Tokenizer& tokenizer,
                              const std::string& shard_dir, const std::string& split);

// Input ids and next-token targets, both i32 [batch, seq_len].
struct Batch {
  Tensor ids;
  Tensor targets;
};

// Non-overlapping windows of seq_len + 1 tokens over a stream. Training order: a permutation of
// the windows per epoch, drawn from the seed, so a position (samples consumed) fixes the future.
class WindowLoader {
 public:
  WindowLoader(const TokenStream& stream, int64_t seq_len, uint64_t seed);

  int64_t windows() const { return windows_; }
  // Training batch of `batch` windows starting at sample `position` (in shuffled order).
  Batch shuffled_batch(int64_t position, int64_t batch) const;
  // Evaluation batch: `count` windows in stream order from window `first`.
  Batch ordered_batch(int64_t first, int64_t count) const;

 private:
  Batch gather(const std::vector<int64_t>& windows) const;

  const TokenStream& stream_;
  int64_t seq_len_, windows_;
  ShuffledOrder order_;
};

// Mean cross-entropy (nats) of a unigram model fitted to `train` with add-one smoothing, on the
// targets of `valid`'s first `windows` windows: the baseline a language model must beat.
double unigram_loss(const TokenStream& train, const TokenStream& valid, int64_t vocab_size,
                    int64_t seq_len, int64_t windows);

}  // namespace nuri
