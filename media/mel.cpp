// The Whisper log-mel front end: FFTW's single-precision real FFT per frame, the power spectrum
// and the Slaney mel filterbank in double precision, log10, the clamp, then (x + 4) / 4.
#include "media/mel.h"

#include <fftw3.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <mutex>
#include <numbers>

namespace nuri {
namespace {

constexpr int kHalf = kMelFft / 2;       // reflect padding at each end
constexpr int kBins = kMelFft / 2 + 1;   // frequencies of the real FFT, 0 to 8 kHz
constexpr double kSampleRate = 16000.0;  // the rate the filterbank assumes
constexpr double kMelEpsilon = 1e-10;    // log10 is taken of max(mel, this)
constexpr int64_t kParallelFrames = 32;  // fewer frames than this run on one thread

// The FFTW planner is not thread-safe; every plan nuri makes is made under this lock.
std::mutex& fftw_planner_mutex() {
  static std::mutex mutex;
  return mutex;
}

// The real-to-complex plan of kMelFft points, made once and executed on per-call buffers from
// fftwf_malloc (which have the alignment the plan was made with).
fftwf_plan r2c_plan() {
  static const fftwf_plan plan = [] {
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    float* in = fftwf_alloc_real(kMelFft);
    fftwf_complex* out = fftwf_alloc_complex(kBins);
    NURI_CHECK(in && out, "log_mel: out of memory for the FFT buffers");
    // FFTW_ESTIMATE picks the plan without timing runs, so results do not vary between runs.
    fftwf_plan made = fftwf_plan_dft_r2c_1d(kMelFft, in, out, FFTW_ESTIMATE);
    fftwf_free(in);
    fftwf_free(out);
    NURI_CHECK(made != nullptr, "log_mel: FFTW could not plan a real FFT of ", kMelFft, " points");
    return made;
  }();
  return plan;
}

// The periodic Hann window of kMelFft points (torch.hann_window's default).
const std::vector<float>& hann_window() {
  static const std::vector<float> window = [] {
    std::vector<float> w(kMelFft);
    for (int k = 0; k < kMelFft; ++k)
      w[k] = static_cast<float>(0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * k / kMelFft));
    return w;
  }();
  return window;
}

// Slaney's mel scale (librosa's htk=False): linear below 1 kHz, logarithmic above.
constexpr double kMelLinearHz = 200.0 / 3.0;  // Hz per mel below 1 kHz
constexpr double kMelLogHz = 1000.0;          // where the logarithmic part starts
constexpr double kMelLogMel = kMelLogHz / kMelLinearHz;
const double kMelLogStep = std::log(6.4) / 27.0;

double hz_to_mel(double hz) {
  return hz < kMelLogHz ? hz / kMelLinearHz : kMelLogMel + std::log(hz / kMelLogHz) / kMelLogStep;
}

double mel_to_hz(double mel) {
  return mel < kMelLogMel ? mel * kMelLinearHz
                          : kMelLogHz * std::exp(kMelLogStep * (mel - kMelLogMel));
}

// Triangular filters on the FFT frequencies, 0 to 8 kHz, each scaled by 2 / (its width in Hz)
// (librosa's norm="slaney"); only each filter's nonzero span is kept.
struct MelBank {
  int n_mels = 0;
  std::vector<int> begin, end;  // nonzero FFT bins of filter m: [begin[m], end[m])
  std::vector<std::vector<double>> weights;

