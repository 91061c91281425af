// Bad input to every decoder: each throws nuri::Error whose message names the file and the fault,
// without crashing or hanging. Most bad files are made here from the good fixtures.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <random>

#include "../common/temp_dir.h"
#include "media/audio.h"
#include "media/image.h"
#include "media/video.h"
#include "media_test_util.h"

#ifdef NURI_WITH_MEDIA  // the codecs exist only with NURI_MEDIA
namespace nuri {
namespace {

using test::expect_error;
using test::media_bytes;
using test::media_fixture;

class BadInput : public ::testing::Test {
 protected:
  // Writes the first `fraction` of a fixture's bytes under `name`.
  std::string truncated(const std::string& fixture, double fraction, const std::string& name) {
    std::string bytes = media_bytes(fixture);
    return dir_.write(name, bytes.substr(0, static_cast<size_t>(bytes.size() * fraction)));
  }
  // Writes `size` random bytes under `name`.
  std::string random_file(const std::string& name, size_t size) {
    std::mt19937 generator(1234);
    std::string bytes(size, '\0');
    for (char& byte : bytes) byte = static_cast<char>(generator() & 0xFF);
    return dir_.write(name, bytes);
  }

  test::TempDir dir_;
};

// A canonical 44-byte wav header: 8-bit unsigned mono PCM at `rate` Hz declaring `data_bytes`.
std::string wav_header(uint32_t rate, uint32_t data_bytes) {
  std::string header;
  auto u32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) header += static_cast<char>((v >> (8 * i)) & 0xFF);
  };
  auto u16 = [&](uint16_t v) {
    header += static_cast<char>(v & 0xFF);
    header += static_cast<char>(v >> 8);
  };
  header += "RIFF";
  u32(36 + data_bytes);
  header += "WAVEfmt ";
  u32(16);
  u16(1);     // PCM
  u16(1);     // mono
  u32(rate);  // sample rate
  u32(rate);  // bytes per second
  u16(1);     // block align
  u16(8);     // bits per sample
  header += "data";
  u32(data_bytes);
  return header;
}

// The CRC-32 of PNG chunks (ISO 3309, reflected polynomial 0xEDB88320).
uint32_t crc32(const std::string& bytes) {
  uint32_t crc = 0xFFFFFFFF;
  for (unsigned char byte : bytes) {
    crc ^= byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320 & (0 - (crc & 1)));
  }
  return ~crc;
}

TEST_F(BadInput, AudioMissingFileOrDirectory) {
  std::string missing = dir_.file("missing.wav");
  expect_error([&] { load_audio(missing); }, {missing, "no such file"});
  std::filesystem::create_directory(dir_.file("folder.wav"));
  expect_error([&] { load_audio(dir_.file("folder.wav")); },
               {dir_.file("folder.wav"), "is a directory"});
}

TEST_F(BadInput, AudioZeroBytes) {
  std::string path = dir_.write("empty.wav", "");
  expect_error([&] { load_audio(path); }, {path, "empty file (0 bytes)"});
}

TEST_F(BadInput, AudioRandomBytes) {
  for (const char* name : {"noise.wav", "noise.mp3"}) {
    std::string path = random_file(name, 20000);
    expect_error([&] { load_audio(path); }, {path});
  }
}

TEST_F(BadInput, WavTruncated) {
  for (double fraction : {0.1, 0.5}) {
    std::string path = truncated("tone_44k_stereo_s16.wav", fraction, "cut.wav");
    expect_error([&] { load_audio(path); }, {path, "truncated"});
  }
}

TEST_F(BadInput, FlacTruncated) {
  for (double fraction : {0.1, 0.5}) {
    std::string path = truncated("tone.flac", fraction, "cut.flac");
    expect_error([&] { load_audio(path); }, {path, "truncated"});
  }
}

TEST_F(BadInput, OggVorbisTruncated) {
  std::string path = truncated("tone_vorbis.ogg", 0.5, "cut.ogg");
  expect_error([&] { load_audio(path); }, {path, "malformed"});
}

