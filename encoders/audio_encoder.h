// The streaming audio encoder: log-mel frames (100 per second) in, embeddings at the decoder's
// width out, 12.5-50 tokens per second.
//
// Architecture: per chunk of chunk_seconds (200 mel frames by default), conv1d(n_mels -> D, k3,
// pad 1) + GELU and conv1d(D -> D, k3, stride 2, pad 1) + GELU, each chunk zero-padded on its
// own; then pre-LayerNorm transformer blocks whose attention is block-causal over chunks (a frame
// sees its chunk and every earlier chunk) with RoPE on the absolute frame index after the
// stride; a final LayerNorm; average pooling by pool_stride; and an MLP projector (linear, GELU,
// linear, RMSNorm) to output_size. Since neither the stem nor attention lets a chunk see a later
// one, encoding chunk by chunk (AudioEncoderStream) gives the same tokens as encoding the whole
// input.
//
// With a CTC head (ctc_classes > 0 at construction), a linear layer maps the pooled features
// (before the projector) to per-token logits over the text vocabulary and a blank, which the CTC
// loss trains to spell what is said (audio.ctc_weight; ESPnet's hybrid CTC/attention): a direct
// frame-level signal that a decoder trained from scratch does not give the encoder on its own.
//
// Token rule: a final partial chunk of r frames is zero-padded to the next multiple of
// 2 * pool_stride frames, so F frames give ceil(F / (2 * pool_stride)) tokens.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "encoders/transformer_block.h"
#include "kernels/ops/random.h"
#include "kernels/parameter.h"
#include "kernels/tensor.h"

namespace nuri {

// Size and shape of the audio encoder, stored as a flat JSON object with these keys.
struct AudioEncoderConfig {
  int64_t n_mels = 80;
  int64_t hidden_size = 256;
  int64_t num_layers = 4;
  int64_t num_heads = 4;
  int64_t intermediate_size = 1024;
  double chunk_seconds = 2.0;  // the streaming unit; a whole number of mel frames
  int64_t pool_stride = 2;     // 50 frames/s after the stem: 2 -> 25 tokens/s, 4 -> 12.5
  int64_t output_size = 256;   // the decoder's hidden size
  float rope_theta = 10000.0f;
  float layer_norm_eps = 1e-5f;
  float initializer_range = 0.02f;
  double ctc_weight = 0;  // > 0: a CTC head on the encoder, its loss weighted by this in training

  // Mel frames per second (16 kHz audio, hop 160).
  static constexpr int64_t kFramesPerSecond = 100;
  // Mel frames per chunk (200 for 2 s).
  int64_t chunk_frames() const;
  // Mel frames per output token: the stem's stride 2 times pool_stride.
  int64_t frames_per_token() const { return 2 * pool_stride; }
  // Output tokens per full chunk.
  int64_t chunk_tokens() const { return chunk_frames() / frames_per_token(); }
  // Output tokens for `frames` mel frames: ceil(frames / frames_per_token()).
  int64_t token_count(int64_t frames) const;

  // Throws nuri::Error naming the field when sizes disagree.
  void validate() const;
  // Reads the keys above; an unknown or ill-typed key is an error naming it.
  static AudioEncoderConfig from_json(const nlohmann::json& json);
  // Every key above.
  nlohmann::json to_json() const;
  // Calls visit(key, member) for every field (the one list that from_json and to_json share).
  template <class Visit>
  static void fields(AudioEncoderConfig& c, Visit&& visit) {
    visit("n_mels", c.n_mels);
    visit("hidden_size", c.hidden_size);
    visit("num_layers", c.num_layers);
    visit("num_heads", c.num_heads);
    visit("intermediate_size", c.intermediate_size);
    visit("chunk_seconds", c.chunk_seconds);
    visit("pool_stride", c.pool_stride);
    visit("output_size", c.output_size);
    visit("rope_theta", c.rope_theta);
    visit("layer_norm_eps", c.layer_norm_eps);
    visit("initializer_range", c.initializer_range);
    visit("ctc_weight", c.ctc_weight);
  }
};

// The audio encoder's parameters and its whole-input forward. Parameter names:
// audio_encoder.conv1.{weight,bias}, audio_encoder.conv2.{weight,bias},
// audio_encoder.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm,
// mlp.fc1, mlp.fc2}.{weight,bias}, audio_encoder.norm.{weight,bias},
// audio_projector.{fc1,fc2}.{weight,bias}, audio_projector.norm.weight; with a CTC head,
// audio_encoder.ctc_head.{weight [ctc_classes, hidden_size], bias}.
class AudioEncoder {
 public:
  // Allocates every parameter (f32, CPU, zero); call init() or load() next. ctc_classes > 0 adds
  // a CTC head with that many classes (the omni model's vocabulary and a blank).
  explicit AudioEncoder(const AudioEncoderConfig& config, int64_t ctc_classes = 0);

