// The vision encoder: token counts and order, batches, 2D positions, video, gradients, pixel
// conversion, configs and checkpoints.
#include "encoders/vision_encoder.h"

#include <gtest/gtest.h>

#include <cmath>

#include <map>
#include <nlohmann/json.hpp>

#include "encoder_test_util.h"
#include "kernels/error.h"
#include "kernels/ops/elementwise.h"
#include "kernels/ops/shape.h"
#include "kernels/safetensors.h"

namespace nuri {
namespace {

using test::check_gradients;
using test::random_tensor;
using test::relative_max_diff;
using test::TempDir;

// Patches of 2 pixels, merged 2x2: image sides are multiples of 4 and each token covers 4x4.
VisionEncoderConfig tiny_config() {
  VisionEncoderConfig c;
  c.patch_size = 2;
  c.hidden_size = 16;
  c.num_layers = 2;
  c.num_heads = 2;
  c.intermediate_size = 24;
  c.output_size = 12;
  c.min_pixels = 16;
  c.max_pixels = 4096;
  c.initializer_range = 0.2f;
  return c;
}

// The tiny config with a two-stage convolutional stem (3 then 6 channels): the first stage pools
// 2x2, the last pools what is left of the 2-pixel patch (1x1).
VisionEncoderConfig tiny_stem_config() {
  VisionEncoderConfig c = tiny_config();
  c.stem_channels = {3, 6};
  return c;
}

// The stem config with the image's pooled stem features added to every token.
VisionEncoderConfig tiny_global_config() {
  VisionEncoderConfig c = tiny_stem_config();
  c.global_context = true;
  return c;
}

// The global context pooled per cell of a 3x3 grid: a 4x4 or 4x6 feature map gives overlapping
// cells of unequal sizes.
VisionEncoderConfig tiny_grid_config() {
  VisionEncoderConfig c = tiny_global_config();
  c.context_grid = 3;
  return c;
}

// A short name for a config's vision path, for SCOPED_TRACE.
const char* describe(const VisionEncoderConfig& c) {
  if (c.stem_channels.empty()) return "linear patches";
  if (!c.global_context) return "convolutional stem";
  return c.context_grid == 1 ? "stem and global context" : "stem and grid context";
}

VisionEncoder initialised(const VisionEncoderConfig& config, uint64_t seed) {
  VisionEncoder encoder(config);
  Generator gen{seed, 0};
  encoder.init(gen);
  return encoder;
}

// Copy of pixels [3, H, W] with its 4x4 square at merged-grid cell (r, c) replaced by noise.
Tensor with_square_changed(const Tensor& pixels, int64_t r, int64_t c, uint64_t seed) {
  Tensor out = pixels.clone();
  const std::vector<float> noise = random_tensor({3 * 16}, seed).to_vector();
  const int64_t h = pixels.size(1), w = pixels.size(2);
  float* p = out.data<float>();
  for (int64_t ch = 0; ch < 3; ++ch) {
    for (int64_t y = 0; y < 4; ++y) {
      for (int64_t x = 0; x < 4; ++x)
        p[(ch * h + r * 4 + y) * w + c * 4 + x] = noise[ch * 16 + y * 4 + x];
    }
  }
  return out;
}

// pixels [3, H, W] with its 4x4 squares at merged-grid cells a and b swapped, each square's own
// pixels unchanged.
Tensor squares_swapped(const Tensor& pixels, std::pair<int64_t, int64_t> a,
                       std::pair<int64_t, int64_t> b) {
  Tensor out = pixels.clone();
  const int64_t h = pixels.size(1), w = pixels.size(2);
  const float* in = pixels.data<float>();
  float* o = out.data<float>();
  for (int64_t ch = 0; ch < 3; ++ch) {
    for (int64_t y = 0; y < 4; ++y) {
      for (int64_t x = 0; x < 4; ++x) {
        const int64_t at_a = (ch * h + a.first * 4 + y) * w + a.second * 4 + x;
        const int64_t at_b = (ch * h + b.first * 4 + y) * w + b.second * 4 + x;
        o[at_a] = in[at_b];
        o[at_b] = in[at_a];
      }
    }
  }
  return out;
}

TEST(VisionEncoder, ParameterNamesAndShapes) {
  const VisionEncoder encoder(tiny_config());
  std::map<std::string, Shape> actual;
  for (const NamedParameter& p : encoder.parameters()) actual[p.name] = p.tensor.shape();
  EXPECT_EQ(actual.at("vision_encoder.patch_embed.weight"), (Shape{16, 3 * 2 * 2 * 2}));
  EXPECT_EQ(actual.at("vision_encoder.patch_embed.bias"), (Shape{16}));
  EXPECT_EQ(actual.at("vision_encoder.layers.1.self_attn.k_proj.weight"), (Shape{16, 16}));
  EXPECT_EQ(actual.at("vision_encoder.layers.0.mlp.fc1.weight"), (Shape{24, 16}));
  EXPECT_EQ(actual.at("vision_encoder.norm.weight"), (Shape{16}));
  EXPECT_EQ(actual.at("vision_projector.fc1.weight"), (Shape{64, 64}));
  EXPECT_EQ(actual.at("vision_projector.fc2.weight"), (Shape{12, 64}));
  EXPECT_EQ(actual.at("vision_projector.norm.weight"), (Shape{12}));
  EXPECT_EQ(actual.size(), 2u + 2 * 16 + 2 + 5);
}

TEST(VisionEncoder, StemParameterNamesAndShapes) {
  const VisionEncoder encoder(tiny_stem_config());
  std::map<std::string, Shape> actual;
  for (const NamedParameter& p : encoder.parameters()) actual[p.name] = p.tensor.shape();
  EXPECT_EQ(actual.at("vision_encoder.stem.conv1.weight"), (Shape{3, 3, 3, 3}));
  EXPECT_EQ(actual.at("vision_encoder.stem.conv2.weight"), (Shape{6, 3, 3, 3}));
  EXPECT_EQ(actual.at("vision_encoder.stem.conv2.bias"), (Shape{6}));
  EXPECT_EQ(actual.at("vision_encoder.patch_embed.weight"), (Shape{16, 6 * 2}));
  EXPECT_EQ(actual.size(), 4u + 2 + 2 * 16 + 2 + 5);
}

TEST(VisionEncoder, GlobalContextParameterNamesAndShapes) {
  const VisionEncoder encoder(tiny_global_config());
  std::map<std::string, Shape> actual;
  for (const NamedParameter& p : encoder.parameters()) actual[p.name] = p.tensor.shape();
  EXPECT_EQ(actual.at("vision_projector.global.weight"), (Shape{12, 6}));
  EXPECT_EQ(actual.at("vision_projector.global.bias"), (Shape{12}));
  EXPECT_EQ(actual.size(), 4u + 2 + 2 * 16 + 2 + 5 + 2);
  VisionEncoder grid(tiny_grid_config());
  EXPECT_EQ(grid.parameter("vision_projector.global.weight").shape(), (Shape{12, 9 * 6}));
}

TEST(VisionEncoder, StemKeepsTokenCountsAndVideoSlices) {
  for (const VisionEncoderConfig& config :
       {tiny_stem_config(), tiny_global_config(), tiny_grid_config()}) {
    SCOPED_TRACE(describe(config));
    const VisionEncoder encoder = initialised(config, 30);
    NoGradScope no_grad;
    EXPECT_EQ(encoder.encode_image(random_tensor({3, 8, 12}, 31)).shape(), (Shape{6, 12}));
    const Tensor frames = random_tensor({3, 3, 8, 4}, 32);
    const Tensor out = encoder.encode_video(frames);
    ASSERT_EQ(out.shape(), (Shape{4, 12}));
    // The odd last frame is repeated, so the last slice is that frame as an image (its context
    // pooled over that slice alone).
    EXPECT_LT(relative_max_diff(slice(out, 0, 2, 4),
                                encoder.encode_image(slice(frames, 0, 2, 3).view({3, 8, 4}))),
              1e-5);
    // A batch of images equals each image on its own.
    const Tensor batch = random_tensor({2, 3, 8, 8}, 33);
    EXPECT_LT(relative_max_diff(slice(encoder.encode_images(batch), 0, 1, 2).view({4, 12}),
                                encoder.encode_image(slice(batch, 0, 1, 2).view({3, 8, 8}))),
              1e-5);
  }
}

// Zeroes the first block's value and output projections: attention then leaves each token its
// own, so a token sees only its patch and the context.
void block_attention(VisionEncoder& encoder) {
  NoGradScope no_grad;
  for (const char* name : {"vision_encoder.layers.0.self_attn.v_proj.weight",
                           "vision_encoder.layers.0.self_attn.o_proj.weight"})
    encoder.parameter(name).copy_from(Tensor::zeros(encoder.parameter(name).shape()));
}

// Whether the first token of `pixels` changes (beyond rounding) when they become `changed`.
void expect_first_token_change(const VisionEncoder& encoder, const Tensor& pixels,
                               const Tensor& changed, bool expect_change) {
  NoGradScope no_grad;
  const Tensor first = slice(encoder.encode_image(pixels), 0, 0, 1);
  const Tensor after = slice(encoder.encode_image(changed), 0, 0, 1);
  if (expect_change) {
    EXPECT_GT(relative_max_diff(first, after), 1e-3);
  } else {
    EXPECT_LT(relative_max_diff(first, after), 1e-6);
  }
}

TEST(VisionEncoder, GlobalContextCarriesAFarPatchIntoEveryToken) {
  // Without ViT blocks a token sees only its own patch, unless the context adds the whole image.
  VisionEncoderConfig local = tiny_stem_config();
  local.num_layers = 1;
  VisionEncoderConfig global = local;
  global.global_context = true;
  // The far corner's cell lies beyond the stem's receptive field (3 pixels) from the first token.
  const Tensor pixels = random_tensor({3, 16, 16}, 43);
  const Tensor changed = with_square_changed(pixels, 3, 3, 44);
  for (const auto& [config, expect_change] : {std::pair{local, false}, std::pair{global, true}}) {
    SCOPED_TRACE(config.global_context ? "global context" : "no context");
    VisionEncoder encoder = initialised(config, 45);
    block_attention(encoder);
    expect_first_token_change(encoder, pixels, changed, expect_change);
  }
}

TEST(VisionEncoder, GridContextCellsFollowRasterOrder) {
  // A change in the bottom-left quarter reaches the first token through the third cell's columns
  // of the context layer alone (the second, were the cells in column order).
  VisionEncoderConfig config = tiny_stem_config();
  config.num_layers = 1;
  config.global_context = true;
  config.context_grid = 2;
  // A 16x16 image has an 8x8 feature map; the stem's features of rows and columns 4..7 see
  // pixels from 5 on, and columns 0..3 pixels up to 10, so the square at rows 12..15 and columns
  // 0..3 changes the bottom-left cell only.
  const Tensor pixels = random_tensor({3, 16, 16}, 46);
  const Tensor changed = with_square_changed(pixels, 3, 0, 47);
  const int64_t channels = config.stem_channels.back();
  for (const bool keep_third_cell : {false, true}) {
    SCOPED_TRACE(keep_third_cell ? "only the third cell's columns"
                                 : "the third cell's columns zero");
    VisionEncoder encoder = initialised(config, 48);
    block_attention(encoder);
    Tensor& weight = encoder.parameter("vision_projector.global.weight");
    float* w = weight.data<float>();
    for (int64_t row = 0; row < weight.size(0); ++row) {
      for (int64_t col = 0; col < weight.size(1); ++col) {
        const bool third_cell = col >= 2 * channels && col < 3 * channels;
        if (third_cell != keep_third_cell) w[row * weight.size(1) + col] = 0;
      }
    }
    expect_first_token_change(encoder, pixels, changed, keep_third_cell);
  }
}

TEST(VisionEncoder, PyramidContextPutsTheWholeSliceFirst) {
  // With only the pyramid's first cell's columns kept, the context is the global context's: the
  // same tokens as a context_grid 1 encoder whose context layer has those columns.
  VisionEncoderConfig pyramid = tiny_stem_config();
  pyramid.num_layers = 1;
  pyramid.global_context = true;
  pyramid.context_grid = 2;
  pyramid.context_pyramid = true;
  VisionEncoderConfig global = pyramid;
  global.context_grid = 1;
  global.context_pyramid = false;
  VisionEncoder with_pyramid = initialised(pyramid, 49);
  VisionEncoder with_global = initialised(global, 49);
  const int64_t channels = pyramid.stem_channels.back();
  const Tensor& small = with_global.parameter("vision_projector.global.weight");
  ASSERT_EQ(small.size(1), channels);
  Tensor& wide = with_pyramid.parameter("vision_projector.global.weight");
  ASSERT_EQ(wide.shape(), (Shape{small.size(0), 5 * channels}));
  for (const NamedParameter& p : with_global.parameters())
    if (p.name != "vision_projector.global.weight")
      with_pyramid.parameter(p.name).copy_from(p.tensor);
  float* w = wide.data<float>();
  for (int64_t row = 0; row < wide.size(0); ++row)
    for (int64_t col = 0; col < wide.size(1); ++col)
      w[row * wide.size(1) + col] = col < channels ? small.data<float>()[row * channels + col] : 0;
  const Tensor pixels = random_tensor({3, 16, 16}, 50);
  // The wider product adds zeros, but BLAS may group its sums differently (by CPU and K): equal
  // to rounding.
  const std::vector<float> got = with_pyramid.encode_image(pixels).to_vector();
  const std::vector<float> expected = with_global.encode_image(pixels).to_vector();
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], expected[i], 1e-5f * (1 + std::abs(expected[i]))) << "element " << i;
}

