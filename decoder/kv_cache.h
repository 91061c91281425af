// Keys and values of past tokens, per layer, so that generation runs one new token at a time.
#pragma once

#include <cstdint>
#include <vector>

#include "decoder/config.h"
#include "kernels/tensor.h"

namespace nuri {

class KvCache {
 public:
  // Room for `capacity` tokens of `batch` sequences, on `device` (the model's).
  KvCache(const DecoderConfig& config, int64_t batch, int64_t capacity,
          const Device& device = Device::cpu());

  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }
  int64_t batch() const { return batch_; }
  Device device() const { return keys_.front().device(); }
  // Forgets every token (a new conversation).
  void reset() { length_ = 0; }
  // Keeps the first `length` tokens (a cancelled or rewound turn).
  void truncate(int64_t length);

  // Appends k, v [B, Tnew, Hkv, D] for `layer` and returns the keys and values [B, length+Tnew,
  // Hkv, D] to attend over. The cache's length advances once every layer has appended (commit).
  std::pair<Tensor, Tensor> append(int layer, const Tensor& k, const Tensor& v);
  void commit(int64_t new_tokens);

 private:
  int64_t batch_, capacity_, length_ = 0;
  std::vector<Tensor> keys_, values_;
};

}  // namespace nuri
