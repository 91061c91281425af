#include "encoders/audio_encoder.h"

#include <cmath>

#include "encoders/config_json.h"
#include "kernels/autograd.h"
#include "kernels/ops/activation.h"
#include "kernels/ops/conv.h"
#include "kernels/ops/pool.h"
#include "kernels/ops/rope.h"
#include "kernels/ops/shape.h"

namespace nuri {
namespace {

// mel [..., r] zero-padded at the end to the next multiple of frames_per_token frames: the rule
// for a final partial chunk, shared by the whole and the streaming paths.
Tensor pad_partial_chunk(const Tensor& mel, const AudioEncoderConfig& config) {
  const int64_t rest = mel.size(-1);
  const int64_t padded = config.token_count(rest) * config.frames_per_token();
  if (padded == rest) return mel;
  Shape zeros = mel.shape();
  zeros.back() = padded - rest;
  return concat({mel, Tensor::zeros(zeros, mel.dtype(), mel.device())}, mel.dim() - 1);
}

}  // namespace

int64_t AudioEncoderConfig::chunk_frames() const {
  return std::llround(chunk_seconds * kFramesPerSecond);
}

int64_t AudioEncoderConfig::token_count(int64_t frames) const {
  NURI_CHECK(frames >= 0, "audio encoder: negative frame count ", frames);
  return (frames + frames_per_token() - 1) / frames_per_token();
}

void AudioEncoderConfig::validate() const {
  auto positive = [](const char* name, int64_t value) {
    NURI_CHECK(value > 0, "audio encoder config: ", name, " must be positive, got ", value);
  };
  positive("n_mels", n_mels);
  positive("hidden_size", hidden_size);
  positive("num_layers", num_layers);
  positive("num_heads", num_heads);
  positive("intermediate_size", intermediate_size);
  positive("pool_stride", pool_stride);
  positive("output_size", output_size);
  NURI_CHECK(hidden_size % num_heads == 0, "audio encoder config: hidden_size ", hidden_size,
             " is not divisible by num_heads ", num_heads);
  NURI_CHECK((hidden_size / num_heads) % 2 == 0, "audio encoder config: head dimension ",
             hidden_size / num_heads, " must be even for rotary embeddings");
  const double frames = chunk_seconds * kFramesPerSecond;
  NURI_CHECK(std::isfinite(frames) && frames >= 1 && std::abs(frames - std::round(frames)) < 1e-6,
             "audio encoder config: chunk_seconds ", chunk_seconds,
             " is not a positive whole number of 10 ms mel frames");
  NURI_CHECK(chunk_frames() % frames_per_token() == 0, "audio encoder config: chunk_seconds ",
             chunk_seconds, " gives ", chunk_frames(), " mel frames, not a multiple of ",
             frames_per_token(), " (2 x pool_stride)");
  NURI_CHECK(rope_theta > 0 && std::isfinite(rope_theta),
             "audio encoder config: rope_theta must be positive, got ", rope_theta);
  NURI_CHECK(layer_norm_eps > 0, "audio encoder config: layer_norm_eps must be positive, got ",
             layer_norm_eps);
  NURI_CHECK(initializer_range > 0,
             "audio encoder config: initializer_range must be positive, got ", initializer_range);
  NURI_CHECK(std::isfinite(ctc_weight) && ctc_weight >= 0,
             "audio encoder config: ctc_weight must be zero or positive, got ", ctc_weight);
}

AudioEncoderConfig AudioEncoderConfig::from_json(const nlohmann::json& json) {
  return config_json::read<AudioEncoderConfig>(json, "audio encoder config");
}

nlohmann::json AudioEncoderConfig::to_json() const {
  return config_json::write(*this);
}

AudioEncoder::AudioEncoder(const AudioEncoderConfig& config, int64_t ctc_classes)
    : config_(config), ctc_classes_(ctc_classes) {
  config_.validate();
  const int64_t d = config_.hidden_size;
  using Init = ParameterList::Init;
  conv1_weight_ = params_.add("audio_encoder.conv1.weight", {d, config_.n_mels, 3}, Init::normal);
  conv1_bias_ = params_.add("audio_encoder.conv1.bias", {d}, Init::zeros);
  conv2_weight_ = params_.add("audio_encoder.conv2.weight", {d, d, 3}, Init::normal);
  conv2_bias_ = params_.add("audio_encoder.conv2.bias", {d}, Init::zeros);
  for (int64_t i = 0; i < config_.num_layers; ++i) {
    blocks_.push_back(TransformerBlock::add(params_, cat("audio_encoder.layers.", i), d,
                                            config_.num_heads, config_.intermediate_size,
                                            config_.layer_norm_eps));
  }
  norm_ = LayerNorm::add(params_, "audio_encoder.norm", d, config_.layer_norm_eps);
  projector_ =
      Projector::add(params_, "audio_projector", d, config_.output_size, config_.output_size);
  NURI_CHECK(ctc_classes >= 0, "audio encoder: ctc_classes must not be negative, got ",
             ctc_classes);
  if (ctc_classes > 0) ctc_head_ = Linear::add(params_, "audio_encoder.ctc_head", d, ctc_classes);
}

void AudioEncoder::init(Generator& generator) {
  params_.init(generator, config_.initializer_range);
}

void AudioEncoder::load(const std::string& safetensors_path) {
  params_.load(safetensors_path);
}

void AudioEncoder::save(const std::string& safetensors_path) const {
  params_.save(safetensors_path);
}

Tensor AudioEncoder::stem(const Tensor& chunks) const {
  Tensor x = gelu(conv1d(chunks, params_[conv1_weight_], params_[conv1_bias_], 1, 1));
  x = gelu(conv1d(x, params_[conv2_weight_], params_[conv2_bias_], 2, 1));
  return transpose(x, 1, 2);  // [N, D, L / 2] -> [N, L / 2, D]
}

Tensor AudioEncoder::trunk(const Tensor& frames, int64_t start,
                           std::vector<KeyValueBuffer>* caches) const {
  const Tensor positions = arange_i32(start, frames.size(1)).on(frames.device());
  const float theta = config_.rope_theta;
  const Rotation rotate = [&](const Tensor& x) { return rope(x, positions, theta); };
  const AttentionOptions options{.mask = AttentionMask::block_causal,
                                 .block_size = config_.chunk_frames() / 2};
  Tensor x = frames;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    x = blocks_[i].forward(params_, x, rotate, options, caches ? &(*caches)[i] : nullptr);
  }
  x = transpose(norm_.forward(params_, x), 1, 2);  // [B, D, T]
  const int64_t p = config_.pool_stride;
  return transpose(avg_pool1d(x, p, p), 1, 2);  // [B, T / p, D]
}

