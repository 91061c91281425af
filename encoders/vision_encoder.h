// The vision encoder: a ViT over images at their native aspect ratio and over video, with
// embeddings at the decoder's width out.
//
// Architecture (after Qwen2-VL): the pixels are cut into temporal patches of
// temporal_patch_size frames x patch_size x patch_size x 3 channels (an image is its frame
// repeated temporal_patch_size times), each flattened in (channel, frame, row, column) order and
// embedded by a linear layer (Qwen2-VL's Conv3d with kernel = stride, as a matrix). Pre-LayerNorm
// transformer blocks with full attention among the patches of one image or one temporal slice of
// a video, and a 2D RoPE: the first half of each head's dimensions turns by the patch's row and
// the second half by its column, each half a rotate-half RoPE with the full frequency range. A
// final LayerNorm, then every merge_size x merge_size square of neighbouring patches is
// concatenated (row-major within the square) into one vector of merge_size^2 x D, which an MLP
// projector (linear, GELU, linear, RMSNorm) maps to output_size.
//
// Optionally (stem_channels not empty) a convolutional stem replaces the linear view of raw
// pixels: per frame, one stage per entry of stem_channels, each a 3x3 convolution to that many
// channels, GELU and a max-pool; every stage pools 2x2 except the last, which pools what is left
// of a patch (patch_size / 2^(stages - 1)), so the stem gives one vector per patch. The patch
// embedding then sees (channel, frame) vectors of stem_channels.back() x temporal_patch_size.
// Shape is what a linear patch of raw pixels cannot learn from little data; the stem's edges and
// corners, pooled per patch, let a small encoder learn it (docs/benchmarks.md).
//
// With global_context (which needs the stem), the maximum of the stem's output over a whole image
// (over every frame of a video's temporal slice), mapped linearly to output_size, is added to
// each of its tokens before the projector's RMSNorm. A decoder trained from scratch learns slowly
// to find the one token that holds a small object; this summary puts what the image holds in
// every token (docs/benchmarks.md, "Through the decoder"). With context_grid g > 1 the maximum is
// taken per cell of a g x g grid (adaptive cells, as adaptive max pooling cuts them, so any
// feature size works) and the cells' vectors are concatenated, cell by cell in raster order: the
// context then also says roughly where things are, which a video's direction of motion needs.
// With context_pyramid the whole slice's maximum comes first, before the grid's cells: a maximum
// per cell does not give back the maximum of the whole, which colour questions read best.
// With motion_context, how the cells change over a temporal slice (the cell maxima of its last
// frame minus those of its first), mapped linearly without a bias, is added as well: zero for an
// image (its frame repeated), and for a video where a moving object left and where it arrived,
// which a small encoder trained from scratch does not find on its own (docs/benchmarks.md).
//
// Output tokens come in raster order of the merged grid: an H x W image gives
// (H / (patch_size x merge_size)) x (W / (patch_size x merge_size)) tokens.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "encoders/transformer_block.h"
#include "kernels/ops/random.h"
#include "kernels/parameter.h"
#include "kernels/tensor.h"
#include "media/image.h"

namespace nuri {

// Size and shape of the vision encoder, stored as a flat JSON object with these keys.
struct VisionEncoderConfig {
  int64_t patch_size = 14;
  int64_t temporal_patch_size = 2;
  int64_t merge_size = 2;
  int64_t hidden_size = 256;
  int64_t num_layers = 4;
  int64_t num_heads = 4;
  int64_t intermediate_size = 1024;
  int64_t output_size = 256;            // the decoder's hidden size
  int64_t min_pixels = 56 * 56;         // the resize keeps an image's area at least this ...
  int64_t max_pixels = 28 * 28 * 1280;  // ... and at most this
  float rope_theta = 10000.0f;
  float layer_norm_eps = 1e-6f;
  float initializer_range = 0.02f;
  std::vector<int64_t> stem_channels;  // empty: linear patches of raw pixels; else stage widths
  bool global_context = false;         // add the image's pooled stem features to every token
  int64_t context_grid = 1;            // the context pools each cell of this square grid
  bool context_pyramid = false;        // the whole slice's maximum too, before the grid's cells
  bool motion_context = false;         // the cells' change over a temporal slice too
  // Video input, a property of the model as Qwen2-VL's processor is: frames sampled at video_fps
  // (at most max_video_frames), each within a pixel budget of its own (0: the image's), since a
  // clip costs its frame count times what one frame does.
  double video_fps = 2;
  int64_t max_video_frames = 32;
  int64_t video_min_pixels = 0;
  int64_t video_max_pixels = 0;

