// load_image, decode_image and resize_image with OpenCV (imgcodecs, imgproc).
#include <algorithm>
#include <climits>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "kernels/error.h"
#include "kernels/file_io.h"
#include "media/codec/input_file.h"
#include "media/image.h"

namespace nuri {
namespace {

// The largest encoded size accepted for `max_pixels`: an uncompressed 32-bit bmp of that many
// pixels, plus room for headers and metadata. OpenCV reads no header without decoding, so this
// bound (and OpenCV's own limit of 2^30 pixels per image) is what stands before the decode.
// OpenCV indexes the encoded buffer with an int, which caps it below 2 GiB in any case.
uint64_t max_encoded_bytes(int64_t max_pixels) {
  return std::min<uint64_t>(static_cast<uint64_t>(max_pixels) * 4 + (1 << 20), INT_MAX);
}

void check_options(const std::string& name, const ImageLoadOptions& options) {
  NURI_CHECK(options.max_pixels > 0 && options.max_pixels <= (int64_t{1} << 40), name,
             ": max_pixels must be in [1, 2^40], not ", options.max_pixels);
}

void check_encoded_size(const std::string& name, uint64_t size, const ImageLoadOptions& options) {
  NURI_CHECK(size > 0, name, ": empty file (0 bytes)");
  NURI_CHECK(size <= max_encoded_bytes(options.max_pixels), name, ": ", size,
             " bytes is too large for an image within the ", options.max_pixels, "-pixel limit");
}

// A jpeg ends with its EOI marker (FF D9); libjpeg only warns on a missing end and fills the
// rest with grey, so a truncated jpeg is caught here.
bool truncated_jpeg(const uint8_t* bytes, size_t size) {
  if (size < 3 || bytes[0] != 0xFF || bytes[1] != 0xD8 || bytes[2] != 0xFF) return false;
  size_t end = size;
  while (end > 2 && bytes[end - 1] == 0) --end;  // some writers pad after the end marker
  return !(end >= 4 && bytes[end - 2] == 0xFF && bytes[end - 1] == 0xD9);
}

Image decode(const uint8_t* bytes, size_t size, const std::string& name,
             const ImageLoadOptions& options) {
  check_encoded_size(name, size, options);
  NURI_CHECK(!truncated_jpeg(bytes, size), name, ": truncated jpeg (no end-of-image marker)");
  const cv::Mat encoded(1, static_cast<int>(size), CV_8U, const_cast<uint8_t*>(bytes));
  cv::Mat bgr;
  try {
    // IMREAD_COLOR gives 8-bit BGR from grey, alpha and 16-bit inputs alike, and applies the
    // EXIF orientation.
    bgr = cv::imdecode(encoded, cv::IMREAD_COLOR);
  } catch (const cv::Exception& error) {
    fail(name, ": cannot decode the image (", error.err, ")");
  }
  NURI_CHECK(!bgr.empty(), name,
             ": not a decodable jpg, png, webp or bmp image (unknown format, corrupt or "
             "truncated)");
  int64_t pixels = int64_t{bgr.rows} * bgr.cols;
  NURI_CHECK(pixels <= options.max_pixels, name, ": ", bgr.cols, "x", bgr.rows, " = ", pixels,
             " pixels exceeds the ", options.max_pixels, "-pixel limit");
  Image image;
  image.height = bgr.rows;
  image.width = bgr.cols;
  image.rgb.resize(static_cast<size_t>(pixels) * 3);
  cv::Mat rgb(bgr.rows, bgr.cols, CV_8UC3, image.rgb.data());
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return image;
}

}  // namespace

Image load_image(const std::string& path, const ImageLoadOptions& options) {
  check_options(path, options);
  check_encoded_size(path, check_input_file(path), options);
  std::string bytes = read_file(path);
  return decode(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path, options);
}

Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name,
                   const ImageLoadOptions& options) {
  check_options(name, options);
  return decode(bytes.data(), bytes.size(), name, options);
}

Image resize_image(const Image& image, int64_t height, int64_t width) {
  NURI_CHECK(image.height > 0 && image.width > 0 &&
                 image.rgb.size() == static_cast<size_t>(image.height * image.width * 3),
             "resize_image: the image is ", image.height, "x", image.width, " with ",
             image.rgb.size(), " bytes (expected height x width x 3, both sides positive)");
  NURI_CHECK(height > 0 && width > 0 && height <= (1 << 20) && width <= (1 << 20),
             "resize_image: target size ", height, "x", width, " (expected sides in [1, 2^20])");
  const cv::Mat source(static_cast<int>(image.height), static_cast<int>(image.width), CV_8UC3,
                       const_cast<uint8_t*>(image.rgb.data()));
  Image resized;
  resized.height = height;
  resized.width = width;
  resized.rgb.resize(static_cast<size_t>(height * width * 3));
  cv::Mat target(static_cast<int>(height), static_cast<int>(width), CV_8UC3, resized.rgb.data());
  bool shrinking = height <= image.height && width <= image.width;
  cv::resize(source, target, target.size(), 0, 0, shrinking ? cv::INTER_AREA : cv::INTER_CUBIC);
  return resized;
}

}  // namespace nuri
