// fit_image_grid: Qwen2-VL's smart_resize (as in Qwen2.5-VL, which accepts sides below the factor).
#include <algorithm>
#include <cmath>

#include "kernels/error.h"
#include "media/image.h"

namespace nuri {

ImageGrid fit_image_grid(int64_t height, int64_t width, int64_t factor, int64_t min_pixels,
                         int64_t max_pixels) {
  constexpr int64_t kMaxSide = int64_t{1} << 24;
  constexpr double kMaxAspect = 200;
  NURI_CHECK(height > 0 && width > 0 && height <= kMaxSide && width <= kMaxSide,
             "fit_image_grid: image size ", height, "x", width, " (expected sides in [1, 2^24])");
  NURI_CHECK(factor > 0 && factor <= 4096, "fit_image_grid: factor ", factor,
             " (expected 1 to 4096)");
  NURI_CHECK(max_pixels >= factor * factor && max_pixels <= (int64_t{1} << 40),
             "fit_image_grid: max_pixels ", max_pixels, " (expected factor^2 = ", factor * factor,
             " to 2^40)");
  NURI_CHECK(min_pixels >= 0 && min_pixels <= max_pixels, "fit_image_grid: min_pixels ", min_pixels,
             " (expected 0 to max_pixels = ", max_pixels, ")");
  double aspect = static_cast<double>(std::max(height, width)) / std::min(height, width);
  NURI_CHECK(aspect <= kMaxAspect, "fit_image_grid: aspect ratio of ", height, "x", width, " is ",
             aspect, ", over the limit of ", kMaxAspect);

  const double h = static_cast<double>(height), w = static_cast<double>(width);
  const double f = static_cast<double>(factor);
  // Python's round() rounds halves to even, as nearbyint does in the default rounding mode.
  auto round_to = [&](double x) {
    return std::max(factor, int64_t(std::nearbyint(x / f)) * factor);
  };
  auto floor_to = [&](double x) { return std::max(factor, int64_t(std::floor(x / f)) * factor); };
  auto ceil_to = [&](double x) { return int64_t(std::ceil(x / f)) * factor; };
  int64_t grid_h = round_to(h), grid_w = round_to(w);
  if (grid_h * grid_w > max_pixels) {
    double beta = std::sqrt(h * w / static_cast<double>(max_pixels));
    grid_h = floor_to(h / beta);
    grid_w = floor_to(w / beta);
  } else if (grid_h * grid_w < min_pixels) {
    double beta = std::sqrt(static_cast<double>(min_pixels) / (h * w));
    grid_h = ceil_to(h * beta);
    grid_w = ceil_to(w * beta);
  }
  NURI_CHECK(grid_h * grid_w <= max_pixels, "fit_image_grid: ", height, "x", width,
             " cannot keep both sides at least ", factor, " within ", max_pixels,
             " pixels (its aspect ratio is too extreme)");
  return {grid_h, grid_w};
}

}  // namespace nuri
