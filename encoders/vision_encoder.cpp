#include "encoders/vision_encoder.h"

#include <cmath>

#include "encoders/config_json.h"
#include "kernels/ops/activation.h"
#include "kernels/ops/elementwise.h"
#include "kernels/ops/linear.h"
#include "kernels/ops/pool.h"
#include "kernels/ops/rope.h"
#include "kernels/ops/shape.h"

namespace nuri {

int64_t VisionEncoderConfig::image_token_count(int64_t height, int64_t width) const {
  NURI_CHECK(height > 0 && width > 0 && height % factor() == 0 && width % factor() == 0,
             "vision encoder: image size ", height, "x", width, " is not a positive multiple of ",
             factor(), " (patch_size x merge_size)");
  return (height / factor()) * (width / factor());
}

int64_t VisionEncoderConfig::video_token_count(int64_t frames, int64_t height,
                                               int64_t width) const {
  NURI_CHECK(frames > 0, "vision encoder: a video needs at least one frame, got ", frames);
  const int64_t slices = (frames + temporal_patch_size - 1) / temporal_patch_size;
  return slices * image_token_count(height, width);
}

void VisionEncoderConfig::validate() const {
  auto positive = [](const char* name, int64_t value) {
    NURI_CHECK(value > 0, "vision encoder config: ", name, " must be positive, got ", value);
  };
  positive("patch_size", patch_size);
  positive("temporal_patch_size", temporal_patch_size);
  positive("merge_size", merge_size);
  positive("hidden_size", hidden_size);
  positive("num_layers", num_layers);
  positive("num_heads", num_heads);
  positive("intermediate_size", intermediate_size);
  positive("output_size", output_size);
  positive("min_pixels", min_pixels);
  NURI_CHECK(max_pixels >= min_pixels, "vision encoder config: max_pixels ", max_pixels,
             " is below min_pixels ", min_pixels);
  NURI_CHECK(max_pixels >= factor() * factor(), "vision encoder config: max_pixels ", max_pixels,
             " is below one merged patch (", factor(), "x", factor(), ")");
  NURI_CHECK(std::isfinite(video_fps) && video_fps > 0 && video_fps <= 60,
             "vision encoder config: video_fps must be in (0, 60], got ", video_fps);
  positive("max_video_frames", max_video_frames);
  NURI_CHECK(video_min_pixels >= 0 && video_max_pixels >= 0,
             "vision encoder config: video_min_pixels and video_max_pixels must be zero (the "
             "image's) or positive, got ",
             video_min_pixels, " and ", video_max_pixels);
  NURI_CHECK(video_max() >= video_min() && video_max() >= factor() * factor(),
             "vision encoder config: a video frame's budget (video_min_pixels ", video_min(),
             ", video_max_pixels ", video_max(), ", 0 meaning the image's) must have max >= min ",
             "and max >= one merged patch (", factor(), "x", factor(), ")");
  NURI_CHECK(hidden_size % num_heads == 0, "vision encoder config: hidden_size ", hidden_size,
             " is not divisible by num_heads ", num_heads);
  NURI_CHECK((hidden_size / num_heads) % 4 == 0, "vision encoder config: head dimension ",
             hidden_size / num_heads,
             " must be a multiple of 4 (two halves, rows and columns, each rotated in pairs)");
  NURI_CHECK(rope_theta > 0 && std::isfinite(rope_theta),
             "vision encoder config: rope_theta must be positive, got ", rope_theta);
  NURI_CHECK(layer_norm_eps > 0, "vision encoder config: layer_norm_eps must be positive, got ",
             layer_norm_eps);
  NURI_CHECK(initializer_range > 0,
             "vision encoder config: initializer_range must be positive, got ", initializer_range);
  if (!stem_channels.empty()) {
    NURI_CHECK(stem_channels.size() <= 8, "vision encoder config: stem_channels has ",
               stem_channels.size(), " stages, at most 8");
    for (int64_t width : stem_channels) {
      NURI_CHECK(width > 0, "vision encoder config: stem_channels must all be positive, got ",
                 width);
    }
    const int64_t halvings = int64_t{1} << (stem_channels.size() - 1);
    NURI_CHECK(patch_size % halvings == 0, "vision encoder config: patch_size ", patch_size,
               " must be divisible by ", halvings, " with a stem of ", stem_channels.size(),
               " stages (every stage but the last halves the resolution)");
  }
  NURI_CHECK(!global_context || !stem_channels.empty(),
             "vision encoder config: global_context pools the stem's features and needs "
             "stem_channels");
  NURI_CHECK(context_grid >= 1 && context_grid <= 8,
             "vision encoder config: context_grid must be from 1 to 8, got ", context_grid);
  NURI_CHECK(context_grid == 1 || global_context, "vision encoder config: context_grid ",
             context_grid, " needs global_context");
  NURI_CHECK(!motion_context || (global_context && temporal_patch_size > 1),
             "vision encoder config: motion_context compares the frames of a temporal slice and "
             "needs global_context and temporal_patch_size > 1");
  NURI_CHECK(!context_pyramid || context_grid > 1,
             "vision encoder config: context_pyramid adds the whole slice to a grid and needs "
             "context_grid > 1, got ",
             context_grid);
}

VisionEncoderConfig VisionEncoderConfig::from_json(const nlohmann::json& json) {
  return config_json::read<VisionEncoderConfig>(json, "vision encoder config");
}

nlohmann::json VisionEncoderConfig::to_json() const {
  return config_json::write(*this);
}

Tensor image_to_pixels(const Image& image) {
  NURI_CHECK(image.height > 0 && image.width > 0 &&
                 static_cast<int64_t>(image.rgb.size()) == image.height * image.width * 3,
             "image_to_pixels: a ", image.height, "x", image.width, " image needs ",
             image.height * image.width * 3, " RGB bytes, it has ", image.rgb.size());
  const int64_t area = image.height * image.width;
  Tensor pixels = Tensor::empty({3, image.height, image.width});
  float* out = pixels.data<float>();
  for (int c = 0; c < 3; ++c) {
    const float scale = 1.0f / (255.0f * kPixelStd[c]), shift = kPixelMean[c] / kPixelStd[c];
    for (int64_t i = 0; i < area; ++i) out[c * area + i] = image.rgb[i * 3 + c] * scale - shift;
  }
  return pixels;
}

VisionEncoder::VisionEncoder(const VisionEncoderConfig& config) : config_(config) {
  config_.validate();
  const int64_t d = config_.hidden_size, merged = config_.merge_size * config_.merge_size * d;
  int64_t channels = 3;
  for (size_t i = 0; i < config_.stem_channels.size(); ++i) {
    stem_.push_back(Conv2d::add(params_, cat("vision_encoder.stem.conv", i + 1), channels,
                                config_.stem_channels[i], 3));
    channels = config_.stem_channels[i];
  }
  patch_embed_ = Linear::add(params_, "vision_encoder.patch_embed", config_.patch_dim(), d);
  for (int64_t i = 0; i < config_.num_layers; ++i) {
    blocks_.push_back(TransformerBlock::add(params_, cat("vision_encoder.layers.", i), d,
                                            config_.num_heads, config_.intermediate_size,
                                            config_.layer_norm_eps));
  }
  norm_ = LayerNorm::add(params_, "vision_encoder.norm", d, config_.layer_norm_eps);
  projector_ = Projector::add(params_, "vision_projector", merged, merged, config_.output_size);
  if (config_.global_context) {
    global_ = Linear::add(params_, "vision_projector.global",
                          context_cells() * config_.stem_channels.back(), config_.output_size);
  }
  if (config_.motion_context) {
    motion_ = params_.add("vision_projector.motion.weight",
                          {config_.output_size, context_cells() * config_.stem_channels.back()},
                          ParameterList::Init::normal);
  }
}

void VisionEncoder::init(Generator& generator) {
  params_.init(generator, config_.initializer_range);
}

void VisionEncoder::load(const std::string& safetensors_path) {
  params_.load(safetensors_path);
}

void VisionEncoder::save(const std::string& safetensors_path) const {
  params_.save(safetensors_path);
}

void VisionEncoder::check_pixels(const Tensor& pixels, int dims, const char* what) const {
  const char* layout = dims == 3 ? "[3, H, W]" : "[N, 3, H, W]";
  NURI_CHECK(pixels.dim() == dims && pixels.dtype() == DType::f32 && pixels.size(-3) == 3,
             "vision encoder: ", what, " must be f32 ", layout, ", not ",
             dtype_name(pixels.dtype()), " ", shape_str(pixels.shape()));
  NURI_CHECK(dims == 3 || pixels.size(0) > 0, "vision encoder: ", what, " ",
             shape_str(pixels.shape()), " holds no image");
  config_.image_token_count(pixels.size(-2), pixels.size(-1));  // checks the sides
}

Tensor VisionEncoder::frame_features(const Tensor& frames) const {
  Tensor x = frames.on(params_.device());
  int64_t left = config_.patch_size;  // pixels of a patch along each side not yet pooled
  for (size_t i = 0; i < stem_.size(); ++i) {
    const int64_t pool = i + 1 < stem_.size() ? 2 : left;
    x = max_pool2d(gelu(stem_[i].forward(params_, x)), {pool, pool}, {pool, pool});
    left /= pool;
  }
  return x;
}

Tensor VisionEncoder::encode_slices(const Tensor& features) const {
  const int64_t tp = config_.temporal_patch_size, m = config_.merge_size;
  const int64_t q = stem_.empty() ? config_.patch_size : 1, c = features.size(1);
  const int64_t n = features.size(0) / tp, bh = features.size(2) / (q * m),
                bw = features.size(3) / (q * m), s = bh * bw * m * m;
  const int64_t d = config_.hidden_size, half = d / config_.num_heads / 2;
  // [N, tp, C, bh, m, q, bw, m, q] -> [N, bh, bw, m, m, C, tp, q, q]: patches ordered so that each
  // merge square is contiguous, each patch flattened as (channel, frame, row, column).
  Tensor x = reshape(features, {n, tp, c, bh, m, q, bw, m, q});
  x = reshape(permute(x, {0, 3, 6, 4, 7, 2, 1, 5, 8}), {n, s, config_.patch_dim()});
  x = patch_embed_.forward(params_, x);

  Tensor rows = Tensor::empty({s}, DType::i32), cols = Tensor::empty({s}, DType::i32);
  int32_t* row = rows.data<int32_t>();
  int32_t* col = cols.data<int32_t>();
  for (int64_t i = 0; i < s; ++i) {
    const int64_t square = i / (m * m), within = i % (m * m);
    row[i] = static_cast<int32_t>(square / bw * m + within / m);
    col[i] = static_cast<int32_t>(square % bw * m + within % m);
  }
  rows = rows.on(x.device());
  cols = cols.on(x.device());
  const float theta = config_.rope_theta;
  const Rotation rotate = [&](const Tensor& heads) {
    const std::vector<Tensor> halves = split(heads, {half, half}, 3);
    return concat({rope(halves[0], rows, theta), rope(halves[1], cols, theta)}, 3);
  };
  const AttentionOptions options{.mask = AttentionMask::full};
  for (const TransformerBlock& block : blocks_) x = block.forward(params_, x, rotate, options);
  x = reshape(norm_.forward(params_, x), {n, s / (m * m), m * m * d});
  const Tensor context = config_.global_context ? slice_context(features) : Tensor();
  return projector_.forward(params_, x, context);
}

Tensor VisionEncoder::slice_context(const Tensor& features) const {
  const int64_t tp = config_.temporal_patch_size;
  const int64_t n = features.size(0) / tp, c = features.size(1), h = features.size(2),
                w = features.size(3);
  // The maximum over each slice's frames: [N, C, tp, H x W] -> [N, C, H, W].
  Tensor frames = permute(reshape(features, {n, tp, c, h * w}), {0, 2, 1, 3});
  frames = reshape(max_pool2d(frames, {tp, 1}, {tp, 1}), {n, c, h, w});
  const Tensor context = global_.forward(params_, cell_maxima(frames));
  if (!config_.motion_context) return context;
  const Tensor per_frame = reshape(features, {n, tp, c, h, w});
  const Tensor first = reshape(slice(per_frame, 1, 0, 1), {n, c, h, w});
  const Tensor last = reshape(slice(per_frame, 1, tp - 1, tp), {n, c, h, w});
  const Tensor change = add(cell_maxima(last), scale(cell_maxima(first), -1.0f));
  return add(context, linear(change, params_[motion_]));
}

Tensor VisionEncoder::cell_maxima(const Tensor& frames) const {
  const int64_t g = config_.context_grid;
  const int64_t n = frames.size(0), c = frames.size(1), h = frames.size(2), w = frames.size(3);
  // The whole first with context_pyramid; then each grid cell, rows [floor(i h / g),
  // ceil((i + 1) h / g)) and columns alike.
  std::vector<Tensor> cells;
  if (config_.context_pyramid) cells.push_back(reshape(max_pool2d(frames, {h, w}, {h, w}), {n, c}));
  for (int64_t i = 0; i < g; ++i) {
    const Tensor band = slice(frames, 2, i * h / g, ((i + 1) * h + g - 1) / g);
    for (int64_t j = 0; j < g; ++j) {
      const Tensor cell = slice(band, 3, j * w / g, ((j + 1) * w + g - 1) / g);
      cells.push_back(reshape(
          max_pool2d(cell, {cell.size(2), cell.size(3)}, {cell.size(2), cell.size(3)}), {n, c}));
    }
  }
  return cells.size() == 1 ? cells[0] : concat(cells, 1);
}

int64_t VisionEncoder::context_cells() const {
  return config_.context_grid * config_.context_grid + (config_.context_pyramid ? 1 : 0);
}

Tensor VisionEncoder::encode_image(const Tensor& pixels) const {
  check_pixels(pixels, 3, "pixels");
  const Tensor out = encode_images(reshape(pixels, {1, 3, pixels.size(1), pixels.size(2)}));
  return reshape(out, {out.size(1), out.size(2)});
}

Tensor VisionEncoder::encode_images(const Tensor& pixels) const {
  check_pixels(pixels, 4, "pixels");
  // An image is its frame repeated temporal_patch_size times; the features repeat alike, so the
  // stem runs once per image.
  const Tensor features = frame_features(pixels);
  const int64_t n = features.size(0), c = features.size(1), h = features.size(2),
                w = features.size(3), tp = config_.temporal_patch_size;
  const Tensor single = reshape(features, {n, 1, c, h, w});
  return encode_slices(reshape(concat(std::vector<Tensor>(tp, single), 1), {n * tp, c, h, w}));
}

Tensor VisionEncoder::encode_video(const Tensor& frames) const {
  check_pixels(frames, 4, "frames");
  const int64_t t = frames.size(0), tp = config_.temporal_patch_size;
  const int64_t missing = (tp - t % tp) % tp;
  Tensor features = frame_features(frames);
  if (missing > 0) {  // the last frame repeated, as its features
    std::vector<Tensor> parts(missing + 1, slice(features, 0, t - 1, t));
    parts[0] = features;
    features = concat(parts, 0);
  }
  const Tensor out = encode_slices(features);
  return reshape(out, {out.size(0) * out.size(1), out.size(2)});
}

}  // namespace nuri