  explicit MelBank(int mels) : n_mels(mels), begin(mels), end(mels), weights(mels) {
    std::vector<double> edges(mels + 2);
    const double top = hz_to_mel(kSampleRate / 2);
    for (int i = 0; i < mels + 2; ++i) edges[i] = mel_to_hz(top * i / (mels + 1));
    for (int m = 0; m < mels; ++m) {
      const double lo = edges[m], center = edges[m + 1], hi = edges[m + 2];
      std::vector<double> row(kBins);
      for (int k = 0; k < kBins; ++k) {
        const double hz = kSampleRate * k / kMelFft;
        const double rising = (hz - lo) / (center - lo), falling = (hi - hz) / (hi - center);
        row[k] = std::max(0.0, std::min(rising, falling)) * 2.0 / (hi - lo);
      }
      int first = 0, last = kBins;
      while (first < kBins && row[first] == 0.0) ++first;
      while (last > first && row[last - 1] == 0.0) --last;
      begin[m] = first;
      end[m] = last;
      weights[m].assign(row.begin() + first, row.begin() + last);
    }
  }
};

// The filterbank for n_mels (80 or 128), built once; throws on any other count.
const MelBank& mel_bank(int n_mels) {
  static const MelBank bank80(80), bank128(128);
  if (n_mels == 80) return bank80;
  if (n_mels == 128) return bank128;
  fail("log_mel: n_mels ", n_mels, " is not supported (80 or 128)");
}

// Throws unless every sample is finite; `first` is the index of samples[0] in the stream.
void check_finite(const float* samples, int64_t count, int64_t first) {
  for (int64_t i = 0; i < count; ++i)
    NURI_CHECK(std::isfinite(samples[i]), "log_mel: sample ", first + i, " is not finite (",
               samples[i], ")");
}

// Index into a signal of `length` samples that reflect padding reads for position i: numpy.pad's
// reflect mode, which keeps reflecting at both ends (period 2 * (length - 1)), so that a signal
// shorter than the padding still has one. length must be at least 2.
int64_t reflect(int64_t i, int64_t length) {
  if (i >= 0 && i < length) return i;
  const int64_t period = 2 * (length - 1);
  const int64_t m = ((i % period) + period) % period;
  return m < length ? m : period - m;
}

// An FFT input and output pair from fftwf_malloc, one per thread.
struct FftBuffers {
  float* in = fftwf_alloc_real(kMelFft);
  fftwf_complex* out = fftwf_alloc_complex(kBins);
  FftBuffers() = default;
  FftBuffers(const FftBuffers&) = delete;
  FftBuffers& operator=(const FftBuffers&) = delete;
  ~FftBuffers() {
    fftwf_free(in);
    fftwf_free(out);
  }
};

// Frames [t_begin, t_end) as f32 [n_mels, t_end - t_begin] of log10(max(mel, 1e-10)). `data`
// holds the samples [first, first + count) of a signal whose reflect padding is taken as if it
// had `length` samples; every frame's window (reflected) must lie within the held samples.
Tensor log10_mel_frames(const MelBank& bank, const float* data, int64_t first, int64_t count,
                        int64_t length, int64_t t_begin, int64_t t_end) {
  const int64_t frames = t_end - t_begin;
  Tensor result = Tensor::empty({bank.n_mels, frames});
  if (frames == 0) return result;
  NURI_CHECK(length >= 2, "log_mel: a frame of a signal of ", length, " samples");
  float* out = result.data<float>();
  const fftwf_plan plan = r2c_plan();
  const std::vector<float>& window = hann_window();
  bool out_of_memory = false, outside = false;
#pragma omp parallel if (frames >= kParallelFrames)
  {
    FftBuffers buffers;
    if (!buffers.in || !buffers.out) {
#pragma omp atomic write
      out_of_memory = true;
    }
    std::array<double, kBins> power;
#pragma omp for schedule(static)
    for (int64_t f = 0; f < frames; ++f) {
      if (!buffers.in || !buffers.out) continue;
      const int64_t start = (t_begin + f) * kMelHop - kHalf;
      bool frame_outside = false;
      for (int k = 0; k < kMelFft; ++k) {
        const int64_t j = reflect(start + k, length) - first;
        frame_outside |= j < 0 || j >= count;
        buffers.in[k] = frame_outside ? 0.0f : data[j] * window[k];
      }
      if (frame_outside) {
#pragma omp atomic write
        outside = true;
      }
      fftwf_execute_dft_r2c(plan, buffers.in, buffers.out);
      for (int k = 0; k < kBins; ++k) {
        const double re = buffers.out[k][0], im = buffers.out[k][1];
        power[k] = re * re + im * im;
      }
      for (int m = 0; m < bank.n_mels; ++m) {
        const std::vector<double>& w = bank.weights[m];
        double mel = 0.0;
        for (int k = bank.begin[m]; k < bank.end[m]; ++k) mel += w[k - bank.begin[m]] * power[k];
        out[m * frames + f] = static_cast<float>(std::log10(std::max(mel, kMelEpsilon)));
      }
    }
  }
  NURI_CHECK(!out_of_memory, "log_mel: out of memory for the FFT buffers");
  NURI_CHECK(!outside, "log_mel: frames ", t_begin, " to ", t_end, " read outside samples ", first,
             " to ", first + count);
  return result;
}

// Applies max(x, floor), then (x + 4) / 4, to every element.
void finish_log_mel(Tensor& logs, float floor) {
  float* x = logs.data<float>();
  const int64_t n = logs.numel();
  for (int64_t i = 0; i < n; ++i) x[i] = (std::max(x[i], floor) + 4.0f) / 4.0f;
}

}  // namespace

