// The media writers (save_wav, save_image, save_video) and to_mono_16k, checked by reading the
// files back with libsndfile, OpenCV and the ffprobe command, not with nuri's own decoders.
// The corpus and the codecs need a media build (NURI_MEDIA).
#ifdef NURI_WITH_MEDIA
#include <gtest/gtest.h>
#include <sndfile.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "kernels/error.h"
#include "media/audio.h"
#include "media/image.h"
#include "media/video.h"
#include "tests/common/ffprobe.h"
#include "tests/common/temp_dir.h"

namespace nuri {
namespace {

// A width x height RGB image whose pixel (x, y) is (x, y, 255 - x) mod 256.
Image gradient(int64_t height, int64_t width) {
  Image image{height, width, std::vector<uint8_t>(static_cast<size_t>(height * width * 3))};
  for (int64_t y = 0; y < height; ++y) {
    for (int64_t x = 0; x < width; ++x) {
      uint8_t* pixel = &image.rgb[static_cast<size_t>((y * width + x) * 3)];
      pixel[0] = static_cast<uint8_t>(x * 4);
      pixel[1] = static_cast<uint8_t>(y * 4);
      pixel[2] = static_cast<uint8_t>(255 - x * 4);
    }
  }
  return image;
}

TEST(SaveWav, WritesSixteenBitMonoThatReadsBack) {
  test::TempDir dir;
  std::vector<float> samples(1600);
  for (size_t i = 0; i < samples.size(); ++i) samples[i] = 0.5f * std::sin(0.05f * i);
  samples[10] = 1.7f;  // clipped to full scale
  save_wav(dir.file("a.wav"), samples, 16000);
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"a.wav"});  // no temporary left behind

  SF_INFO info{};
  SNDFILE* file = sf_open(dir.file("a.wav").c_str(), SFM_READ, &info);
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(info.samplerate, 16000);
  EXPECT_EQ(info.channels, 1);
  EXPECT_EQ(info.format, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  std::vector<float> back(samples.size() + 10);
  ASSERT_EQ(sf_read_float(file, back.data(), static_cast<sf_count_t>(back.size())),
            static_cast<sf_count_t>(samples.size()));
  sf_close(file);
  for (size_t i = 0; i < samples.size(); ++i) {
    EXPECT_NEAR(back[i], std::clamp(samples[i], -1.0f, 1.0f), 1.0 / 16384) << "sample " << i;
  }
}

TEST(SaveWav, RefusesBadInputAndLeavesNoFile) {
  test::TempDir dir;
  EXPECT_THROW(save_wav(dir.file("a.wav"), {}), Error);
  try {
    save_wav(dir.file("a.wav"), {0.1f, NAN, 0.2f});
    FAIL() << "a NaN sample was written";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sample 1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(save_wav(dir.file("missing/a.wav"), {0.1f}), Error);
  EXPECT_TRUE(dir.listing().empty());
}

TEST(SaveImage, PngKeepsEveryPixelInRgbOrder) {
  test::TempDir dir;
  const Image image = gradient(20, 30);
  save_image(dir.file("a.png"), image);
  const cv::Mat bgr = cv::imread(dir.file("a.png"), cv::IMREAD_COLOR);
  ASSERT_EQ(bgr.rows, 20);
  ASSERT_EQ(bgr.cols, 30);
  for (int y = 0; y < 20; ++y) {
    for (int x = 0; x < 30; ++x) {
      const cv::Vec3b pixel = bgr.at<cv::Vec3b>(y, x);
      const uint8_t* rgb = &image.rgb[static_cast<size_t>((y * 30 + x) * 3)];
      ASSERT_EQ(pixel[2], rgb[0]);
      ASSERT_EQ(pixel[1], rgb[1]);
      ASSERT_EQ(pixel[0], rgb[2]);
    }
  }
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"a.png"});
}

TEST(SaveImage, JpgIsCloseAndBadInputIsRefused) {
  test::TempDir dir;
  Image red{16, 16, std::vector<uint8_t>(16 * 16 * 3)};
  for (size_t i = 0; i < red.rgb.size(); i += 3) red.rgb[i] = 200;
  save_image(dir.file("a.JPG"), red);
  const cv::Mat bgr = cv::imread(dir.file("a.JPG"), cv::IMREAD_COLOR);
  ASSERT_EQ(bgr.rows, 16);
  EXPECT_NEAR(bgr.at<cv::Vec3b>(8, 8)[2], 200, 6);
  EXPECT_NEAR(bgr.at<cv::Vec3b>(8, 8)[0], 0, 6);

  EXPECT_THROW(save_image(dir.file("a.gif"), red), Error);
  Image short_buffer = red;
  short_buffer.rgb.resize(10);
  EXPECT_THROW(save_image(dir.file("b.png"), short_buffer), Error);
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"a.JPG"});
}