TEST(VisionEncoder, TokenCounts) {
  VisionEncoderConfig defaults;
  EXPECT_EQ(defaults.factor(), 28);
  EXPECT_EQ(defaults.image_token_count(224, 224), 64);
  EXPECT_EQ(defaults.image_token_count(448, 280), 16 * 10);
  EXPECT_EQ(defaults.video_token_count(5, 56, 84), 3 * 2 * 3);
  EXPECT_THROW(defaults.image_token_count(224, 230), Error);

  const VisionEncoder encoder = initialised(tiny_config(), 1);
  NoGradScope no_grad;
  EXPECT_EQ(encoder.encode_image(random_tensor({3, 8, 12}, 2)).shape(), (Shape{6, 12}));
  EXPECT_EQ(encoder.encode_images(random_tensor({3, 3, 4, 16}, 3)).shape(), (Shape{3, 4, 12}));
  EXPECT_EQ(encoder.encode_video(random_tensor({5, 3, 8, 4}, 4)).shape(), (Shape{6, 12}));
  EXPECT_THROW(encoder.encode_image(random_tensor({3, 8, 10}, 5)), Error);
  EXPECT_THROW(encoder.encode_image(random_tensor({1, 8, 8}, 5)), Error);
  EXPECT_THROW(encoder.encode_images(random_tensor({3, 8, 8}, 5)), Error);
}

