// Images in and out (OpenCV), and the resize to the vision encoder's patch grid.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace nuri {

// An 8-bit RGB image, rows top to bottom, pixels interleaved (height x width x 3).
struct Image {
  int64_t height = 0;
  int64_t width = 0;
  std::vector<uint8_t> rgb;
};

// Limits that keep an enormous or hostile file from exhausting memory.
struct ImageLoadOptions {
  int64_t max_pixels = 64 << 20;  // larger images are an error naming the file and their size
};

// Decodes jpg, png, webp or bmp by content (not extension) with its EXIF orientation applied. An
// unreadable, corrupt, truncated, empty or non-image file throws nuri::Error naming the file.
Image load_image(const std::string& path, const ImageLoadOptions& options = {});

// Decodes an image held in memory (for example a data URL); `name` appears in errors.
Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name,
                   const ImageLoadOptions& options = {});

// Writes an image as png or jpg (by extension), atomically.
void save_image(const std::string& path, const Image& image);

// The size an image is resized to for the vision encoder: both sides multiples of `factor`
// (patch size x merge size), the aspect ratio kept as closely as possible, and the area within
// [min_pixels, max_pixels].
struct ImageGrid {
  int64_t height = 0;
  int64_t width = 0;
};
ImageGrid fit_image_grid(int64_t height, int64_t width, int64_t factor, int64_t min_pixels,
                         int64_t max_pixels);

// Resizes (area averaging when shrinking, bicubic when growing).
Image resize_image(const Image& image, int64_t height, int64_t width);

}  // namespace nuri
