// load_image, decode_image and resize_image on good input.
#include <gtest/gtest.h>

#include <cstdlib>

#include "media/image.h"
#include "media_test_util.h"

#ifdef NURI_WITH_MEDIA  // the codecs exist only with NURI_MEDIA
namespace nuri {
namespace {

struct Rgb {
  int r, g, b;
};

Rgb pixel(const Image& image, int64_t y, int64_t x) {
  const uint8_t* p = &image.rgb[static_cast<size_t>((y * image.width + x) * 3)];
  return {p[0], p[1], p[2]};
}

void expect_colour(const Image& image, int64_t y, int64_t x, Rgb want, int tolerance,
                   const std::string& where) {
  Rgb got = pixel(image, y, x);
  EXPECT_LE(std::abs(got.r - want.r), tolerance) << where << " r at " << y << "," << x;
  EXPECT_LE(std::abs(got.g - want.g), tolerance) << where << " g at " << y << "," << x;
  EXPECT_LE(std::abs(got.b - want.b), tolerance) << where << " b at " << y << "," << x;
}

const Rgb kRed{255, 0, 0}, kGreen{0, 255, 0}, kBlue{0, 0, 255}, kWhite{255, 255, 255};

// The fixture pattern, 64 wide and 48 high: red, green / blue, white quadrants.
void expect_pattern(const Image& image, int tolerance, const std::string& where) {
  ASSERT_EQ(image.height, 48) << where;
  ASSERT_EQ(image.width, 64) << where;
  ASSERT_EQ(image.rgb.size(), 48u * 64 * 3) << where;
  expect_colour(image, 12, 16, kRed, tolerance, where);
  expect_colour(image, 12, 48, kGreen, tolerance, where);
  expect_colour(image, 36, 16, kBlue, tolerance, where);
  expect_colour(image, 36, 48, kWhite, tolerance, where);
}

TEST(LoadImage, EveryFormatGivesTheRgbPattern) {
  expect_pattern(load_image(test::media_fixture("pattern.png")), 0, "png");
  expect_pattern(load_image(test::media_fixture("pattern_rgba.png")), 0, "rgba png");
  expect_pattern(load_image(test::media_fixture("pattern.bmp")), 0, "bmp");
  expect_pattern(load_image(test::media_fixture("pattern.webp")), 0, "lossless webp");
  expect_pattern(load_image(test::media_fixture("pattern.jpg")), 24, "jpg");
}

TEST(LoadImage, GreyBecomesEqualChannels) {
  Image image = load_image(test::media_fixture("pattern_gray.png"));
  ASSERT_EQ(image.height, 48);
  ASSERT_EQ(image.width, 64);
  for (int64_t i = 0; i < image.height * image.width; ++i) {
    ASSERT_EQ(image.rgb[3 * i], image.rgb[3 * i + 1]) << i;
    ASSERT_EQ(image.rgb[3 * i], image.rgb[3 * i + 2]) << i;
  }
  // Luma of pure red (BT.601: 0.299) and of white.
  EXPECT_NEAR(pixel(image, 12, 16).r, 76, 3);
  EXPECT_NEAR(pixel(image, 36, 48).r, 255, 1);
}

TEST(LoadImage, AppliesExifOrientation) {
  // Orientation 6: the stored 64x48 pattern is shown turned 90 degrees clockwise, 48x64.
  Image image = load_image(test::media_fixture("pattern_exif6.jpg"));
  ASSERT_EQ(image.height, 64);
  ASSERT_EQ(image.width, 48);
  expect_colour(image, 16, 36, kRed, 24, "top right");
  expect_colour(image, 48, 36, kGreen, 24, "bottom right");
  expect_colour(image, 16, 12, kBlue, 24, "top left");
  expect_colour(image, 48, 12, kWhite, 24, "bottom left");
}

TEST(DecodeImage, DecodesBytesByContent) {
  std::string bytes = test::media_bytes("pattern.png");
  Image image = decode_image(std::vector<uint8_t>(bytes.begin(), bytes.end()), "upload");
  expect_pattern(image, 0, "png bytes");
}

TEST(ResizeImage, ShrinksByAreaAndGrowsBicubic) {
  Image image = load_image(test::media_fixture("pattern.png"));
  Image small = resize_image(image, 6, 8);
  ASSERT_EQ(small.height, 6);
  ASSERT_EQ(small.width, 8);
  // Area averaging of 8x8 blocks that lie inside one quadrant keeps its colour exactly.
  expect_colour(small, 1, 1, kRed, 0, "small");
  expect_colour(small, 1, 6, kGreen, 0, "small");
  expect_colour(small, 4, 1, kBlue, 0, "small");
  expect_colour(small, 4, 6, kWhite, 0, "small");
  Image large = resize_image(image, 96, 128);
  ASSERT_EQ(large.rgb.size(), 96u * 128 * 3);
  expect_colour(large, 24, 32, kRed, 0, "large");
  expect_colour(large, 72, 96, kWhite, 0, "large");
}

TEST(ResizeImage, RejectsBadSizes) {
  Image image = load_image(test::media_fixture("pattern.png"));
  test::expect_error([&] { resize_image(image, 0, 10); }, {"resize_image", "0x10"});
  Image broken = image;
  broken.rgb.pop_back();
  test::expect_error([&] { resize_image(broken, 10, 10); }, {"resize_image", "48x64"});
}

}  // namespace
}  // namespace nuri
#endif
