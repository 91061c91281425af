// FFmpeg handles, input opening and the soundtrack decoder shared by the audio and video decoders.
#include "media/codec/ffmpeg_util.h"

#include <utility>

extern "C" {
#include <libavutil/opt.h>
}

#include "kernels/error.h"
#include "media/audio.h"
#include "media/codec/input_file.h"

namespace nuri::ffmpeg {

std::string error_text(int code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, text, sizeof(text));
  return text;
}

FramePtr make_frame() {
  FramePtr frame(av_frame_alloc());
  NURI_CHECK(frame, "out of memory allocating an FFmpeg frame");
  return frame;
}

PacketPtr make_packet() {
  PacketPtr packet(av_packet_alloc());
  NURI_CHECK(packet, "out of memory allocating an FFmpeg packet");
  return packet;
}

FormatPtr open_input(const std::string& path) {
  av_log_set_level(AV_LOG_QUIET);
  check_input_file(path);
  AVFormatContext* raw = nullptr;
  int code = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
  NURI_CHECK(code != AVERROR_EOF, path, ": truncated (the file ends inside its header)");
  NURI_CHECK(code >= 0, path, ": not a readable media file (", error_text(code), ")");
  FormatPtr format(raw);
  code = avformat_find_stream_info(format.get(), nullptr);
  NURI_CHECK(code >= 0, path, ": cannot read its streams (", error_text(code), ")");
  return format;
}

CodecPtr open_decoder(const AVStream* stream, const std::string& path) {
  const AVCodec* codec = avcodec_find_decoder(stream->codecpar->codec_id);
  NURI_CHECK(codec, path, ": no decoder for its ", avcodec_get_name(stream->codecpar->codec_id),
             " stream");
  CodecPtr context(avcodec_alloc_context3(codec));
  NURI_CHECK(context, path, ": out of memory allocating a decoder");
  int code = avcodec_parameters_to_context(context.get(), stream->codecpar);
  NURI_CHECK(code >= 0, path, ": bad codec parameters (", error_text(code), ")");
  context->pkt_timebase = stream->time_base;
  code = avcodec_open2(context.get(), codec, nullptr);
  NURI_CHECK(code >= 0, path, ": cannot open the ", codec->name, " decoder (", error_text(code),
             ")");
  return context;
}

double declared_seconds(const AVFormatContext* format, const AVStream* stream) {
  if (format->duration_estimation_method == AVFMT_DURATION_FROM_BITRATE) return -1;
  if (stream->duration != AV_NOPTS_VALUE && stream->duration > 0) {
    return static_cast<double>(stream->duration) * av_q2d(stream->time_base);
  }
  if (format->duration != AV_NOPTS_VALUE && format->duration > 0) {
    return static_cast<double>(format->duration) / AV_TIME_BASE;
  }
  return -1;
}

MonoResampler::MonoResampler(const AVChannelLayout& layout, AVSampleFormat format, int sample_rate,
                             std::string name, double max_seconds)
    : name_(std::move(name)),
      max_seconds_(max_seconds),
      format_(format),
      sample_rate_(sample_rate),
      channels_(layout.nb_channels) {
  NURI_CHECK(channels_ > 0 && channels_ <= 64, name_, ": ", channels_,
             " audio channels (expected 1 to 64)");
  NURI_CHECK(sample_rate > 0 && sample_rate <= 1'000'000, name_, ": sample rate ", sample_rate,
             " Hz (expected 1 to 1000000)");
  AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
  SwrContext* raw = nullptr;
  // swr_alloc_set_opts2 only reads the layouts; its parameters are not declared const.
  int code =
      swr_alloc_set_opts2(&raw, &mono, AV_SAMPLE_FMT_FLT, kAudioSampleRate,
                          const_cast<AVChannelLayout*>(&layout), format, sample_rate, 0, nullptr);
  context_.reset(raw);
  NURI_CHECK(code >= 0, name_, ": cannot set up resampling (", error_text(code), ")");
  std::vector<double> average(channels_, 1.0 / channels_);
  code = swr_set_matrix(context_.get(), average.data(), channels_);
  NURI_CHECK(code >= 0, name_, ": cannot set the channel mix (", error_text(code), ")");
  code = swr_init(context_.get());
  NURI_CHECK(code >= 0, name_, ": cannot set up resampling (", error_text(code), ")");
}

bool MonoResampler::accepts(AVSampleFormat format, int sample_rate, int channels) const {
  return format == format_ && sample_rate == sample_rate_ && channels == channels_;
}

void MonoResampler::append(const uint8_t* const* data, int count) {
  int capacity = swr_get_out_samples(context_.get(), count);
  NURI_CHECK(capacity >= 0, name_, ": resampling failed (", error_text(capacity), ")");
  size_t old_size = samples_.size();
  samples_.resize(old_size + capacity);
  auto* out = reinterpret_cast<uint8_t*>(samples_.data() + old_size);
  int produced =
      swr_convert(context_.get(), &out, capacity, const_cast<const uint8_t**>(data), count);
  NURI_CHECK(produced >= 0, name_, ": resampling failed (", error_text(produced), ")");
  samples_.resize(old_size + produced);
  NURI_CHECK(samples_.size() <= max_seconds_ * kAudioSampleRate + kAudioSampleRate / 10, name_,
             ": audio runs past the ", max_seconds_, " s limit");
}

std::vector<float> MonoResampler::finish() {
  append(nullptr, 0);
  return std::move(samples_);
}

SoundtrackDecoder::SoundtrackDecoder(const AVStream* stream, std::string path, double max_seconds)
    : path_(std::move(path)),
      max_seconds_(max_seconds),
      codec_(open_decoder(stream, path_)),
      frame_(make_frame()) {}

double SoundtrackDecoder::decoded_seconds() const {
  return resampler_ ? resampler_->seconds() : 0.0;
}

void SoundtrackDecoder::decode(const AVPacket* packet) {
  int code = avcodec_send_packet(codec_.get(), packet);
  NURI_CHECK(code >= 0 || code == AVERROR_EOF, path_, ": corrupt audio data at ", decoded_seconds(),
             " s (", error_text(code), ")");
  receive_frames();
}

void SoundtrackDecoder::receive_frames() {
  while (true) {
    int code = avcodec_receive_frame(codec_.get(), frame_.get());
    if (code == AVERROR(EAGAIN) || code == AVERROR_EOF) return;
    NURI_CHECK(code >= 0, path_, ": corrupt audio data at ", decoded_seconds(), " s (",
               error_text(code), ")");
    const AVFrame& frame = *frame_;
    auto format = static_cast<AVSampleFormat>(frame.format);
    if (!resampler_) {
      resampler_.emplace(frame.ch_layout, format, frame.sample_rate, path_, max_seconds_);
    }
    NURI_CHECK(resampler_->accepts(format, frame.sample_rate, frame.ch_layout.nb_channels), path_,
               ": the audio format changes within the stream (at ", decoded_seconds(), " s)");
    resampler_->append(frame.extended_data, frame.nb_samples);
    av_frame_unref(frame_.get());
  }
}

std::vector<float> SoundtrackDecoder::finish() {
  decode(nullptr);
  return resampler_ ? resampler_->finish() : std::vector<float>{};
}

}  // namespace nuri::ffmpeg
