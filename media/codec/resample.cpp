// Down-mixing and resampling to nuri's 16 kHz mono (libswresample).
#include <memory>

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
}

#include "kernels/error.h"
#include "media/audio.h"

namespace nuri {
namespace {

struct SwrFree {
  void operator()(SwrContext* context) const { swr_free(&context); }
};

}  // namespace

std::vector<float> to_mono_16k(const float* interleaved, int64_t frames, int channels,
                               int sample_rate) {
  NURI_CHECK(channels > 0, "resampling: channel count ", channels, " is not positive");
  NURI_CHECK(sample_rate > 0, "resampling: sample rate ", sample_rate, " is not positive");
  NURI_CHECK(frames >= 0, "resampling: frame count ", frames, " is negative");
  if (frames == 0) return {};
  // The mean of the channels: a plain average never clips, unlike a standard down-mix matrix.
  std::vector<float> mono(static_cast<size_t>(frames));
  for (int64_t i = 0; i < frames; ++i) {
    float sum = 0;
    for (int c = 0; c < channels; ++c) sum += interleaved[i * channels + c];
    mono[static_cast<size_t>(i)] = sum / static_cast<float>(channels);
  }
  if (sample_rate == kAudioSampleRate) return mono;

  AVChannelLayout layout;
  av_channel_layout_default(&layout, 1);
  SwrContext* raw = nullptr;
  int status = swr_alloc_set_opts2(&raw, &layout, AV_SAMPLE_FMT_FLT, kAudioSampleRate, &layout,
                                   AV_SAMPLE_FMT_FLT, sample_rate, 0, nullptr);
  std::unique_ptr<SwrContext, SwrFree> swr(raw);
  NURI_CHECK(status >= 0 && swr, "resampling from ", sample_rate,
             " Hz: creating the resampler failed");
  status = swr_init(swr.get());
  NURI_CHECK(status >= 0, "resampling from ", sample_rate, " Hz: the resampler refused the rate");

  const int64_t capacity = swr_get_out_samples(swr.get(), static_cast<int>(frames)) + 64;
  std::vector<float> out(static_cast<size_t>(capacity));
  const uint8_t* in_planes[1] = {reinterpret_cast<const uint8_t*>(mono.data())};
  uint8_t* out_planes[1] = {reinterpret_cast<uint8_t*>(out.data())};
  int produced = swr_convert(swr.get(), out_planes, static_cast<int>(capacity), in_planes,
                             static_cast<int>(frames));
  NURI_CHECK(produced >= 0, "resampling from ", sample_rate, " Hz failed");
  int64_t total = produced;
  // Drain the resampler's delay line.
  while (total < capacity) {
    out_planes[0] = reinterpret_cast<uint8_t*>(out.data() + total);
    produced = swr_convert(swr.get(), out_planes, static_cast<int>(capacity - total), nullptr, 0);
    NURI_CHECK(produced >= 0, "resampling from ", sample_rate, " Hz failed while flushing");
    if (produced == 0) break;
    total += produced;
  }
  out.resize(static_cast<size_t>(total));
  return out;
}

}  // namespace nuri
