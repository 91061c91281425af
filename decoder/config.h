// Size and shape of the decoder backbone. The JSON keys are those of a Hugging Face Llama/Qwen2
// config.json, so a checkpoint is readable by anyone who knows that convention.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>

namespace nuri {

struct DecoderConfig {
  int64_t vocab_size = 8192;
  int64_t hidden_size = 256;
  int64_t intermediate_size = 768;
  int64_t num_hidden_layers = 4;
  int64_t num_attention_heads = 4;
  int64_t num_key_value_heads = 2;
  int64_t head_dim = 0;  // 0 means hidden_size / num_attention_heads
  int64_t max_position_embeddings = 2048;
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.0f;
  float initializer_range = 0.02f;
  bool tie_word_embeddings = true;
  // Multimodal RoPE (Qwen2-VL's rope_scaling.mrope_section): how many of the head_dim/2
  // frequencies follow the temporal, height and width position streams. All zero: plain RoPE.
  std::array<int64_t, 3> mrope_section = {0, 0, 0};
  int64_t bos_token_id = -1;  // -1: none
  int64_t eos_token_id = -1;

  bool uses_mrope() const { return mrope_section[0] + mrope_section[1] + mrope_section[2] > 0; }
  int64_t resolved_head_dim() const {
    return head_dim ? head_dim : hidden_size / num_attention_heads;
  }
  // Throws nuri::Error naming the field when sizes disagree (heads not dividing, and so on).
  void validate() const;
  // Parameter count (tied embeddings counted once).
  int64_t parameter_count() const;

  // Reads the keys above; an unknown or ill-typed key is an error naming it, except the
  // Hugging Face bookkeeping keys (architectures, model_type, torch_dtype, ...), which are read
  // and ignored.
  static DecoderConfig from_json(const nlohmann::json& json);
  // A complete Hugging Face config.json ("architectures": ["LlamaForCausalLM"], ...).
  nlohmann::json to_json() const;
};

}  // namespace nuri
