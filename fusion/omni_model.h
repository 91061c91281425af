// The omni model: the audio encoder and the vision encoder feed spans of embeddings into the
// decoder's sequence (fusion/chat_template.h lays it out). One checkpoint holds every module under
// self-explaining names: the decoder keeps the Hugging Face Llama/Qwen2 names (model.*, lm_head),
// the encoders are audio_encoder.*, audio_projector.*, vision_encoder.*, vision_projector.*.
#pragma once
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "decoder/model.h"
#include "encoders/audio_encoder.h"
#include "encoders/vision_encoder.h"
#include "fusion/chat_template.h"

namespace nuri {

// The omni model's shape. As JSON it is a Hugging Face-style config.json: the decoder's keys at
// the top, the encoders under "audio_config" and "vision_config" (absent: no such encoder).
struct OmniConfig {
  DecoderConfig decoder;
  std::optional<AudioEncoderConfig> audio;
  std::optional<VisionEncoderConfig> vision;
  // Errors name the section and key at fault; encoder output sizes must equal the decoder width
  // and the decoder must use M-RoPE.
  static OmniConfig from_json(const nlohmann::json& json);
  nlohmann::json to_json() const;
  void validate() const;
};

// One media item, ready for the encoders.
struct MediaInput {
  PartKind kind = PartKind::audio;
  Tensor mel;                       // audio, or a video's soundtrack: f32 [n_mels, frames]
  Tensor pixels;                    // image f32 [3, H, W]; video frames f32 [T, 3, H, W]
  std::vector<double> frame_times;  // video: each frame's time in seconds
  Tensor transcript;  // i32 [L]: token ids of what the audio says, the CTC target (or undefined)
};

// The modules a config may freeze or unfreeze, by name.
inline constexpr const char* kOmniModules[] = {"decoder", "audio_encoder", "audio_projector",
                                               "vision_encoder", "vision_projector"};

class OmniModel {
 public:
  // Allocates every parameter (f32, CPU); call init() or load() next.
  explicit OmniModel(const OmniConfig& config);
  const OmniConfig& config() const { return config_; }
  const Decoder& decoder() const { return decoder_; }

  // Every parameter of every module, in checkpoint order.
  std::vector<NamedParameter> parameters() const;
  // The parameters of the modules not frozen (see freeze()).
  std::vector<NamedParameter> trainable_parameters() const;
  // Freezes (or unfreezes) a module named in kOmniModules: its parameters stop requiring grad,
  // so backward skips them and the optimizer leaves them alone. An unknown name is an error.
  void freeze(const std::string& module, bool frozen = true);
  // The module (from kOmniModules) that a parameter name belongs to.
  static std::string module_of(const std::string& parameter_name);

  void init(Generator& generator);
  // Moves every module's parameters to `device`; token ids, log-mel and pixels on another device
  // are moved to it in forward, and generation (reply) keeps its KV cache there.
  void to(const Device& device);
  // Reads every module from one safetensors file; a missing, extra or mis-shaped tensor is an
  // error naming it, raised before any parameter changes. With `missing` given, parameters the
  // file lacks keep their values and are listed there (load_parameters).
  void load(const std::string& safetensors_path, std::vector<std::string>* missing = nullptr);
  void save(const std::string& safetensors_path) const;

  // The span an item takes in the sequence (token counts from its size).
  MediaShape shape_of(const MediaInput& input) const;
  std::vector<MediaShape> shapes_of(const std::vector<MediaInput>& inputs) const;
  // Input embeddings [1, T, D] of a laid-out sequence: token embeddings, with each media slice's
  // rows taken from its encoder's output. With ctc_losses, each audio item that has a transcript
  // also appends its CTC loss per label (needs audio.ctc_weight > 0).
  Tensor embed(const SequenceLayout& layout, const std::vector<MediaInput>& inputs,
               std::vector<Tensor>* ctc_losses = nullptr) const;
  // Input embeddings [B, T, D] of a batch of sequences, zero-padded to the longest.
  Tensor embed_batch(const std::vector<const SequenceLayout*>& layouts,
                     const std::vector<const std::vector<MediaInput>*>& inputs,
                     std::vector<Tensor>* ctc_losses = nullptr) const;
  // Mean next-token cross-entropy over the target tokens of a batch, from its embeddings
  // (embed_batch); padding has no targets and its positions continue past each sequence.
  Tensor decoder_loss(const std::vector<const SequenceLayout*>& layouts,
                      const Tensor& embeddings) const;
  // The same from the batch's inputs: decoder_loss(layouts, embed_batch(layouts, inputs)).
  Tensor decoder_loss(const std::vector<const SequenceLayout*>& layouts,
                      const std::vector<const std::vector<MediaInput>*>& inputs) const;
  // The parts of the training objective: the decoder's loss, decoder_loss(layouts, inputs), and
  // with audio.ctc_weight > 0 ctc_weight times the CTC loss summed over the batch's audio items
  // (and soundtracks) that have a transcript, per sequence of the batch (undefined when no item
  // has one). The CTC blank is class vocab_size.
  struct Losses {
    Tensor decoder, ctc;
  };
  Losses losses(const std::vector<const SequenceLayout*>& layouts,
                const std::vector<const std::vector<MediaInput>*>& inputs) const;
  // The training objective: the sum of losses().
  Tensor loss(const std::vector<const SequenceLayout*>& layouts,
              const std::vector<const std::vector<MediaInput>*>& inputs) const;
  // Greedy continuation of a sequence that ends in an open assistant turn, up to max_tokens or
  // the `stop` token (not included). Inference only.
  std::vector<int32_t> reply(const SequenceLayout& prompt, const std::vector<MediaInput>& inputs,
                             int64_t max_tokens, int32_t stop) const;

 private:
  // The encoder outputs of one item: visual rows [N, D] and audio rows [M, D] (either may be
  // undefined), and with want_ctc the item's CTC loss [] when it has a transcript.
  struct Encoded {
    Tensor visual, sound, ctc;
  };
  Encoded encode(const MediaInput& input, bool want_ctc) const;

  OmniConfig config_;
  Decoder decoder_;
  std::unique_ptr<AudioEncoder> audio_;
  std::unique_ptr<VisionEncoder> vision_;
};

}  // namespace nuri
