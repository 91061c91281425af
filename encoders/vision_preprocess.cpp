// The resizing half of the vision input path. It lives apart from vision_encoder.cpp so that a
// program that only encodes tensors does not link media's resizer.
#include "encoders/vision_encoder.h"
#include "kernels/ops/shape.h"

namespace nuri {

ImageGrid VisionEncoderConfig::image_grid(int64_t height, int64_t width) const {
  return fit_image_grid(height, width, factor(), min_pixels, max_pixels);
}

ImageGrid VisionEncoderConfig::video_grid(int64_t height, int64_t width) const {
  return fit_image_grid(height, width, factor(), video_min(), video_max());
}

Tensor prepare_image(const Image& image, const VisionEncoderConfig& config) {
  const ImageGrid grid = config.image_grid(image.height, image.width);
  if (grid.height == image.height && grid.width == image.width) return image_to_pixels(image);
  return image_to_pixels(resize_image(image, grid.height, grid.width));
}

Tensor prepare_video(const std::vector<Image>& frames, const VisionEncoderConfig& config) {
  NURI_CHECK(!frames.empty(), "prepare_video: no frames");
  const ImageGrid grid = config.video_grid(frames[0].height, frames[0].width);
  std::vector<Tensor> parts;
  parts.reserve(frames.size());
  for (const Image& frame : frames) {
    const Tensor pixels = frame.height == grid.height && frame.width == grid.width
                              ? image_to_pixels(frame)
                              : image_to_pixels(resize_image(frame, grid.height, grid.width));
    parts.push_back(pixels.view({1, 3, grid.height, grid.width}));
  }
  return concat(parts, 0);
}

}  // namespace nuri
