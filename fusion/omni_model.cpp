#include "fusion/omni_model.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "kernels/autograd.h"
#include "kernels/error.h"
#include "kernels/ops/cross_entropy.h"
#include "kernels/ops/ctc.h"
#include "kernels/ops/elementwise.h"
#include "kernels/ops/shape.h"
#include "kernels/safetensors.h"

namespace nuri {

namespace {

constexpr const char* kAudioConfig = "audio_config";
constexpr const char* kVisionConfig = "vision_config";

// Reads a section with `parse`, prefixing its errors with the section's name.
template <class Config, class Parse>
Config section(const nlohmann::json& json, const char* name, Parse parse) {
  try {
    return parse(json);
  } catch (const Error& e) {
    fail("omni config: ", name, ": ", e.what());
  }
}

// i32 [3, B, T] from per-sequence [3, Ti] positions; padding continues each stream by one per
// step, so it never collides with a real position.
Tensor batch_positions(const std::vector<const SequenceLayout*>& layouts, int64_t length) {
  const int64_t batch = static_cast<int64_t>(layouts.size());
  std::vector<int32_t> out(static_cast<size_t>(3 * batch * length));
  for (int64_t b = 0; b < batch; ++b) {
    const SequenceLayout& s = *layouts[b];
    const int64_t n = s.size();
    for (int64_t stream = 0; stream < 3; ++stream) {
      int32_t* row = out.data() + (stream * batch + b) * length;
      for (int64_t i = 0; i < n; ++i) row[i] = s.positions[stream * n + i];
      for (int64_t i = n; i < length; ++i) row[i] = s.next_position + static_cast<int32_t>(i - n);
    }
  }
  return Tensor::from_data<int32_t>(out, {3, batch, length});
}

}  // namespace

OmniConfig OmniConfig::from_json(const nlohmann::json& json) {
  NURI_CHECK(json.is_object(), "omni config: expected a JSON object, got ", json.type_name());
  OmniConfig c;
  nlohmann::json decoder = json;
  decoder.erase(kAudioConfig);
  decoder.erase(kVisionConfig);
  c.decoder = section<DecoderConfig>(decoder, "decoder", DecoderConfig::from_json);
  if (json.contains(kAudioConfig) && !json[kAudioConfig].is_null())
    c.audio = section<AudioEncoderConfig>(json[kAudioConfig], kAudioConfig,
                                          AudioEncoderConfig::from_json);
  if (json.contains(kVisionConfig) && !json[kVisionConfig].is_null())
    c.vision = section<VisionEncoderConfig>(json[kVisionConfig], kVisionConfig,
                                            VisionEncoderConfig::from_json);
  c.validate();
  return c;
}

nlohmann::json OmniConfig::to_json() const {
  nlohmann::json json = decoder.to_json();
  if (audio) json[kAudioConfig] = audio->to_json();
  if (vision) json[kVisionConfig] = vision->to_json();
  return json;
}

void OmniConfig::validate() const {
  decoder.validate();
  if (audio) {
    audio->validate();
    NURI_CHECK(audio->output_size == decoder.hidden_size, "omni config: audio_config.output_size ",
               audio->output_size, " must equal the decoder's hidden_size ", decoder.hidden_size);
  }
  if (vision) {
    vision->validate();
    NURI_CHECK(vision->output_size == decoder.hidden_size,
               "omni config: vision_config.output_size ", vision->output_size,
               " must equal the decoder's hidden_size ", decoder.hidden_size);
  }
  NURI_CHECK(decoder.uses_mrope(),
             "omni config: the decoder needs rope_scaling.mrope_section (multimodal positions)");
}

OmniModel::OmniModel(const OmniConfig& config) : config_(config), decoder_(config.decoder) {
  config_.validate();
  if (config_.audio) {  // a CTC head over the vocabulary and a blank, when it is trained
    const int64_t ctc_classes = config_.audio->ctc_weight > 0 ? config_.decoder.vocab_size + 1 : 0;
    audio_ = std::make_unique<AudioEncoder>(*config_.audio, ctc_classes);
  }
  if (config_.vision) vision_ = std::make_unique<VisionEncoder>(*config_.vision);
}

std::vector<NamedParameter> OmniModel::parameters() const {
  std::vector<NamedParameter> out = decoder_.parameters();
  if (audio_) out.insert(out.end(), audio_->parameters().begin(), audio_->parameters().end());
  if (vision_) out.insert(out.end(), vision_->parameters().begin(), vision_->parameters().end());
  return out;
}

std::vector<NamedParameter> OmniModel::trainable_parameters() const {
  std::vector<NamedParameter> out;
  for (const NamedParameter& p : parameters())
    if (p.tensor.requires_grad()) out.push_back(p);
  return out;
}

std::string OmniModel::module_of(const std::string& name) {
  for (const char* module : kOmniModules)
    if (name.rfind(std::string(module) + ".", 0) == 0) return module;
  return "decoder";  // model.*, lm_head.*
}

void OmniModel::freeze(const std::string& module, bool frozen) {
  NURI_CHECK(
      std::find(std::begin(kOmniModules), std::end(kOmniModules), module) != std::end(kOmniModules),
      "omni model: unknown module '", module,
      "' (expected decoder, audio_encoder, audio_projector, vision_encoder or "
      "vision_projector)");
  for (NamedParameter& p : parameters())
    if (module_of(p.name) == module) {
      p.tensor.clear_grad();
      p.tensor.set_requires_grad(!frozen);
    }
}

void OmniModel::to(const Device& device) {
  decoder_.to(device);
  if (audio_) audio_->to(device);
  if (vision_) vision_->to(device);
}

void OmniModel::init(Generator& generator) {
  decoder_.init(generator);
  if (audio_) audio_->init(generator);
  if (vision_) vision_->init(generator);
}

void OmniModel::save(const std::string& safetensors_path) const {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const NamedParameter& p : parameters()) tensors.emplace_back(p.name, p.tensor.detach());
  save_safetensors(safetensors_path, tensors, {{"format", "pt"}});
}