  // Image sides must be multiples of this: patch_size x merge_size (28 by default).
  int64_t factor() const { return patch_size * merge_size; }
  // Values per frame of one patch: 3 x patch_size^2 raw pixels, or the stem's last width.
  int64_t patch_frame_dim() const {
    return stem_channels.empty() ? 3 * patch_size * patch_size : stem_channels.back();
  }
  // Values in one flattened temporal patch, the patch embedding's input.
  int64_t patch_dim() const { return temporal_patch_size * patch_frame_dim(); }
  // The pixel budget of a video frame: video_min_pixels and video_max_pixels, or the image's.
  int64_t video_min() const { return video_min_pixels > 0 ? video_min_pixels : min_pixels; }
  int64_t video_max() const { return video_max_pixels > 0 ? video_max_pixels : max_pixels; }
  // The encoder's grid for an H x W image, and for the frames of an H x W video.
  ImageGrid image_grid(int64_t height, int64_t width) const;
  ImageGrid video_grid(int64_t height, int64_t width) const;
  // Output tokens of one H x W image (or of one temporal slice of a video).
  int64_t image_token_count(int64_t height, int64_t width) const;
  // Output tokens of `frames` frames of H x W (frames rounded up to temporal_patch_size).
  int64_t video_token_count(int64_t frames, int64_t height, int64_t width) const;

  // Throws nuri::Error naming the field when sizes disagree.
  void validate() const;
  // Reads the keys above; an unknown or ill-typed key is an error naming it.
  static VisionEncoderConfig from_json(const nlohmann::json& json);
  // Every key above.
  nlohmann::json to_json() const;
  // Calls visit(key, member) for every field (the one list that from_json and to_json share).
  template <class Visit>
  static void fields(VisionEncoderConfig& c, Visit&& visit) {
    visit("patch_size", c.patch_size);
    visit("temporal_patch_size", c.temporal_patch_size);
    visit("merge_size", c.merge_size);
    visit("hidden_size", c.hidden_size);
    visit("num_layers", c.num_layers);
    visit("num_heads", c.num_heads);
    visit("intermediate_size", c.intermediate_size);
    visit("output_size", c.output_size);
    visit("min_pixels", c.min_pixels);
    visit("max_pixels", c.max_pixels);
    visit("rope_theta", c.rope_theta);
    visit("layer_norm_eps", c.layer_norm_eps);
    visit("initializer_range", c.initializer_range);
    visit("stem_channels", c.stem_channels);
    visit("global_context", c.global_context);
    visit("context_grid", c.context_grid);
    visit("context_pyramid", c.context_pyramid);
    visit("motion_context", c.motion_context);
    visit("video_fps", c.video_fps);
    visit("max_video_frames", c.max_video_frames);
    visit("video_min_pixels", c.video_min_pixels);
    visit("video_max_pixels", c.video_max_pixels);
  }
};

// Per-channel normalisation of pixels in [0, 1]: (x - mean) / std, with the CLIP constants that
// Qwen2-VL also uses (R, G, B).
inline constexpr float kPixelMean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
inline constexpr float kPixelStd[3] = {0.26862954f, 0.26130258f, 0.27577711f};

// An 8-bit RGB image (any size) as the encoder's input: f32 [3, H, W], each channel
// (value / 255 - kPixelMean[c]) / kPixelStd[c]. No resizing.
Tensor image_to_pixels(const Image& image);
// The image resized to config.image_grid (resize_image) and converted by image_to_pixels.
Tensor prepare_image(const Image& image, const VisionEncoderConfig& config);
// Video frames, each resized to the config.video_grid of the first frame's size, stacked as
// f32 [T, 3, H, W].
Tensor prepare_video(const std::vector<Image>& frames, const VisionEncoderConfig& config);

// The vision encoder's parameters and its forward. Parameter names:
// with a stem, vision_encoder.stem.conv{1,2,...}.{weight [out, in, 3, 3], bias} (one per stage),
// vision_encoder.patch_embed.{weight [D, patch_dim], bias}, vision_encoder.layers.N.{
// input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm, mlp.fc1,
// mlp.fc2}.{weight,bias}, vision_encoder.norm.{weight,bias},
// vision_projector.{fc1 [4D, 4D], fc2 [output_size, 4D]}.{weight,bias} (4 = merge_size^2),
// vision_projector.norm.weight [output_size]; with global_context,
// vision_projector.global.{weight [output_size, cells x stem_channels.back()], bias}, where cells
// is context_grid^2, plus 1 with context_pyramid; with motion_context,
// vision_projector.motion.weight [output_size, cells x stem_channels.back()].
//
// The encode calls record on the active tape for training; run them inside a NoGradScope for
// inference.
class VisionEncoder {
 public:
  // Allocates every parameter (f32, CPU, zero); call init() or load() next.
  explicit VisionEncoder(const VisionEncoderConfig& config);

