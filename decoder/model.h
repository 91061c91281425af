// The decoder backbone: a pre-norm transformer (RMSNorm, rotate-half RoPE, grouped-query
// attention, SwiGLU MLP, optionally tied embeddings) whose parameters carry the Hugging Face
// Llama/Qwen2 names (model.embed_tokens.weight, model.layers.N.self_attn.q_proj.weight, ...,
// model.norm.weight, lm_head.weight).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "decoder/config.h"
#include "decoder/kv_cache.h"
#include "kernels/ops/random.h"
#include "kernels/parameter.h"
#include "kernels/tensor.h"

namespace nuri {

// Positions start .. start + count - 1 as i32 [count]: the rotary positions of `count` tokens that
// continue a sequence of `start` tokens.
Tensor position_ids(int64_t start, int64_t count);

class Decoder {
 public:
  // Allocates every parameter (f32, CPU) for `config`; call init() or load() next, then to().
  explicit Decoder(const DecoderConfig& config);

  const DecoderConfig& config() const { return config_; }
  // Every trainable parameter, each requiring grad. Stable order and names.
  std::vector<NamedParameter>& parameters() { return parameters_; }
  const std::vector<NamedParameter>& parameters() const { return parameters_; }
  Tensor& parameter(const std::string& name);

  // Normal(0, initializer_range) weights from the counter-based generator, ones for the norms.
  void init(Generator& generator);
  // Reads every parameter from a safetensors file; a missing, extra or mis-shaped tensor is an
  // error naming it. Tied checkpoints may omit lm_head.weight.
  void load(const std::string& safetensors_path);
  // Writes every parameter to a safetensors file atomically.
  void save(const std::string& safetensors_path) const;
  // Moves every parameter to `device`; inputs on another device are moved to it in forward.
  void to(const Device& device) { move_parameters(parameters_, device); }
  Device device() const { return parameters_.front().tensor.device(); }

  // Logits [B, T, V] (f32) for ids [B, T] (i32 or i64). Without a cache the positions are 0..T-1;
  // with one, they continue from cache->length() and the new keys and values are appended. The
  // cached path is inference only: it records nothing on the autograd tape.
  Tensor forward(const Tensor& ids, KvCache* cache = nullptr) const;
  // The final hidden states [B, T, D] (after the last norm) for input embeddings [B, T, D] and
  // explicit positions ([T] or [B, T]); used by the omni model, which builds its own embeddings.
  Tensor forward_hidden(const Tensor& embeddings, const Tensor& positions,
                        KvCache* cache = nullptr) const;
  // Token embeddings [B, T, D] for ids [B, T].
  Tensor embed(const Tensor& ids) const;
  // Logits [.., V] from hidden states [.., D].
  Tensor logits(const Tensor& hidden) const;
  // Mean next-token cross-entropy: logits of ids [B, T] against targets [B, T]; targets equal to
  // -100 are ignored.
  Tensor loss(const Tensor& ids, const Tensor& targets) const;

 private:
  // Positions in parameters_ of one block's tensors.
  struct Block {
    size_t input_norm, q, k, v, o, post_norm, gate, up, down;
  };
  // Appends a parameter of `shape` and returns its position.
  size_t add_parameter(const std::string& name, const Shape& shape);
  const Tensor& at(size_t index) const { return parameters_[index].tensor; }

  DecoderConfig config_;
  std::vector<NamedParameter> parameters_;
  size_t embed_ = 0, norm_ = 0, lm_head_ = 0;  // lm_head_ == embed_ when tied
  std::vector<Block> blocks_;
};

}  // namespace nuri