  const AudioEncoderConfig& config() const { return config_; }
  // Every trainable parameter, each requiring grad, in a stable order.
  std::vector<NamedParameter>& parameters() { return params_.all(); }
  const std::vector<NamedParameter>& parameters() const { return params_.all(); }
  // Moves the parameters to `device`; log-mel on another device is moved to it in forward.
  void to(const Device& device) { params_.to(device); }
  Device device() const { return params_.device(); }
  // The parameter called `name`; an unknown name is an error.
  Tensor& parameter(const std::string& name) { return params_.find(name); }

  // Normal(0, initializer_range) weights, zero biases, unit LayerNorm weights.
  void init(Generator& generator);
  // Reads every parameter from a safetensors file; a missing, extra or mis-shaped tensor is an
  // error naming it, and a failed load changes nothing.
  void load(const std::string& safetensors_path);
  // Writes every parameter to a safetensors file atomically.
  void save(const std::string& safetensors_path) const;

  // Embeddings [B, token_count(frames), output_size] for log-mel frames [n_mels, frames] (as
  // B = 1) or [B, n_mels, frames], f32. Records on the active tape for training; run it inside a
  // NoGradScope for inference.
  Tensor encode(const Tensor& mel) const;
  // encode()'s tokens and the CTC head's logits [B, tokens, ctc_classes] for the same input.
  // Needs the head.
  std::pair<Tensor, Tensor> encode_with_ctc(const Tensor& mel) const;
  // Classes of the CTC head; 0 without one.
  int64_t ctc_classes() const { return ctc_classes_; }
  // Output tokens for `frames` mel frames (config().token_count).
  int64_t token_count(int64_t frames) const { return config_.token_count(frames); }

 private:
  friend class AudioEncoderStream;
  // Conv stem of independent chunks [N, n_mels, L] (L a multiple of frames_per_token) ->
  // [N, L / 2, D].
  Tensor stem(const Tensor& chunks) const;
  // Transformer, norm and pooling over stem frames [B, T, D] whose first frame has position
  // `start` -> [B, T / pool_stride, D]. With caches (batch 1, one per layer), earlier chunks' keys
  // and values come from them and this input's are appended.
  Tensor trunk(const Tensor& frames, int64_t start, std::vector<KeyValueBuffer>* caches) const;
  // The stem and trunk over a whole input (see encode) -> [B, tokens, D].
  Tensor features(const Tensor& mel) const;

  AudioEncoderConfig config_;
  ParameterList params_{"audio encoder"};
  size_t conv1_weight_ = 0, conv1_bias_ = 0, conv2_weight_ = 0, conv2_bias_ = 0;
  std::vector<TransformerBlock> blocks_;
  LayerNorm norm_;
  Projector projector_;
  int64_t ctc_classes_ = 0;
  Linear ctc_head_;  // only with ctc_classes_ > 0
};

// Encodes one live audio stream chunk by chunk: mel frames arrive in pieces of any size and each
// completed chunk's tokens come out at once, equal (to rounding) to AudioEncoder::encode of
// everything pushed. Keeps every earlier chunk's keys and values per layer. Inference only
// (records nothing on the tape). The encoder must outlive the stream.
class AudioEncoderStream {
 public:
  explicit AudioEncoderStream(const AudioEncoder& encoder);

  // Appends mel frames [n_mels, k] (k may be 0); returns the tokens of the chunks this piece
  // completed, [tokens, output_size] (0 rows when none).
  Tensor push(const Tensor& mel);
  // Encodes the pending partial chunk (padded as encode() pads it) and ends the stream; returns
  // its tokens [tokens, output_size] (0 rows when nothing was pending). Push after finish is an
  // error.
  Tensor finish();
  // Mel frames pushed so far.
  int64_t frames() const { return frames_; }
  // Tokens returned so far.
  int64_t tokens() const { return tokens_; }

 private:
  // Encodes mel [n_mels, L] (a full chunk, or a padded final one) -> [L / frames_per_token, out].
  Tensor encode_chunk(const Tensor& chunk);

  const AudioEncoder& encoder_;
  std::vector<KeyValueBuffer> caches_;
  Tensor pending_;  // [n_mels, k], k < chunk_frames
  int64_t frames_ = 0, tokens_ = 0;
  bool finished_ = false;
};

}  // namespace nuri