TEST(SaveVideo, WritesMpeg4AndAacWithTheirDurations) {
  test::TempDir dir;
  std::vector<Image> frames(16, gradient(48, 64));
  std::vector<float> audio(2 * kAudioSampleRate);
  for (size_t i = 0; i < audio.size(); ++i) audio[i] = 0.3f * std::sin(0.2f * i);
  save_video(dir.file("a.mp4"), frames, 8, audio);
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"a.mp4"});

  const nlohmann::json info = test::ffprobe(dir.file("a.mp4"));
  ASSERT_EQ(info["streams"].size(), 2u);
  const nlohmann::json& video = info["streams"][0];
  const nlohmann::json& sound = info["streams"][1];
  EXPECT_EQ(video["codec_name"], "mpeg4");
  EXPECT_EQ(video["width"], 64);
  EXPECT_EQ(video["height"], 48);
  EXPECT_EQ(video["nb_frames"], "16");
  EXPECT_NEAR(std::stod(video["duration"].get<std::string>()), 2.0, 1e-3);
  EXPECT_EQ(sound["codec_name"], "aac");
  EXPECT_EQ(sound["sample_rate"], "16000");
  EXPECT_EQ(sound["channels"], 1);
  EXPECT_NEAR(std::stod(sound["duration"].get<std::string>()), 2.0, 0.07);
}

TEST(SaveVideo, SilentVideoHasOneStream) {
  test::TempDir dir;
  save_video(dir.file("a.mp4"), std::vector<Image>(5, gradient(32, 32)), 2.5);
  const nlohmann::json info = test::ffprobe(dir.file("a.mp4"));
  ASSERT_EQ(info["streams"].size(), 1u);
  EXPECT_EQ(info["streams"][0]["codec_type"], "video");
  EXPECT_NEAR(std::stod(info["streams"][0]["duration"].get<std::string>()), 2.0, 1e-3);
}

TEST(SaveVideo, RefusesBadFramesAndLeavesNoFile) {
  test::TempDir dir;
  EXPECT_THROW(save_video(dir.file("a.mp4"), {}, 8), Error);
  EXPECT_THROW(save_video(dir.file("a.mp4"), {gradient(31, 32)}, 8), Error);  // odd side
  EXPECT_THROW(save_video(dir.file("a.mp4"), {gradient(32, 32), gradient(32, 34)}, 8), Error);
  EXPECT_THROW(save_video(dir.file("a.mp4"), {gradient(32, 32)}, 0), Error);
  EXPECT_THROW(save_video(dir.file("a.mp4"), {gradient(32, 32)}, 8, {0.1f, INFINITY}), Error);
  EXPECT_TRUE(dir.listing().empty());
}

TEST(ToMono16k, AveragesChannelsAndKeepsDurationAndPitch) {
  // One second of 22.05 kHz stereo: a 441 Hz sine plus 0.2 on the left, 0.2 on the right.
  const int rate = 22050;
  std::vector<float> stereo(2 * rate);
  for (int i = 0; i < rate; ++i) {
    const float s = 0.5f * std::sin(2 * 3.14159265f * 441 * i / rate);
    stereo[2 * i] = s + 0.2f;
    stereo[2 * i + 1] = 0.2f;
  }
  const std::vector<float> mono = to_mono_16k(stereo.data(), rate, 2, rate);
  EXPECT_NEAR(static_cast<double>(mono.size()), 16000.0, 40.0);
  // Away from the edges the result is 0.2 + 0.25 sin(2 pi 441 t).
  for (int i = 1000; i < 15000; i += 97) {
    const double expected = 0.2 + 0.25 * std::sin(2 * 3.14159265 * 441 * i / 16000.0);
    EXPECT_NEAR(mono[static_cast<size_t>(i)], expected, 0.01) << "sample " << i;
  }
  EXPECT_THROW(to_mono_16k(stereo.data(), 10, 0, rate), Error);
}

}  // namespace
}  // namespace nuri
#endif  // NURI_WITH_MEDIA