Tensor log_mel(const std::vector<float>& samples, const MelOptions& options) {
  const MelBank& bank = mel_bank(options.n_mels);
  const int64_t length = static_cast<int64_t>(samples.size());
  check_finite(samples.data(), length, 0);
  Tensor logs = log10_mel_frames(bank, samples.data(), 0, length, length, 0, length / kMelHop);
  float floor = kMelFloor;
  if (options.clamp == MelClamp::whisper && logs.numel() > 0) {
    const float* x = logs.data<float>();
    floor = *std::max_element(x, x + logs.numel()) - 8.0f;
  }
  finish_log_mel(logs, floor);
  return logs;
}

struct StreamingLogMel::State {
  const MelBank* bank = nullptr;
  std::vector<float> held;  // samples [first, first + held.size()) of the stream
  int64_t first = 0;
  int64_t received = 0;  // samples pushed so far
  int64_t emitted = 0;   // frames returned so far
  bool finished = false;

  // Frames [emitted, t_end), padded as a signal of `length` samples, in fixed_floor mode.
  Tensor emit(int64_t t_end, int64_t length) {
    Tensor frames = log10_mel_frames(*bank, held.data(), first, static_cast<int64_t>(held.size()),
                                     length, emitted, t_end);
    finish_log_mel(frames, kMelFloor);
    emitted = t_end;
    // The next frame starts at emitted * hop - n_fft / 2; frame 0 and 1 also read samples 1 to
    // n_fft / 2 for their reflect padding, which that start (clamped at 0) keeps.
    const int64_t keep_from = std::max<int64_t>(0, emitted * kMelHop - kHalf);
    if (keep_from > first) {
      held.erase(held.begin(), held.begin() + std::min<int64_t>(keep_from - first, held.size()));
      first = keep_from;
    }
    return frames;
  }
};

StreamingLogMel::StreamingLogMel(int n_mels) : state_(std::make_unique<State>()) {
  state_->bank = &mel_bank(n_mels);
}

StreamingLogMel::~StreamingLogMel() = default;

Tensor StreamingLogMel::push(const float* samples, int64_t count) {
  State& s = *state_;
  NURI_CHECK(!s.finished, "StreamingLogMel: push after finish");
  NURI_CHECK(count >= 0, "StreamingLogMel: push of ", count, " samples");
  NURI_CHECK(samples != nullptr || count == 0, "StreamingLogMel: push of ", count,
             " samples from a null pointer");
  check_finite(samples, count, s.received);
  s.held.insert(s.held.end(), samples, samples + count);
  s.received += count;
  // Frame t reads samples up to t * hop + n_fft / 2 - 1, and frame 0's reflect padding reads
  // sample n_fft / 2: frame t is complete once both are known.
  const int64_t ready = s.received > kHalf ? (s.received - kHalf) / kMelHop + 1 : 0;
  return s.emit(ready, s.received);
}

Tensor StreamingLogMel::finish() {
  State& s = *state_;
  NURI_CHECK(!s.finished, "StreamingLogMel: finish called twice");
  s.finished = true;
  Tensor frames = s.emit(s.received / kMelHop, s.received);
  s.held = {};
  return frames;
}

int64_t StreamingLogMel::frames() const {
  return state_->emitted;
}

}  // namespace nuri