TEST(VisionEncoder, TokensFollowTheMergedGridInRasterOrder) {
  // Without attention output each patch is encoded on its own, so a token can depend only on
  // the pixels of its own merged square: changing square (r, c) changes token r * 3 + c alone.
  VisionEncoder encoder = initialised(tiny_config(), 6);
  for (int layer = 0; layer < 2; ++layer) {
    const std::string prefix = "vision_encoder.layers." + std::to_string(layer);
    encoder.parameter(prefix + ".self_attn.o_proj.weight").copy_from(Tensor::zeros({16, 16}));
    encoder.parameter(prefix + ".self_attn.o_proj.bias").copy_from(Tensor::zeros({16}));
  }
  NoGradScope no_grad;
  const Tensor pixels = random_tensor({3, 8, 12}, 7);
  const Tensor base = encoder.encode_image(pixels);
  for (int64_t r = 0; r < 2; ++r) {
    for (int64_t c = 0; c < 3; ++c) {
      const Tensor out = encoder.encode_image(with_square_changed(pixels, r, c, 8 + r * 3 + c));
      for (int64_t token = 0; token < 6; ++token) {
        const double diff =
            relative_max_diff(slice(out, 0, token, token + 1), slice(base, 0, token, token + 1));
        if (token == r * 3 + c) {
          EXPECT_GT(diff, 1e-2) << "square " << r << "," << c;
        } else {
          EXPECT_EQ(diff, 0.0) << "square " << r << "," << c << " changed token " << token;
        }
      }
    }
  }
}

