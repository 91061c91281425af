// load_audio and to_mono_16k: libsndfile for the formats it reads (wav, flac, ogg and the like),
// FFmpeg for the rest, and libswresample to mix down and resample to 16 kHz mono float.
#include <sndfile.h>

#include <memory>
#include <optional>
#include <string_view>

#include "kernels/error.h"
#include "media/audio.h"
#include "media/codec/ffmpeg_util.h"
#include "media/codec/input_file.h"

namespace nuri {
namespace {

struct SndfileCloser {
  void operator()(SNDFILE* file) const { sf_close(file); }
};

// Fails when a header declares more audio than `max_seconds` (a negative duration is unknown).
void check_declared_length(const std::string& path, double seconds, double max_seconds) {
  NURI_CHECK(seconds <= max_seconds, path, ": ", seconds, " s of audio exceeds the ", max_seconds,
             " s limit");
}

// libsndfile notes "(should be N)" in its log where a header's sizes disagree with the bytes
// present (it then reads only what is there); such a file is truncated or damaged. Returns that
// log line, or nothing.
std::optional<std::string> inconsistent_header(SNDFILE* file) {
  char log[16384] = {};
  sf_command(file, SFC_GET_LOG_INFO, log, sizeof(log));
  std::string_view text(log);
  size_t at = text.find("(should be");
  if (at == std::string_view::npos) return std::nullopt;
  size_t begin = text.rfind('\n', at);
  begin = begin == std::string_view::npos ? 0 : begin + 1;
  size_t end = text.find('\n', at);
  return std::string(text.substr(begin, end == std::string_view::npos ? end : end - begin));
}

// Decodes with libsndfile; nothing when libsndfile cannot open this file (or is not the decoder
// meant for it: MPEG audio goes to FFmpeg).
std::optional<std::vector<float>> load_with_sndfile(const std::string& path,
                                                    const AudioLoadOptions& options) {
  SF_INFO info{};
  std::unique_ptr<SNDFILE, SndfileCloser> file(sf_open(path.c_str(), SFM_READ, &info));
  if (!file) {
    // A file libsndfile recognises but finds malformed is final (FFmpeg would decode a cut
    // ogg without complaint); any other failure may be a format or codec only FFmpeg reads.
    int code = sf_error(nullptr);
    if (code != SF_ERR_MALFORMED_FILE) return std::nullopt;
    fail(path, ": corrupt or truncated (libsndfile: ", sf_error_number(code), ")");
  }
  if ((info.format & SF_FORMAT_TYPEMASK) == SF_FORMAT_MPEG) return std::nullopt;
  NURI_CHECK(info.samplerate > 0, path, ": sample rate ", info.samplerate, " Hz in its header");
  NURI_CHECK(info.channels > 0, path, ": ", info.channels, " channels in its header");
  check_declared_length(path, static_cast<double>(info.frames) / info.samplerate,
                        options.max_seconds);
  if (auto line = inconsistent_header(file.get())) {
    fail(path, ": truncated or damaged (its header disagrees with the file size: ", *line, ")");
  }
  NURI_CHECK(info.frames > 0, path, ": empty (0 samples)");

  AVChannelLayout layout{};
  av_channel_layout_default(&layout, info.channels);
  ffmpeg::MonoResampler resampler(layout, AV_SAMPLE_FMT_FLT, info.samplerate, path,
                                  options.max_seconds);
  constexpr sf_count_t kBlock = 4096;
  std::vector<float> block(kBlock * info.channels);
  sf_count_t read = 0;
  while (true) {
    sf_count_t got = sf_readf_float(file.get(), block.data(), kBlock);
    if (got <= 0) break;
    read += got;
    const uint8_t* planes[] = {reinterpret_cast<const uint8_t*>(block.data())};
    resampler.append(planes, static_cast<int>(got));
  }
  NURI_CHECK(sf_error(file.get()) == SF_ERR_NO_ERROR, path, ": corrupt audio data after ", read,
             " frames (", sf_strerror(file.get()), ")");
  NURI_CHECK(read >= info.frames, path, ": truncated or corrupt (the header declares ", info.frames,
             " frames, only ", read, " decode)");
  return resampler.finish();
}

// Decodes the best audio stream with FFmpeg.
std::vector<float> load_with_ffmpeg(const std::string& path, const AudioLoadOptions& options) {
  ffmpeg::FormatPtr format = ffmpeg::open_input(path);
  int index = av_find_best_stream(format.get(), AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
  NURI_CHECK(index >= 0, path, ": no audio stream");
  const AVStream* stream = format->streams[index];
  double declared = ffmpeg::declared_seconds(format.get(), stream);
  check_declared_length(path, declared, options.max_seconds);

  ffmpeg::SoundtrackDecoder decoder(stream, path, options.max_seconds);
  ffmpeg::PacketPtr packet = ffmpeg::make_packet();
  while (true) {
    int code = av_read_frame(format.get(), packet.get());
    if (code == AVERROR_EOF) break;
    NURI_CHECK(code >= 0, path, ": read error (", ffmpeg::error_text(code), ")");
    if (packet->stream_index == index) decoder.decode(packet.get());
    av_packet_unref(packet.get());
  }
  std::vector<float> samples = decoder.finish();
  NURI_CHECK(!samples.empty(), path, ": empty (0 samples)");
  double decoded = samples.size() / double(kAudioSampleRate);
  NURI_CHECK(declared < 0 || decoded >= 0.9 * declared - 0.05, path,
             ": truncated or corrupt (the header declares ", declared, " s, only ", decoded,
             " s decode)");
  return samples;
}

}  // namespace

std::vector<float> load_audio(const std::string& path, const AudioLoadOptions& options) {
  NURI_CHECK(options.max_seconds > 0, path, ": max_seconds must be positive, not ",
             options.max_seconds);
  check_input_file(path);
  if (auto samples = load_with_sndfile(path, options)) return std::move(*samples);
  return load_with_ffmpeg(path, options);
}

std::vector<float> to_mono_16k(const float* interleaved, int64_t frames, int channels,
                               int sample_rate) {
  NURI_CHECK(frames >= 0, "to_mono_16k: negative frame count ", frames);
  NURI_CHECK(channels > 0, "to_mono_16k: ", channels, " channels (expected at least 1)");
  NURI_CHECK(frames == 0 || interleaved != nullptr, "to_mono_16k: no samples given for ", frames,
             " frames");
  AVChannelLayout layout{};
  av_channel_layout_default(&layout, channels);
  double seconds = sample_rate > 0 ? static_cast<double>(frames) / sample_rate : 0;
  ffmpeg::MonoResampler resampler(layout, AV_SAMPLE_FMT_FLT, sample_rate, "to_mono_16k",
                                  seconds + 1);
  constexpr int64_t kBlock = 1 << 16;
  for (int64_t start = 0; start < frames; start += kBlock) {
    const uint8_t* planes[] = {reinterpret_cast<const uint8_t*>(interleaved + start * channels)};
    resampler.append(planes, static_cast<int>(std::min(kBlock, frames - start)));
  }
  return resampler.finish();
}

}  // namespace nuri