void OmniModel::load(const std::string& safetensors_path, std::vector<std::string>* missing) {
  std::vector<NamedParameter> all = parameters();
  load_parameters(SafetensorsFile::open(safetensors_path), all, "this omni model config", {},
                  missing);
}

MediaShape OmniModel::shape_of(const MediaInput& input) const {
  MediaShape shape;
  shape.kind = input.kind;
  if (input.mel.defined()) {
    NURI_CHECK(audio_, "omni model: audio input, but the model has no audio encoder");
    NURI_CHECK(input.mel.dim() == 2, "omni model: mel must be [n_mels, frames], not ",
               shape_str(input.mel.shape()));
    shape.audio_tokens = audio_->token_count(input.mel.size(1));
    shape.seconds_per_audio_token = static_cast<double>(config_.audio->frames_per_token()) /
                                    AudioEncoderConfig::kFramesPerSecond;
  }
  if (input.kind == PartKind::audio) {
    NURI_CHECK(input.mel.defined(), "omni model: an audio input needs its log-mel");
    return shape;
  }
  NURI_CHECK(vision_, "omni model: visual input, but the model has no vision encoder");
  NURI_CHECK(input.pixels.defined() && input.pixels.dim() >= 3, "omni model: missing pixels");
  const int64_t factor = config_.vision->factor();
  const int64_t h = input.pixels.size(input.pixels.dim() - 2);
  const int64_t w = input.pixels.size(input.pixels.dim() - 1);
  shape.grid_h = h / factor;
  shape.grid_w = w / factor;
  if (input.kind == PartKind::video) {
    const int64_t frames = input.pixels.size(0), step = config_.vision->temporal_patch_size;
    NURI_CHECK(static_cast<int64_t>(input.frame_times.size()) == frames, "omni model: a video of ",
               frames, " frames has ", input.frame_times.size(), " frame times");
    for (int64_t f = 0; f < frames; f += step) shape.slice_times.push_back(input.frame_times[f]);
  }
  return shape;
}

std::vector<MediaShape> OmniModel::shapes_of(const std::vector<MediaInput>& inputs) const {
  std::vector<MediaShape> out;
  for (const MediaInput& input : inputs) out.push_back(shape_of(input));
  return out;
}