TEST(VisionEncoder, ImagesInABatchDoNotSeeEachOther) {
  const VisionEncoder encoder = initialised(tiny_config(), 9);
  NoGradScope no_grad;
  const Tensor a = random_tensor({3, 8, 12}, 10), b = random_tensor({3, 8, 12}, 11);
  const Tensor c = random_tensor({3, 8, 12}, 12);
  const Tensor batch = encoder.encode_images(
      concat({a.view({1, 3, 8, 12}), b.view({1, 3, 8, 12}), c.view({1, 3, 8, 12})}, 0));
  const Tensor other =
      encoder.encode_images(concat({a.view({1, 3, 8, 12}), random_tensor({2, 3, 8, 12}, 13)}, 0));
  const Tensor alone = encoder.encode_image(a).view({1, 6, 12});
  EXPECT_LT(relative_max_diff(slice(batch, 0, 0, 1), alone), 1e-5);
  EXPECT_LT(relative_max_diff(slice(other, 0, 0, 1), alone), 1e-5);
  EXPECT_LT(relative_max_diff(slice(batch, 0, 2, 3), encoder.encode_image(c).view({1, 6, 12})),
            1e-5);
}

TEST(VisionEncoder, PositionsDistinguishRowsAndColumns) {
  const VisionEncoder encoder = initialised(tiny_config(), 14);
  NoGradScope no_grad;
  const Tensor pixels = random_tensor({3, 8, 12}, 15);
  const Tensor base = encoder.encode_image(pixels);
  // Two squares swapped within a row (other columns), then within a column (other rows). The
  // tokens, put back in the original square order, would equal the original's if the encoder
  // ignored that coordinate.
  for (const auto& [a, b] :
       {std::pair{std::pair<int64_t, int64_t>{0, 0}, std::pair<int64_t, int64_t>{0, 2}},
        std::pair{std::pair<int64_t, int64_t>{0, 1}, std::pair<int64_t, int64_t>{1, 1}}}) {
    const Tensor out = encoder.encode_image(squares_swapped(pixels, a, b));
    const int64_t ta = a.first * 3 + a.second, tb = b.first * 3 + b.second;
    std::vector<Tensor> reordered;
    for (int64_t t = 0; t < 6; ++t) {
      const int64_t from = t == ta ? tb : t == tb ? ta : t;
      reordered.push_back(slice(out, 0, from, from + 1));
    }
    EXPECT_GT(relative_max_diff(concat(reordered, 0), base), 1e-2)
        << "squares " << ta << " and " << tb;
  }
  // A transposed image differs from the original.
  const Tensor square = random_tensor({3, 12, 12}, 16);
  EXPECT_GT(relative_max_diff(encoder.encode_image(transpose(square, 1, 2)),
                              encoder.encode_image(square)),
            1e-2);
}