  const VisionEncoderConfig& config() const { return config_; }
  // Every trainable parameter, each requiring grad, in a stable order.
  std::vector<NamedParameter>& parameters() { return params_.all(); }
  const std::vector<NamedParameter>& parameters() const { return params_.all(); }
  // Moves the parameters to `device`; pixels on another device are moved to it in forward.
  void to(const Device& device) { params_.to(device); }
  // The parameter called `name`; an unknown name is an error.
  Tensor& parameter(const std::string& name) { return params_.find(name); }

  // Normal(0, initializer_range) weights, zero biases, unit LayerNorm weights.
  void init(Generator& generator);
  // Reads every parameter from a safetensors file; a missing, extra or mis-shaped tensor is an
  // error naming it, and a failed load changes nothing.
  void load(const std::string& safetensors_path);
  // Writes every parameter to a safetensors file atomically.
  void save(const std::string& safetensors_path) const;

  // One image, f32 [3, H, W] normalised (H, W multiples of factor()) ->
  // [image_token_count(H, W), output_size].
  Tensor encode_image(const Tensor& pixels) const;
  // Same-sized images [N, 3, H, W], each encoded on its own (no attention across images) ->
  // [N, image_token_count(H, W), output_size].
  Tensor encode_images(const Tensor& pixels) const;
  // Video frames [T, 3, H, W]; T is padded to a multiple of temporal_patch_size by repeating the
  // last frame -> [video_token_count(T, H, W), output_size], one temporal slice after another,
  // each slice attending only within itself.
  Tensor encode_video(const Tensor& frames) const;

 private:
  // Frames [F, 3, H, W] -> per-frame patch features [F, C, H / q, W / q]: the pixels themselves
  // (C = 3, q = patch_size) without a stem, the stem's output (C = its last width, q = 1) with.
  Tensor frame_features(const Tensor& frames) const;
  // Frame features [N x temporal_patch_size, C, ...] from frame_features, consecutive frames
  // forming one slice -> [N, image_token_count(H, W), output_size].
  Tensor encode_slices(const Tensor& features) const;
  // Stem features [N x temporal_patch_size, C, H, W] -> the context of each slice [N, output_size].
  Tensor slice_context(const Tensor& features) const;
  // The maxima of frames [N, C, H, W] over the whole (with context_pyramid) and over each grid
  // cell, concatenated cell by cell: [N, context_cells() x C].
  Tensor cell_maxima(const Tensor& frames) const;
  // Cells the context pools: context_grid^2, plus the whole slice with context_pyramid.
  int64_t context_cells() const;
  // Checks f32 [..., 3, H, W] with H, W multiples of factor(); `what` names the argument.
  void check_pixels(const Tensor& pixels, int dims, const char* what) const;

  VisionEncoderConfig config_;
  ParameterList params_{"vision encoder"};
  std::vector<Conv2d> stem_;  // empty without a stem
  Linear patch_embed_;
  std::vector<TransformerBlock> blocks_;
  LayerNorm norm_;
  Projector projector_;
  Linear global_;      // only with global_context
  size_t motion_ = 0;  // the motion context's weight, only with motion_context
};

}  // namespace nuri
