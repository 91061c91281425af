// fit_image_grid (built with or without NURI_MEDIA) and the codecs' errors in a build without them.
#include <gtest/gtest.h>

#include "media/audio.h"
#include "media/image.h"
#include "media/video.h"
#include "media_test_util.h"

namespace nuri {
namespace {

// Expected sizes from Qwen2.5-VL's smart_resize (Python) for the same arguments.
TEST(FitImageGrid, MatchesQwenSmartResize) {
  struct Case {
    int64_t height, width, factor, min_pixels, max_pixels, want_h, want_w;
  };
  const Case cases[] = {
      {480, 640, 28, 3136, 1003520, 476, 644},    {1080, 1920, 28, 3136, 1003520, 728, 1316},
      {42, 70, 28, 3136, 1003520, 56, 56},        {10, 10, 28, 3136, 1003520, 56, 56},
      {4000, 3000, 28, 3136, 1003520, 1148, 840}, {224, 224, 28, 3136, 1003520, 224, 224},
      {14, 2800, 28, 3136, 1003520, 28, 2800},    {100, 100, 14, 50176, 200704, 224, 224},
  };
  for (const Case& c : cases) {
    ImageGrid grid = fit_image_grid(c.height, c.width, c.factor, c.min_pixels, c.max_pixels);
    EXPECT_EQ(grid.height, c.want_h) << c.height << "x" << c.width;
    EXPECT_EQ(grid.width, c.want_w) << c.height << "x" << c.width;
    EXPECT_EQ(grid.height % c.factor, 0);
    EXPECT_EQ(grid.width % c.factor, 0);
    EXPECT_LE(grid.height * grid.width, c.max_pixels);
    EXPECT_GE(grid.height * grid.width, c.min_pixels);
  }
}

TEST(FitImageGrid, RejectsBadArguments) {
  test::expect_error([] { fit_image_grid(0, 10, 28, 3136, 1003520); }, {"image size 0x10"});
  test::expect_error([] { fit_image_grid(10, 10, 0, 3136, 1003520); }, {"factor 0"});
  test::expect_error([] { fit_image_grid(10, 10, 28, 3136, 100); }, {"max_pixels 100"});
  test::expect_error([] { fit_image_grid(10, 10, 28, 5000, 4000); }, {"min_pixels 5000"});
  test::expect_error([] { fit_image_grid(10, 2010, 28, 3136, 1003520); }, {"aspect ratio"});
  // Within the aspect limit, but too narrow to keep a factor-wide side under max_pixels.
  test::expect_error([] { fit_image_grid(10000, 50, 28, 784, 3136); }, {"too extreme"});
}

#ifndef NURI_WITH_MEDIA
TEST(MediaUnavailable, CodecsSayHowToGetThem) {
  test::expect_error([] { load_audio("a.wav"); }, {"a.wav", "-DNURI_MEDIA=ON"});
  test::expect_error([] { load_image("b.png"); }, {"b.png", "-DNURI_MEDIA=ON"});
  test::expect_error([] { load_video("c.mp4"); }, {"c.mp4", "-DNURI_MEDIA=ON"});
}
#endif

}  // namespace
}  // namespace nuri