TEST(VisionEncoder, VideoPadsOddFramesAndEncodesSlicesApart) {
  const VisionEncoder encoder = initialised(tiny_config(), 16);
  NoGradScope no_grad;
  const Tensor frames = random_tensor({3, 3, 8, 4}, 17);
  const Tensor out = encoder.encode_video(frames);
  ASSERT_EQ(out.shape(), (Shape{4, 12}));
  const Tensor last = slice(frames, 0, 2, 3);
  const Tensor even = encoder.encode_video(concat({frames, last}, 0));
  EXPECT_EQ(out.to_vector(), even.to_vector());
  // The first slice alone gives the first tokens; the second slice ignores the first.
  EXPECT_LT(relative_max_diff(slice(out, 0, 0, 2), encoder.encode_video(slice(frames, 0, 0, 2))),
            1e-5);
  EXPECT_LT(relative_max_diff(slice(out, 0, 2, 4), encoder.encode_video(concat({last, last}, 0))),
            1e-5);
  // Two equal frames are one image; two different frames are not.
  EXPECT_LT(relative_max_diff(slice(out, 0, 2, 4), encoder.encode_image(last.view({3, 8, 4}))),
            1e-5);
  EXPECT_GT(relative_max_diff(slice(out, 0, 0, 2),
                              encoder.encode_image(slice(frames, 0, 0, 1).view({3, 8, 4}))),
            1e-3);
}

TEST(VisionEncoder, GradientsReachEveryParameterAndMatchFiniteDifferences) {
  // The finite differences step weights by 1e-2, which must not move a max-pool's argmax: the
  // stem's seed is one whose windows hold no maxima that close (max_pool2d's own gradient is
  // checked by the op harness in float64 with steps of 1e-5).
  const std::pair<VisionEncoderConfig, uint64_t> cases[] = {{tiny_config(), 18},
                                                            {tiny_stem_config(), 34},
                                                            {tiny_global_config(), 34},
                                                            {tiny_grid_config(), 34}};
  for (const auto& [config, seed] : cases) {
    SCOPED_TRACE(describe(config));
    VisionEncoder encoder = initialised(config, seed);
    const Tensor pixels = random_tensor({2, 3, 8, 8}, seed + 1);
    check_gradients(
        encoder.parameters(), [&] { return encoder.encode_images(pixels); }, {2, 4, 12}, 2);
  }
}