TEST_F(BadInput, M4aTruncated) {
  // ffmpeg writes the index (moov) last, so a cut file has none.
  std::string path = truncated("tone.m4a", 0.5, "cut.m4a");
  expect_error([&] { load_audio(path); }, {path, "not a readable media file"});
}

TEST_F(BadInput, OpusWebmTruncated) {
  // The Matroska header declares the duration; half the file decodes about half of it.
  std::string path = truncated("tone_opus.webm", 0.5, "cut.webm");
  expect_error([&] { load_audio(path); }, {path, "truncated"});
}

TEST_F(BadInput, WavHeaderClaimsHugeData) {
  std::string path =
      dir_.write("huge.wav", wav_header(8000, 0x7FFFFFF0) + std::string(800, '\x80'));
  expect_error([&] { load_audio(path); }, {path, "truncated"});
}

TEST_F(BadInput, WavWithNoSamples) {
  std::string path = dir_.write("silent.wav", wav_header(8000, 0));
  expect_error([&] { load_audio(path); }, {path, "empty (0 samples)"});
}

TEST_F(BadInput, WavOfTwoHoursExceedsTheLimit) {
  // A real 2 h file at 8 kHz u8, its data a sparse run of zeros: the header is checked first.
  uint32_t data_bytes = 2 * 3600 * 8000;
  std::string path = dir_.write("long.wav", wav_header(8000, data_bytes));
  std::filesystem::resize_file(path, 44 + data_bytes);
  expect_error([&] { load_audio(path); }, {path, "7200 s of audio exceeds the 600 s limit"});
}

TEST_F(BadInput, AudioOverMaxSeconds) {
  AudioLoadOptions options;
  options.max_seconds = 0.5;
  for (const char* name : {"tone.flac", "tone.m4a"}) {
    std::string path = media_fixture(name);
    expect_error([&] { load_audio(path, options); }, {path, "exceeds the 0.5 s limit"});
  }
}

TEST_F(BadInput, AudioFromImageOrSilentVideo) {
  for (const char* name : {"pattern.png", "bar_silent.webm"}) {
    std::string path = media_fixture(name);
    expect_error([&] { load_audio(path); }, {path, "no audio stream"});
  }
}

TEST_F(BadInput, TextNamedWav) {
  std::string path = dir_.write("notes.wav", "these are notes, not sound\n");
  expect_error([&] { load_audio(path); }, {path, "not a readable media file"});
}

TEST_F(BadInput, ImageMissingDirectoryOrEmpty) {
  std::string missing = dir_.file("missing.png");
  expect_error([&] { load_image(missing); }, {missing, "no such file"});
  std::filesystem::create_directory(dir_.file("folder.png"));
  expect_error([&] { load_image(dir_.file("folder.png")); },
               {dir_.file("folder.png"), "is a directory"});
  std::string empty = dir_.write("empty.png", "");
  expect_error([&] { load_image(empty); }, {empty, "empty file (0 bytes)"});
  expect_error([&] { decode_image({}, "upload"); }, {"upload", "empty file (0 bytes)"});
}

TEST_F(BadInput, ImageRandomOrText) {
  std::string noise = random_file("noise.png", 5000);
  expect_error([&] { load_image(noise); }, {noise, "not a decodable"});
  std::string text = dir_.write("note.jpg", "a jpg this is not\n");
  expect_error([&] { load_image(text); }, {text, "not a decodable"});
}

TEST_F(BadInput, ImageTruncated) {
  for (double fraction : {0.1, 0.5}) {
    std::string png = truncated("pattern.png", fraction, "cut.png");
    expect_error([&] { load_image(png); }, {png, "not a decodable"});
    std::string jpg = truncated("pattern.jpg", fraction, "cut.jpg");
    expect_error([&] { load_image(jpg); }, {jpg, "truncated jpeg"});
    std::string webp = truncated("pattern.webp", fraction, "cut.webp");
    expect_error([&] { load_image(webp); }, {webp, "not a decodable"});
  }
}

