#include "decoder/kv_cache.h"

#include "kernels/autograd.h"
#include "kernels/ops/shape.h"

namespace nuri {

KvCache::KvCache(const DecoderConfig& config, int64_t batch, int64_t capacity, const Device& device)
    : batch_(batch), capacity_(capacity) {
  config.validate();
  NURI_CHECK(batch > 0, "KV cache: batch must be positive, got ", batch);
  NURI_CHECK(capacity > 0, "KV cache: capacity must be positive, got ", capacity);
  const Shape shape = {batch, capacity, config.num_key_value_heads, config.resolved_head_dim()};
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    keys_.push_back(Tensor::empty(shape, DType::f32, device));
    values_.push_back(Tensor::empty(shape, DType::f32, device));
  }
}

void KvCache::truncate(int64_t length) {
  NURI_CHECK(length >= 0 && length <= length_, "KV cache: cannot truncate to ", length,
             " tokens; it holds ", length_);
  length_ = length;
}

std::pair<Tensor, Tensor> KvCache::append(int layer, const Tensor& k, const Tensor& v) {
  NURI_CHECK(layer >= 0 && layer < static_cast<int>(keys_.size()), "KV cache: layer ", layer,
             " out of range for ", keys_.size(), " layers");
  const Tensor& cache_k = keys_[layer];
  const int64_t hkv = cache_k.size(2), dim = cache_k.size(3);
  NURI_CHECK(k.dim() == 4 && k.size(0) == batch_ && k.size(2) == hkv && k.size(3) == dim &&
                 v.shape() == k.shape(),
             "KV cache: keys ", shape_str(k.shape()), " and values ", shape_str(v.shape()),
             " do not match [", batch_, ", T, ", hkv, ", ", dim, "]");
  NURI_CHECK(k.device() == cache_k.device() && v.device() == cache_k.device(), "KV cache: keys on ",
             k.device(), " and values on ", v.device(), " for a cache on ", cache_k.device());
  const int64_t t = k.size(1), end = length_ + t;
  NURI_CHECK(end <= capacity_, "KV cache: ", t, " new tokens do not fit (", length_, " of ",
             capacity_, " used)");
  NoGradScope no_grad;
  const auto store = [&](const Tensor& cache, const Tensor& fresh) {
    // Each sequence's rows [length, end) of [capacity, Hkv * D].
    for (int64_t b = 0; b < batch_; ++b) {
      cache.outer_slice(b, b + 1)
          .view({capacity_, hkv * dim})
          .outer_slice(length_, end)
          .copy_from(fresh.outer_slice(b, b + 1).view({t, hkv * dim}));
    }
    // One sequence reads its prefix in place; several need their prefixes packed together.
    if (batch_ == 1)
      return cache.view({capacity_, hkv, dim}).outer_slice(0, end).view({1, end, hkv, dim});
    return slice(cache, 1, 0, end);
  };
  return {store(cache_k, k), store(values_[layer], v)};
}

void KvCache::commit(int64_t new_tokens) {
  NURI_CHECK(new_tokens >= 0 && length_ + new_tokens <= capacity_, "KV cache: cannot commit ",
             new_tokens, " tokens (", length_, " of ", capacity_, " used)");
  length_ += new_tokens;
}

}  // namespace nuri
