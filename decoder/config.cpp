#include "decoder/config.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "kernels/error.h"

namespace nuri {

namespace {

// Keys a Hugging Face config.json carries that say nothing about the shapes nuri builds.
const std::set<std::string>& bookkeeping_keys() {
  static const std::set<std::string> keys = {"architectures",
                                             "model_type",
                                             "torch_dtype",
                                             "transformers_version",
                                             "hidden_act",
                                             "attention_bias",
                                             "attention_dropout",
                                             "mlp_bias",
                                             "pretraining_tp",
                                             "use_cache",
                                             "use_sliding_window",
                                             "sliding_window",
                                             "max_window_layers",
                                             "pad_token_id",
                                             "dtype",
                                             "layer_types"};
  return keys;
}

template <class T>
void read(const nlohmann::json& json, const std::string& key, T& out) {
  const auto& value = json.at(key);
  if constexpr (std::is_same_v<T, bool>) {
    NURI_CHECK(value.is_boolean(), "config key '", key, "': expected true or false, got ",
               value.dump());
    out = value.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    NURI_CHECK(value.is_number_integer(), "config key '", key, "': expected an integer, got ",
               value.dump());
    out = value.get<T>();
  } else {
    NURI_CHECK(value.is_number(), "config key '", key, "': expected a number, got ", value.dump());
    out = value.get<T>();
  }
}

// rope_scaling: null, {"type": "default"}, or {"type": "mrope", "mrope_section": [t, h, w]}
// ("rope_type" is accepted for "type", as Hugging Face writes both).
void read_rope_scaling(const nlohmann::json& value, DecoderConfig& c) {
  if (value.is_null()) return;
  NURI_CHECK(value.is_object(), "config key 'rope_scaling': expected an object or null, got ",
             value.dump());
  std::string type = "default";
  for (const auto& [key, field] : value.items()) {
    if (key == "type" || key == "rope_type") {
      NURI_CHECK(field == "default" || field == "mrope", "config key 'rope_scaling.", key,
                 "': only \"default\" and \"mrope\" are supported, got ", field.dump());
      type = field.get<std::string>();
    } else if (key == "mrope_section") {
      NURI_CHECK(field.is_array() && field.size() == 3 &&
                     std::all_of(field.begin(), field.end(),
                                 [](const nlohmann::json& x) { return x.is_number_integer(); }),
                 "config key 'rope_scaling.mrope_section': expected three integers, got ",
                 field.dump());
      for (int i = 0; i < 3; ++i) c.mrope_section[i] = field[i].get<int64_t>();
    } else {
      fail("config key 'rope_scaling': unknown key '", key, "'");
    }
  }
  NURI_CHECK((type == "mrope") == c.uses_mrope(),
             "config key 'rope_scaling': \"mrope\" needs a non-zero mrope_section and only it may "
             "carry one");
}

}  // namespace

void DecoderConfig::validate() const {
  auto positive = [](const char* name, int64_t value) {
    NURI_CHECK(value > 0, "decoder config: ", name, " must be positive, got ", value);
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("num_key_value_heads", num_key_value_heads);
  positive("max_position_embeddings", max_position_embeddings);
  NURI_CHECK(head_dim >= 0, "decoder config: head_dim must be 0 (derived) or positive, got ",
             head_dim);
  NURI_CHECK(head_dim != 0 || hidden_size % num_attention_heads == 0,
             "decoder config: hidden_size ", hidden_size,
             " is not divisible by num_attention_heads ", num_attention_heads);
  NURI_CHECK(num_attention_heads % num_key_value_heads == 0, "decoder config: num_attention_heads ",
             num_attention_heads, " is not a multiple of num_key_value_heads ",
             num_key_value_heads);
  NURI_CHECK(resolved_head_dim() % 2 == 0, "decoder config: head dimension ", resolved_head_dim(),
             " must be even for rotary embeddings");
  NURI_CHECK(rms_norm_eps > 0, "decoder config: rms_norm_eps must be positive");
  NURI_CHECK(rope_theta > 0, "decoder config: rope_theta must be positive");
  if (uses_mrope()) {
    NURI_CHECK(
        mrope_section[0] >= 0 && mrope_section[1] >= 0 && mrope_section[2] >= 0 &&
            mrope_section[0] + mrope_section[1] + mrope_section[2] == resolved_head_dim() / 2,
        "decoder config: rope_scaling.mrope_section [", mrope_section[0], ", ", mrope_section[1],
        ", ", mrope_section[2],
        "] must be non-negative and sum to head_dim / 2 = ", resolved_head_dim() / 2);
  }
  NURI_CHECK(bos_token_id < vocab_size && eos_token_id < vocab_size,
             "decoder config: bos/eos token id outside the vocabulary of ", vocab_size);
}

int64_t DecoderConfig::parameter_count() const {
  const int64_t d = hidden_size, hd = resolved_head_dim();
  const int64_t attention = d * num_attention_heads * hd * 2 + d * num_key_value_heads * hd * 2;
  const int64_t mlp = 3 * d * intermediate_size;
  const int64_t layer = attention + mlp + 2 * d;
  const int64_t embeddings = vocab_size * d * (tie_word_embeddings ? 1 : 2);
  return embeddings + num_hidden_layers * layer + d;
}

DecoderConfig DecoderConfig::from_json(const nlohmann::json& json) {
  NURI_CHECK(json.is_object(), "decoder config: expected a JSON object, got ", json.type_name());
  DecoderConfig c;
  for (const auto& [key, value] : json.items()) {
    if (key == "vocab_size")
      read(json, key, c.vocab_size);
    else if (key == "hidden_size")
      read(json, key, c.hidden_size);
    else if (key == "intermediate_size")
      read(json, key, c.intermediate_size);
    else if (key == "num_hidden_layers")
      read(json, key, c.num_hidden_layers);
    else if (key == "num_attention_heads")
      read(json, key, c.num_attention_heads);
    else if (key == "num_key_value_heads")
      read(json, key, c.num_key_value_heads);
    else if (key == "head_dim")
      read(json, key, c.head_dim);
    else if (key == "max_position_embeddings")
      read(json, key, c.max_position_embeddings);
    else if (key == "rms_norm_eps")
      read(json, key, c.rms_norm_eps);
    else if (key == "rope_theta")
      read(json, key, c.rope_theta);
    else if (key == "initializer_range")
      read(json, key, c.initializer_range);
    else if (key == "tie_word_embeddings")
      read(json, key, c.tie_word_embeddings);
    else if (key == "bos_token_id") {
      if (!value.is_null()) read(json, key, c.bos_token_id);
    } else if (key == "eos_token_id") {
      if (!value.is_null()) read(json, key, c.eos_token_id);
    } else if (key == "rope_scaling") {
      read_rope_scaling(value, c);
    } else if (key == "hidden_act") {
      NURI_CHECK(value == "silu",
                 "config key 'hidden_act': only \"silu\" (SwiGLU) is supported, got ",
                 value.dump());
    } else if (!bookkeeping_keys().count(key)) {
      fail("decoder config: unknown key '", key, "'");
    }
  }
  c.validate();
  return c;
}

nlohmann::json DecoderConfig::to_json() const {
  nlohmann::json json = {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"vocab_size", vocab_size},
      {"hidden_size", hidden_size},
      {"intermediate_size", intermediate_size},
      {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads},
      {"num_key_value_heads", num_key_value_heads},
      {"head_dim", resolved_head_dim()},
      {"max_position_embeddings", max_position_embeddings},
      {"rms_norm_eps", rms_norm_eps},
      {"rope_theta", rope_theta},
      {"initializer_range", initializer_range},
      {"tie_word_embeddings", tie_word_embeddings},
      {"hidden_act", "silu"},
      {"attention_bias", false},
      {"mlp_bias", false},
      {"torch_dtype", "float32"},
      {"bos_token_id", bos_token_id >= 0 ? nlohmann::json(bos_token_id) : nlohmann::json()},
      {"eos_token_id", eos_token_id >= 0 ? nlohmann::json(eos_token_id) : nlohmann::json()},
  };
  if (uses_mrope()) json["rope_scaling"] = {{"type", "mrope"}, {"mrope_section", mrope_section}};
  return json;
}

}  // namespace nuri
