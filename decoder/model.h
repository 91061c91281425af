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
#include "kernels/tensor.h"

namespace nuri {

// A named parameter, in the order that checkpoints list them.
struct NamedParameter {
  std::string name;
  Tensor tensor;
};

class Decoder {
 public:
  // Allocates every parameter (f32, CPU) for `config`; call init() or load() next.
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

  // Logits [B, T, V] (f32) for ids [B, T] (i32 or i64). Without a cache the positions are 0..T-1;
  // with one, they continue from cache->length() and the new keys and values are appended.
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
  DecoderConfig config_;
  std::vector<NamedParameter> parameters_;
};

}  // namespace nuri