OmniModel::Encoded OmniModel::encode(const MediaInput& input, bool want_ctc) const {
  Encoded out;
  const int64_t d = config_.decoder.hidden_size;
  if (input.mel.defined() && want_ctc && input.transcript.defined()) {
    NURI_CHECK(input.transcript.dim() == 1 && input.transcript.dtype() == DType::i32,
               "omni model: a transcript must be i32 [L], not ",
               dtype_name(input.transcript.dtype()), " ", shape_str(input.transcript.shape()));
    const auto [tokens, logits] = audio_->encode_with_ctc(input.mel);
    out.sound = reshape(tokens, {-1, d});
    const int64_t labels = input.transcript.numel();
    out.ctc = ctc_loss(logits, reshape(input.transcript, {1, labels}),
                       Tensor::from_data<int64_t>(std::vector<int64_t>{logits.size(1)}, {1}),
                       Tensor::from_data<int64_t>(std::vector<int64_t>{labels}, {1}),
                       config_.decoder.vocab_size);
  } else if (input.mel.defined()) {
    out.sound = reshape(audio_->encode(input.mel), {-1, d});
  }
  if (input.kind == PartKind::image) out.visual = vision_->encode_image(input.pixels);
  if (input.kind == PartKind::video) out.visual = vision_->encode_video(input.pixels);
  return out;
}

Tensor OmniModel::embed(const SequenceLayout& layout, const std::vector<MediaInput>& inputs,
                        std::vector<Tensor>* ctc_losses) const {
  NURI_CHECK(!ctc_losses || (audio_ && audio_->ctc_classes() > 0),
             "omni model: CTC losses need an audio encoder with audio.ctc_weight > 0");
  const int64_t n = layout.size(), d = config_.decoder.hidden_size;
  const Tensor tokens =
      reshape(decoder_.embed(Tensor::from_data<int32_t>(layout.ids, {1, n})), {n, d});
  std::vector<Encoded> encoded;
  for (const MediaInput& input : inputs) {
    encoded.push_back(encode(input, ctc_losses != nullptr));
    if (encoded.back().ctc.defined()) ctc_losses->push_back(encoded.back().ctc);
  }
  std::vector<Tensor> pieces;
  int64_t at = 0;
  for (const MediaSlice& s : layout.slices) {
    NURI_CHECK(s.media < static_cast<int64_t>(inputs.size()) && s.start >= at,
               "omni model: the layout's media slices do not match its inputs");
    if (s.start > at) pieces.push_back(slice(tokens, 0, at, s.start));
    const Tensor& rows = s.audio ? encoded[s.media].sound : encoded[s.media].visual;
    NURI_CHECK(rows.defined() && s.first + s.count <= rows.size(0), "omni model: media item ",
               s.media, " has ", rows.defined() ? rows.size(0) : 0, " ",
               s.audio ? "audio" : "visual", " tokens, the layout wants rows up to ",
               s.first + s.count);
    pieces.push_back(slice(rows, 0, s.first, s.first + s.count));
    at = s.start + s.count;
  }
  if (at < n) pieces.push_back(slice(tokens, 0, at, n));
  return reshape(pieces.size() == 1 ? pieces[0] : concat(pieces, 0), {1, n, d});
}

Tensor OmniModel::embed_batch(const std::vector<const SequenceLayout*>& layouts,
                              const std::vector<const std::vector<MediaInput>*>& inputs,
                              std::vector<Tensor>* ctc_losses) const {
  NURI_CHECK(!layouts.empty() && layouts.size() == inputs.size(),
             "omni model: a batch needs one input list per sequence");
  int64_t length = 0;
  for (const SequenceLayout* s : layouts) length = std::max(length, s->size());
  const int64_t d = config_.decoder.hidden_size;
  std::vector<Tensor> rows;
  for (size_t b = 0; b < layouts.size(); ++b) {
    Tensor row = embed(*layouts[b], *inputs[b], ctc_losses);
    if (row.size(1) < length) {
      row = concat({row, Tensor::zeros({1, length - row.size(1), d}, DType::f32, row.device())}, 1);
    }
    rows.push_back(row);
  }
  return rows.size() == 1 ? rows[0] : concat(rows, 0);
}