Tensor AudioEncoder::encode(const Tensor& mel) const {
  return projector_.forward(params_, features(mel));
}

std::pair<Tensor, Tensor> AudioEncoder::encode_with_ctc(const Tensor& mel) const {
  NURI_CHECK(ctc_classes_ > 0, "audio encoder: encode_with_ctc needs a CTC head");
  const Tensor x = features(mel);
  return {projector_.forward(params_, x), ctc_head_.forward(params_, x)};
}

Tensor AudioEncoder::features(const Tensor& mel) const {
  NURI_CHECK((mel.dim() == 2 || mel.dim() == 3) && mel.size(-2) == config_.n_mels &&
                 mel.dtype() == DType::f32,
             "audio encoder: mel must be f32 [", config_.n_mels, ", frames] or [B, ",
             config_.n_mels, ", frames], not ", dtype_name(mel.dtype()), " ",
             shape_str(mel.shape()));
  const Tensor here = mel.on(params_.device());
  const Tensor batched = here.dim() == 3 ? here : reshape(here, {1, here.size(0), here.size(1)});
  const int64_t b = batched.size(0), m = config_.n_mels, f = batched.size(2);
  NURI_CHECK(f > 0 && b > 0, "audio encoder: mel of shape ", shape_str(mel.shape()),
             " has no frames");
  const int64_t c = config_.chunk_frames(), full = f / c, rest = f - full * c;
  std::vector<Tensor> parts;
  if (full > 0) {
    // [B, M, full * C] -> [B * full, M, C]: every chunk goes through the stem on its own.
    Tensor chunks = reshape(slice(batched, 2, 0, full * c), {b, m, full, c});
    chunks = reshape(transpose(chunks, 1, 2), {b * full, m, c});
    parts.push_back(reshape(stem(chunks), {b, full * c / 2, config_.hidden_size}));
  }
  if (rest > 0) parts.push_back(stem(pad_partial_chunk(slice(batched, 2, full * c, f), config_)));
  const Tensor frames = parts.size() == 1 ? parts[0] : concat(parts, 1);
  return trunk(frames, 0, nullptr);
}

AudioEncoderStream::AudioEncoderStream(const AudioEncoder& encoder)
    : encoder_(encoder), caches_(encoder.blocks_.size()) {}

Tensor AudioEncoderStream::encode_chunk(const Tensor& chunk) {
  const Tensor frames = encoder_.stem(chunk.view({1, chunk.size(0), chunk.size(1)}));
  const Tensor out = encoder_.projector_.forward(
      encoder_.params_, encoder_.trunk(frames, caches_.front().length(), &caches_));
  tokens_ += out.size(1);
  return out.view({out.size(1), out.size(2)});
}

Tensor AudioEncoderStream::push(const Tensor& mel) {
  const AudioEncoderConfig& config = encoder_.config();
  NURI_CHECK(!finished_, "audio encoder stream: push after finish");
  NURI_CHECK(mel.dim() == 2 && mel.size(0) == config.n_mels && mel.dtype() == DType::f32,
             "audio encoder stream: mel must be f32 [", config.n_mels, ", frames], not ",
             dtype_name(mel.dtype()), " ", shape_str(mel.shape()));
  NoGradScope no_grad;
  frames_ += mel.size(1);
  if (mel.size(1) > 0) pending_ = pending_.defined() ? concat({pending_, mel}, 1) : mel.clone();
  const int64_t c = config.chunk_frames();
  std::vector<Tensor> outputs;
  int64_t done = 0;
  for (; pending_.defined() && pending_.size(1) - done >= c; done += c) {
    outputs.push_back(encode_chunk(slice(pending_, 1, done, done + c)));
  }
  if (done > 0) {
    pending_ = done == pending_.size(1) ? Tensor() : slice(pending_, 1, done, pending_.size(1));
  }
  if (outputs.empty()) return Tensor::empty({0, config.output_size}, DType::f32, encoder_.device());
  return outputs.size() == 1 ? outputs[0] : concat(outputs, 0);
}

Tensor AudioEncoderStream::finish() {
  const AudioEncoderConfig& config = encoder_.config();
  NURI_CHECK(!finished_, "audio encoder stream: finish called twice");
  finished_ = true;
  if (!pending_.defined())
    return Tensor::empty({0, config.output_size}, DType::f32, encoder_.device());
  NoGradScope no_grad;
  const Tensor chunk = pad_partial_chunk(pending_, config);
  pending_ = Tensor();
  return encode_chunk(chunk);
}

}  // namespace nuri