TEST(VisionEncoder, MotionContextFollowsTheChangeWithinASlice) {
  VisionEncoderConfig config = tiny_grid_config();
  config.motion_context = true;
  VisionEncoder encoder = initialised(config, 34);
  const std::string motion = "vision_projector.motion.weight";
  EXPECT_EQ(encoder.parameter(motion).shape(), (Shape{12, 9 * 6}));  // 3x3 cells of 6 channels
  const Tensor frames = random_tensor({2, 3, 8, 8}, 35);
  check_gradients(
      encoder.parameters(), [&] { return encoder.encode_video(frames); }, {4, 12}, 2);
  NoGradScope no_grad;
  const Tensor image = slice(frames, 0, 0, 1).view({3, 8, 8});
  const Tensor image_before = encoder.encode_image(image);
  const Tensor video_before = encoder.encode_video(frames);
  // Scaling the motion weight leaves an image's tokens (no change between its frames) as they
  // were and moves a clip's.
  Tensor& weight = encoder.parameter(motion);
  weight.copy_from(scale(weight, 3.0f));
  EXPECT_EQ(encoder.encode_image(image).to_vector(), image_before.to_vector());
  EXPECT_GT(relative_max_diff(encoder.encode_video(frames), video_before), 1e-3);
  // It compares frames, so it needs the context and temporal patches.
  VisionEncoderConfig alone = tiny_stem_config();
  alone.motion_context = true;
  EXPECT_THROW(VisionEncoder{alone}, Error);
}

TEST(VisionEncoder, ImageToPixelsNormalisesEachChannel) {
  Image image;
  image.height = 2;
  image.width = 3;
  for (int i = 0; i < 18; ++i) image.rgb.push_back(static_cast<uint8_t>(i * 14));
  const Tensor pixels = image_to_pixels(image);
  ASSERT_EQ(pixels.shape(), (Shape{3, 2, 3}));
  const std::vector<float> v = pixels.to_vector();
  const double mean[3] = {0.48145466, 0.4578275, 0.40821073};
  const double std[3] = {0.26862954, 0.26130258, 0.27577711};
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < 2; ++y) {
      for (int x = 0; x < 3; ++x) {
        const double byte = ((y * 3 + x) * 3 + c) * 14;
        EXPECT_NEAR(v[(c * 2 + y) * 3 + x], (byte / 255.0 - mean[c]) / std[c], 1e-5);
      }
    }
  }
  image.rgb.pop_back();
  EXPECT_THROW(image_to_pixels(image), Error);
}