Tensor OmniModel::decoder_loss(const std::vector<const SequenceLayout*>& layouts,
                               const Tensor& embeddings) const {
  const int64_t batch = static_cast<int64_t>(layouts.size()), length = embeddings.size(1);
  NURI_CHECK(embeddings.dim() == 3 && embeddings.size(0) == batch, "omni model: embeddings ",
             shape_str(embeddings.shape()), " for ", batch, " sequences");
  std::vector<int32_t> targets(static_cast<size_t>(batch * length), -100);
  for (int64_t b = 0; b < batch; ++b) {
    NURI_CHECK(layouts[b]->size() <= length, "omni model: sequence ", b,
               " is longer than the batch");
    std::copy(layouts[b]->targets.begin(), layouts[b]->targets.end(), targets.begin() + b * length);
  }
  const Tensor hidden = decoder_.forward_hidden(embeddings, batch_positions(layouts, length));
  return cross_entropy(reshape(decoder_.logits(hidden), {-1, config_.decoder.vocab_size}),
                       Tensor::from_data<int32_t>(targets, {batch * length}).on(hidden.device()));
}

Tensor OmniModel::decoder_loss(const std::vector<const SequenceLayout*>& layouts,
                               const std::vector<const std::vector<MediaInput>*>& inputs) const {
  return decoder_loss(layouts, embed_batch(layouts, inputs));
}

OmniModel::Losses OmniModel::losses(
    const std::vector<const SequenceLayout*>& layouts,
    const std::vector<const std::vector<MediaInput>*>& inputs) const {
  const bool ctc = audio_ && audio_->ctc_classes() > 0;
  std::vector<Tensor> ctc_losses;
  Losses out;
  out.decoder = decoder_loss(layouts, embed_batch(layouts, inputs, ctc ? &ctc_losses : nullptr));
  if (ctc_losses.empty()) return out;
  Tensor total = ctc_losses[0];
  for (size_t i = 1; i < ctc_losses.size(); ++i) total = nuri::add(total, ctc_losses[i]);
  // Per sequence of the batch, so that an item weighs the same however the batch is split into
  // micro-batches and ranks.
  const double weight = config_.audio->ctc_weight / static_cast<double>(layouts.size());
  out.ctc = scale(total, static_cast<float>(weight));
  return out;
}

Tensor OmniModel::loss(const std::vector<const SequenceLayout*>& layouts,
                       const std::vector<const std::vector<MediaInput>*>& inputs) const {
  const Losses parts = losses(layouts, inputs);
  return parts.ctc.defined() ? nuri::add(parts.decoder, parts.ctc) : parts.decoder;
}

std::vector<int32_t> OmniModel::reply(const SequenceLayout& prompt,
                                      const std::vector<MediaInput>& inputs, int64_t max_tokens,
                                      int32_t stop) const {
  NoGradScope no_grad;
  KvCache cache(config_.decoder, 1, prompt.size() + max_tokens, decoder_.device());
  const int64_t v = config_.decoder.vocab_size;
  Tensor hidden = decoder_.forward_hidden(
      embed(prompt, inputs), Tensor::from_data<int32_t>(prompt.positions, {3, prompt.size()}),
      &cache);
  std::vector<int32_t> out;
  int32_t position = prompt.next_position;
  while (static_cast<int64_t>(out.size()) < max_tokens) {
    const Tensor last = slice(hidden, 1, hidden.size(1) - 1, hidden.size(1));
    const std::vector<float> logits = decoder_.logits(last).to_vector();
    const int32_t next =
        static_cast<int32_t>(std::max_element(logits.begin(), logits.begin() + v) - logits.begin());
    if (next == stop) break;
    out.push_back(next);
    const std::vector<int32_t> positions(3, position++);
    hidden = decoder_.forward_hidden(
        decoder_.embed(Tensor::from_data<int32_t>(std::vector<int32_t>{next}, {1, 1})),
        Tensor::from_data<int32_t>(positions, {3, 1}), &cache);
  }
  return out;
}

}  // namespace nuri
