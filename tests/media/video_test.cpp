// load_video on the moving-bar fixtures: sampled frame times, content, soundtrack and limits.
#include <gtest/gtest.h>

#include "media/video.h"
#include "media_test_util.h"

#ifdef NURI_WITH_MEDIA  // the codecs exist only with NURI_MEDIA
namespace nuri {
namespace {

// The left edge of the white bar: the first column whose middle row is bright.
int bar_column(const Image& image) {
  int64_t y = image.height / 2;
  for (int64_t x = 0; x < image.width; ++x) {
    if (image.rgb[static_cast<size_t>((y * image.width + x) * 3)] > 128) return static_cast<int>(x);
  }
  return -1;
}

// The fixtures are 3 s at 10 fps with the bar at x = 20 px per second; 2 fps samples 0, 0.5, ...
void expect_bar_frames(const Video& video, const std::string& where) {
  ASSERT_EQ(video.frames.size(), 6u) << where;
  for (size_t k = 0; k < video.frames.size(); ++k) {
    const VideoFrame& frame = video.frames[k];
    EXPECT_NEAR(frame.time, k / 2.0, 0.051) << where << " frame " << k;
    if (k > 0) {
      EXPECT_GT(frame.time, video.frames[k - 1].time) << where;
    }
    ASSERT_EQ(frame.image.height, 48) << where;
    ASSERT_EQ(frame.image.width, 64) << where;
    EXPECT_NEAR(bar_column(frame.image), 20 * frame.time, 1.01) << where << " frame " << k;
  }
  EXPECT_NEAR(video.duration, 3.0, 0.1) << where;
}

TEST(LoadVideo, Mp4FramesAtTwoFpsWithSoundtrack) {
  Video video = load_video(test::media_fixture("bar_tone.mp4"));
  expect_bar_frames(video, "mp4");
  EXPECT_NEAR(video.audio.size() / 16000.0, video.duration, 0.05);
  EXPECT_NEAR(test::dominant_frequency(video.audio), 440.0, 10.0);
}

TEST(LoadVideo, WebmWithoutSoundtrack) {
  Video video = load_video(test::media_fixture("bar_silent.webm"));
  expect_bar_frames(video, "webm");
  EXPECT_TRUE(video.audio.empty());
}

TEST(LoadVideo, TakesTheFirstFrameAtOrAfterEachSlot) {
  VideoLoadOptions options;
  options.fps = 0.7;  // slots at 0, 1.43 and 2.86 s; frames come every 0.1 s
  Video video = load_video(test::media_fixture("bar_silent.webm"), options);
  ASSERT_EQ(video.frames.size(), 3u);
  EXPECT_NEAR(video.frames[0].time, 0.0, 1e-6);
  EXPECT_NEAR(video.frames[1].time, 1.5, 1e-6);
  EXPECT_NEAR(video.frames[2].time, 2.9, 1e-6);
}

TEST(LoadVideo, StopsAtMaxFramesAndSkipsAudioOnRequest) {
  VideoLoadOptions options;
  options.max_frames = 3;
  options.audio = false;
  Video video = load_video(test::media_fixture("bar_tone.mp4"), options);
  ASSERT_EQ(video.frames.size(), 3u);
  EXPECT_NEAR(video.frames[2].time, 1.0, 0.051);
  EXPECT_TRUE(video.audio.empty());
}

TEST(LoadVideo, KeepsTheWholeSoundtrackPastMaxFrames) {
  VideoLoadOptions options;
  options.max_frames = 1;
  Video video = load_video(test::media_fixture("bar_tone.mp4"), options);
  ASSERT_EQ(video.frames.size(), 1u);
  EXPECT_NEAR(video.audio.size() / 16000.0, 3.0, 0.05);
}

}  // namespace
}  // namespace nuri
#endif