TEST(VisionEncoder, ConfigJsonRoundTripsAndRejectsUnknownKeys) {
  VisionEncoderConfig config = tiny_config();
  config.merge_size = 1;
  const nlohmann::json json = config.to_json();
  EXPECT_EQ(json.at("patch_size"), 2);
  EXPECT_EQ(json.at("max_pixels"), 4096);
  EXPECT_EQ(VisionEncoderConfig::from_json(json).to_json(), json);
  EXPECT_EQ(VisionEncoderConfig::from_json(nlohmann::json::object()).to_json(),
            VisionEncoderConfig().to_json());
  auto error_of = [](const nlohmann::json& j) -> std::string {
    try {
      VisionEncoderConfig::from_json(j);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  nlohmann::json unknown = json;
  unknown["spatial_merge_size"] = 2;
  EXPECT_NE(error_of(unknown).find("unknown key 'spatial_merge_size'"), std::string::npos);
  nlohmann::json typed = json;
  typed["patch_size"] = 2.5;
  EXPECT_NE(error_of(typed).find("'patch_size'"), std::string::npos);
  nlohmann::json heads = json;
  heads["num_heads"] = 8;  // head dim 2, not a multiple of 4
  EXPECT_NE(error_of(heads).find("multiple of 4"), std::string::npos);
  nlohmann::json stem = json;
  stem["stem_channels"] = {8, 16};
  EXPECT_EQ(VisionEncoderConfig::from_json(stem).stem_channels, (std::vector<int64_t>{8, 16}));
  stem["stem_channels"] = {8, 16, 16};  // patch 2 allows one halving, not two
  EXPECT_NE(error_of(stem).find("patch_size 2 must be divisible by 4 with a stem of 3 stages"),
            std::string::npos)
      << error_of(stem);
  stem["stem_channels"] = {8, -1};
  EXPECT_NE(error_of(stem).find("stem_channels must all be positive, got -1"), std::string::npos);
  stem["stem_channels"] = 8;
  EXPECT_NE(error_of(stem).find("'stem_channels': expected a list of integers"), std::string::npos);
  nlohmann::json global = json;
  global["global_context"] = true;  // without a stem
  EXPECT_NE(
      error_of(global).find("global_context pools the stem's features and needs stem_channels"),
      std::string::npos)
      << error_of(global);
  global["stem_channels"] = {8, 16};
  EXPECT_TRUE(VisionEncoderConfig::from_json(global).global_context);
  global["global_context"] = 1;
  EXPECT_NE(error_of(global).find("'global_context': expected true or false"), std::string::npos)
      << error_of(global);
  global["global_context"] = false;
  global["context_grid"] = 2;
  EXPECT_NE(error_of(global).find("context_grid 2 needs global_context"), std::string::npos)
      << error_of(global);
  global["global_context"] = true;
  global["context_grid"] = 1;
  global["context_pyramid"] = true;
  EXPECT_NE(error_of(global).find("context_pyramid adds the whole slice to a grid and needs "
                                  "context_grid > 1, got 1"),
            std::string::npos)
      << error_of(global);
  global["context_grid"] = 3;
  EXPECT_TRUE(VisionEncoderConfig::from_json(global).context_pyramid);
  // Video: a frame rate, a frame limit and a pixel budget of its own (0: the image's).
  EXPECT_EQ(json.at("video_fps"), 2.0);
  EXPECT_EQ(json.at("video_max_pixels"), 0);
  nlohmann::json video = json;
  video["video_fps"] = 0;
  EXPECT_NE(error_of(video).find("video_fps must be in (0, 60], got 0"), std::string::npos)
      << error_of(video);
  video["video_fps"] = 1.5;
  video["max_video_frames"] = 0;
  EXPECT_NE(error_of(video).find("max_video_frames must be positive, got 0"), std::string::npos)
      << error_of(video);
  video["max_video_frames"] = 8;
  video["video_max_pixels"] = 8;  // below the image's min_pixels 16, which video then keeps
  EXPECT_NE(error_of(video).find("(video_min_pixels 16, video_max_pixels 8, 0 meaning the "
                                 "image's) must have max >= min"),
            std::string::npos)
      << error_of(video);
  video["video_min_pixels"] = 4;
  const VisionEncoderConfig budget = VisionEncoderConfig::from_json(video);
  EXPECT_EQ(budget.video_fps, 1.5);
  EXPECT_EQ(budget.video_grid(64, 64).height, 2);  // 2 x 2 pixels, the grid's unit (factor 2)
  EXPECT_EQ(budget.image_grid(64, 64).height, 64);
  video["video_min_pixels"] = -1;
  EXPECT_NE(error_of(video).find("must be zero (the image's) or positive, got -1"),
            std::string::npos)
      << error_of(video);
  global["context_pyramid"] = false;
  for (const int grid : {0, 9}) {
    global["context_grid"] = grid;
    EXPECT_NE(error_of(global).find(cat("context_grid must be from 1 to 8, got ", grid)),
              std::string::npos)
        << error_of(global);
  }
}

TEST(VisionEncoder, SaveAndLoadRoundTrip) {
  TempDir dir;
  const VisionEncoder saved = initialised(tiny_config(), 20);
  saved.save(dir.file("vision.safetensors"));
  VisionEncoder loaded = initialised(tiny_config(), 21);
  const Tensor pixels = random_tensor({3, 8, 8}, 22);
  NoGradScope no_grad;
  EXPECT_NE(loaded.encode_image(pixels).to_vector(), saved.encode_image(pixels).to_vector());
  loaded.load(dir.file("vision.safetensors"));
  EXPECT_EQ(loaded.encode_image(pixels).to_vector(), saved.encode_image(pixels).to_vector());
  VisionEncoderConfig wider = tiny_config();
  wider.hidden_size = 32;
  VisionEncoder other(wider);
  try {
    other.load(dir.file("vision.safetensors"));
    FAIL() << "a checkpoint of another width loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'vision_encoder.patch_embed.weight' has shape [16, 24]"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace nuri
