// The log-mel front end against golden spectrograms from torch.stft and a numpy Slaney filterbank
// (tests/reference/make_mel_reference.py), streaming against whole-input, and its errors.
#include "media/mel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/safetensors.h"

namespace nuri {
namespace {

const char* const kClips[] = {"long", "short", "tiny201", "tiny200", "tiny170", "tiny160"};

SafetensorsFile reference() {
  return SafetensorsFile::open(std::string(NURI_SOURCE_DIR) +
                               "/tests/data/media/mel_reference.safetensors");
}

std::vector<float> clip_samples(const SafetensorsFile& file, const std::string& clip) {
  return file.tensor(clip + "_samples").to_vector();
}

// Largest |a - b| over two tensors of the same shape.
float max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(shape_str(a.shape()), shape_str(b.shape()));
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  float worst = 0.0f;
  for (size_t i = 0; i < std::min(x.size(), y.size()); ++i)
    worst = std::max(worst, std::fabs(x[i] - y[i]));
  return worst;
}

TEST(LogMel, MatchesTorchReference) {
  const SafetensorsFile file = reference();
  for (const int n_mels : {80, 128}) {
    for (const MelClamp clamp : {MelClamp::fixed_floor, MelClamp::whisper}) {
      const std::string mode = clamp == MelClamp::whisper ? "whisper" : "fixed_floor";
      float worst = 0.0f;
      for (const char* clip : kClips) {
        const std::string name = cat(clip, "_mel", n_mels, "_", mode);
        SCOPED_TRACE(name);
        const Tensor expected = file.tensor(name);
        const Tensor actual = log_mel(clip_samples(file, clip), {n_mels, clamp});
        ASSERT_EQ(actual.dtype(), DType::f32);
        ASSERT_EQ(shape_str(actual.shape()), shape_str(expected.shape()));
        const float diff = max_abs_diff(actual, expected);
        EXPECT_LT(diff, 1e-3f);
        worst = std::max(worst, diff);
      }
      std::printf("log_mel n_mels %d %s: max abs diff %.3g against the reference\n", n_mels,
                  mode.c_str(), worst);
    }
  }
}

TEST(LogMel, ClampModesDifferWhereTheInputIsSilent) {
  // The long clip holds 0.4 s of silence: Whisper clamps it at its maximum - 8, the fixed floor
  // at -8; both modes must produce those values there, not merely the same ones.
  const SafetensorsFile file = reference();
  const std::vector<float> samples = clip_samples(file, "long");
  const Tensor fixed = log_mel(samples, {80, MelClamp::fixed_floor});
  const Tensor whisper = log_mel(samples, {80, MelClamp::whisper});
  const std::vector<float> f = fixed.to_vector(), w = whisper.to_vector();
  const float top = *std::max_element(w.begin(), w.end());
  const int64_t frame = 120;  // 1.2 s, inside the silence from 1.0 s to 1.4 s
  EXPECT_EQ(f[frame], (kMelFloor + 4.0f) / 4.0f);
  EXPECT_NEAR(w[frame], top - 2.0f, 1e-6f);  // (max - 8 + 4) / 4 = (max + 4) / 4 - 2
}

TEST(LogMel, ShortInputs) {
  // No frame below one hop; empty input gives [n_mels, 0] in both modes.
  for (const int64_t n : {0, 1, 2, 100, 159}) {
    for (const MelClamp clamp : {MelClamp::fixed_floor, MelClamp::whisper}) {
      const Tensor mel = log_mel(std::vector<float>(n, 0.25f), {128, clamp});
      EXPECT_EQ(shape_str(mel.shape()), "[128, 0]") << n << " samples";
    }
  }
  // 160 samples make one frame (its values are checked against the reference, clip tiny160).
  EXPECT_EQ(shape_str(log_mel(std::vector<float>(160, 0.25f)).shape()), "[80, 1]");
  EXPECT_EQ(shape_str(log_mel(std::vector<float>(319, 0.25f)).shape()), "[80, 1]");
  EXPECT_EQ(shape_str(log_mel(std::vector<float>(320, 0.25f)).shape()), "[80, 2]");
}

// Pushes `samples` in pieces of the given sizes (cycled; the last piece takes what is left),
// checks that each frame comes out as soon as it is complete, and returns all frames.
Tensor stream(const std::vector<float>& samples, int n_mels, const std::vector<int64_t>& sizes) {
  StreamingLogMel streamer(n_mels);
  std::vector<std::vector<float>> rows(n_mels);
  const auto append = [&](const Tensor& part) {
    EXPECT_EQ(part.dim(), 2);
    EXPECT_EQ(part.size(0), n_mels);
    const std::vector<float> values = part.to_vector();
    const int64_t k = part.size(1);
    for (int m = 0; m < n_mels; ++m)
      rows[m].insert(rows[m].end(), values.begin() + m * k, values.begin() + (m + 1) * k);
  };
  const int64_t total = static_cast<int64_t>(samples.size());
  int64_t pushed = 0;
  for (size_t i = 0; pushed < total; ++i) {
    const int64_t size = std::min(sizes[i % sizes.size()], total - pushed);
    append(streamer.push(samples.data() + pushed, size));
    pushed += size;
    // Frame t needs samples up to 160 t + 199 and, for frame 0, sample 200.
    const int64_t complete = pushed >= 201 ? (pushed - 200) / kMelHop + 1 : 0;
    EXPECT_EQ(streamer.frames(), complete) << "after " << pushed << " samples";
  }
  append(streamer.push(nullptr, 0));
  append(streamer.finish());
  EXPECT_EQ(streamer.frames(), total / kMelHop);
  std::vector<float> joined;
  for (const std::vector<float>& row : rows) joined.insert(joined.end(), row.begin(), row.end());
  return Tensor::from_vector(joined, {n_mels, static_cast<int64_t>(rows[0].size())});
}

TEST(StreamingLogMel, EqualsWholeInputForAnyPieceSizes) {
  const SafetensorsFile file = reference();
  std::mt19937 rng(7);
  std::uniform_int_distribution<int64_t> random_size(0, 700);
  std::vector<int64_t> random_sizes(64);
  for (int64_t& size : random_sizes) size = random_size(rng);
  const std::vector<std::vector<int64_t>> patterns = {
      {1}, {7}, {160}, {401}, random_sizes, {std::numeric_limits<int32_t>::max()}, {0, 3, 0, 250}};
  for (const char* clip : kClips) {
    const std::vector<float> samples = clip_samples(file, clip);
    for (const int n_mels : {80, 128}) {
      const Tensor whole = log_mel(samples, {n_mels, MelClamp::fixed_floor});
      for (size_t p = 0; p < patterns.size(); ++p) {
        SCOPED_TRACE(cat(clip, ", n_mels ", n_mels, ", pattern ", p));
        const Tensor streamed = stream(samples, n_mels, patterns[p]);
        ASSERT_EQ(shape_str(streamed.shape()), shape_str(whole.shape()));
        EXPECT_EQ(max_abs_diff(streamed, whole), 0.0f);
      }
    }
  }
}

TEST(StreamingLogMel, ShortStreams) {
  for (const int64_t n : {0, 1, 159, 160, 200}) {
    std::vector<float> samples(n);
    for (int64_t i = 0; i < n; ++i) samples[i] = std::sin(0.3f * i);
    const Tensor whole = log_mel(samples);
    const Tensor streamed = stream(samples, 80, {1});
    ASSERT_EQ(shape_str(streamed.shape()), shape_str(whole.shape())) << n << " samples";
    EXPECT_EQ(max_abs_diff(streamed, whole), 0.0f) << n << " samples";
  }
}

// Expects fn to throw nuri::Error whose message contains `needle`.
template <class Fn>
void expect_error(Fn fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one naming " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(LogMel, RejectsBadInput) {
  expect_error([] { log_mel(std::vector<float>(400), {81, MelClamp::fixed_floor}); }, "81");
  expect_error([] { StreamingLogMel streamer(81); }, "81");
  std::vector<float> samples(1000, 0.5f);
  samples[617] = std::numeric_limits<float>::quiet_NaN();
  expect_error([&] { log_mel(samples); }, "sample 617");

  StreamingLogMel streamer;
  const std::vector<float> good(300, 0.5f);
  streamer.push(good.data(), 300);
  expect_error([&] { streamer.push(samples.data(), 1000); }, "sample 917");
  expect_error([&] { streamer.push(good.data(), -1); }, "-1");
  expect_error([&] { streamer.push(nullptr, 5); }, "null");
  streamer.finish();
  expect_error([&] { streamer.push(good.data(), 1); }, "after finish");
  expect_error([&] { streamer.finish(); }, "twice");
}

}  // namespace
}  // namespace nuri