TEST_F(BadInput, PngHeaderClaimsHugeSize) {
  // IHDR (after the 8-byte signature and the chunk's length) set to 100000 x 100000, with its
  // CRC recomputed so that only the size is wrong.
  std::string png = media_bytes("pattern.png");
  auto put_u32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) png[at + i] = static_cast<char>((v >> (24 - 8 * i)) & 0xFF);
  };
  ASSERT_EQ(png.substr(12, 4), "IHDR");
  put_u32(16, 100000);
  put_u32(20, 100000);
  put_u32(29, crc32(png.substr(12, 17)));
  std::string path = dir_.write("huge.png", png);
  // OpenCV refuses it from the header, before allocating (its limit is 2^30 pixels).
  expect_error([&] { load_image(path); }, {path, "cannot decode the image", "MAX_IMAGE_PIXELS"});
}

TEST_F(BadInput, ImageOverMaxPixels) {
  ImageLoadOptions options;
  options.max_pixels = 1000;
  std::string path = media_fixture("pattern.png");
  expect_error([&] { load_image(path, options); },
               {path, "64x48 = 3072 pixels exceeds the 1000-pixel limit"});
  std::string bmp = media_fixture("pattern.bmp");
  options.max_pixels = 10;  // allows at most 40 bytes + 1 MiB; the bmp is smaller: decoded, then
                            // refused by its size
  expect_error([&] { load_image(bmp, options); }, {bmp, "exceeds the 10-pixel limit"});
}

TEST_F(BadInput, ImageFileTooLargeIsRefusedUnread) {
  // 300 MB (sparse) is more than 4 bytes for each of the default 64 Mi pixels plus 1 MiB.
  std::string path = dir_.write("big.png", media_bytes("pattern.png"));
  std::filesystem::resize_file(path, 300'000'000);
  expect_error([&] { load_image(path); },
               {path, "300000000 bytes is too large for an image within the 67108864-pixel limit"});
}

TEST_F(BadInput, ImageFromAudio) {
  std::string path = media_fixture("tone.flac");
  expect_error([&] { load_image(path); }, {path, "not a decodable"});
}

TEST_F(BadInput, VideoMissingRandomOrTruncated) {
  std::string missing = dir_.file("missing.mp4");
  expect_error([&] { load_video(missing); }, {missing, "no such file"});
  std::string noise = random_file("noise.mp4", 30000);
  expect_error([&] { load_video(noise); }, {noise});
  for (double fraction : {0.1, 0.5}) {
    std::string mp4 = truncated("bar_tone.mp4", fraction, "cut.mp4");
    expect_error([&] { load_video(mp4); }, {mp4, "not a readable media file"});
  }
  std::string webm = truncated("bar_silent.webm", 0.5, "cut.webm");
  expect_error([&] { load_video(webm); }, {webm, "truncated"});
}

TEST_F(BadInput, VideoOverMaxSeconds) {
  VideoLoadOptions options;
  options.max_seconds = 1;
  std::string path = media_fixture("bar_tone.mp4");
  expect_error([&] { load_video(path, options); }, {path, "3 s of video exceeds the 1 s limit"});
}

TEST_F(BadInput, VideoFromAudio) {
  std::string path = media_fixture("tone.flac");
  expect_error([&] { load_video(path); }, {path, "no video stream"});
}

TEST_F(BadInput, VideoBadOptions) {
  std::string path = media_fixture("bar_tone.mp4");
  VideoLoadOptions options;
  options.fps = 0;
  expect_error([&] { load_video(path, options); }, {path, "fps must be"});
  options = {};
  options.max_frames = 0;
  expect_error([&] { load_video(path, options); }, {path, "max_frames must be positive"});
}

}  // namespace
}  // namespace nuri
#endif
