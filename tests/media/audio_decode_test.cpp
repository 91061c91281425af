// load_audio on the 1 s 440 Hz tone in every format, and to_mono_16k.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "media/audio.h"
#include "media_test_util.h"

#ifdef NURI_WITH_MEDIA  // the codecs exist only with NURI_MEDIA
namespace nuri {
namespace {

struct ToneCase {
  const char* file;
  int tolerance;  // samples at 16 kHz: the codec's padding, about one frame
};

class ToneFormats : public ::testing::TestWithParam<ToneCase> {};

TEST_P(ToneFormats, DecodesToOneSecondOf440HzMono16k) {
  const ToneCase& tone = GetParam();
  std::vector<float> samples = load_audio(test::media_fixture(tone.file));
  EXPECT_NEAR(static_cast<double>(samples.size()), 16000.0, tone.tolerance) << tone.file;
  EXPECT_NEAR(test::dominant_frequency(samples), 440.0, 10.0) << tone.file;
  // The sine's amplitude is 1/8 in every channel; the mixdown averages the channels.
  EXPECT_NEAR(test::rms(samples), 0.125 / std::sqrt(2.0), 0.01) << tone.file;
  for (float sample : samples) ASSERT_LE(std::abs(sample), 1.0f) << tone.file;
}

INSTANTIATE_TEST_SUITE_P(
    AllFormats, ToneFormats,
    ::testing::Values(ToneCase{"tone_44k_stereo_s16.wav", 2}, ToneCase{"tone_8k_mono_u8.wav", 2},
                      ToneCase{"tone_48k_f32.wav", 2}, ToneCase{"tone.flac", 2},
                      ToneCase{"tone_vorbis.ogg", 400}, ToneCase{"tone.mp3", 420},
                      ToneCase{"tone.m4a", 400}, ToneCase{"tone_opus.webm", 320},
                      ToneCase{"tone.opus", 320}),
    [](const auto& info) {
      std::string name = info.param.file;
      for (char& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return name;
    });

TEST(ToMono16k, AveragesChannelsAndResamples) {
  // 0.5 s of stereo at 48 kHz: 1 kHz in the left channel, silence in the right.
  const int rate = 48000, frames = 24000;
  std::vector<float> stereo(2 * frames);
  for (int i = 0; i < frames; ++i) {
    stereo[2 * i] = 0.8f * static_cast<float>(std::sin(2 * std::numbers::pi * 1000 * i / rate));
  }
  std::vector<float> mono = to_mono_16k(stereo.data(), frames, 2, rate);
  EXPECT_NEAR(static_cast<double>(mono.size()), 8000.0, 2.0);
  EXPECT_NEAR(test::dominant_frequency(mono), 1000.0, 10.0);
  EXPECT_NEAR(test::rms(mono), 0.4 / std::sqrt(2.0), 0.01);
}

TEST(ToMono16k, KeepsMono16kAsIs) {
  std::vector<float> samples(1600);
  for (size_t i = 0; i < samples.size(); ++i) {
    samples[i] = static_cast<float>(std::sin(2 * std::numbers::pi * 500 * i / 16000.0));
  }
  std::vector<float> out = to_mono_16k(samples.data(), 1600, 1, 16000);
  ASSERT_EQ(out.size(), samples.size());
  for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], samples[i], 1e-5) << i;
}

TEST(ToMono16k, RejectsBadArguments) {
  float sample = 0;
  test::expect_error([&] { to_mono_16k(&sample, 1, 0, 16000); }, {"0 channels"});
  test::expect_error([&] { to_mono_16k(&sample, 1, 1, 0); }, {"sample rate 0"});
  test::expect_error([&] { to_mono_16k(&sample, -1, 1, 16000); }, {"negative frame count"});
  test::expect_error([&] { to_mono_16k(nullptr, 5, 1, 16000); }, {"no samples"});
}

TEST(LoadAudio, SoundtrackOfAVideo) {
  std::vector<float> samples = load_audio(test::media_fixture("bar_tone.mp4"));
  EXPECT_NEAR(static_cast<double>(samples.size()), 48000.0, 400.0);
  EXPECT_NEAR(test::dominant_frequency(samples), 440.0, 10.0);
}

}  // namespace
}  // namespace nuri
#endif
