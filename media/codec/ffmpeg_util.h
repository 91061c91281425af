// FFmpeg handles owned by unique_ptr, input opening with errors that name the file, and the
// soundtrack decoder (any codec to 16 kHz mono float) shared by load_audio and load_video.
#pragma once
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "media/audio.h"

namespace nuri::ffmpeg {

struct FormatDeleter {
  void operator()(AVFormatContext* context) const { avformat_close_input(&context); }
};
struct CodecDeleter {
  void operator()(AVCodecContext* context) const { avcodec_free_context(&context); }
};
struct FrameDeleter {
  void operator()(AVFrame* frame) const { av_frame_free(&frame); }
};
struct PacketDeleter {
  void operator()(AVPacket* packet) const { av_packet_free(&packet); }
};
struct ResamplerDeleter {
  void operator()(SwrContext* context) const { swr_free(&context); }
};
struct ScalerDeleter {
  void operator()(SwsContext* context) const { sws_freeContext(context); }
};
using FormatPtr = std::unique_ptr<AVFormatContext, FormatDeleter>;
using CodecPtr = std::unique_ptr<AVCodecContext, CodecDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using ResamplerPtr = std::unique_ptr<SwrContext, ResamplerDeleter>;
using ScalerPtr = std::unique_ptr<SwsContext, ScalerDeleter>;

// FFmpeg's text for an error code.
std::string error_text(int code);

// A fresh frame and packet; throws when out of memory.
FramePtr make_frame();
PacketPtr make_packet();

// Opens `path` by its content and reads its stream information. FFmpeg's own logging is silenced,
// so every fault reaches the caller as a nuri::Error naming the file.
FormatPtr open_input(const std::string& path);

// An opened decoder for `stream` of the file `path`.
CodecPtr open_decoder(const AVStream* stream, const std::string& path);

// The duration the container declares, in seconds, or a negative value when it declares none.
// A duration FFmpeg only estimated from the bit rate counts as none.
double declared_seconds(const AVFormatContext* format, const AVStream* stream);

// Mixes audio down to mono with equal channel weights (the average, so the result stays within
// [-1, 1]) and resamples it to 16 kHz float, block by block; past `max_seconds` of output it
// throws naming `name`.
class MonoResampler {
 public:
  MonoResampler(const AVChannelLayout& layout, AVSampleFormat format, int sample_rate,
                std::string name, double max_seconds);

  // Whether blocks of this format can be appended.
  bool accepts(AVSampleFormat format, int sample_rate, int channels) const;
  // Converts `count` frames (one pointer per plane, or one for interleaved formats).
  void append(const uint8_t* const* data, int count);
  // Drains the resampler and hands over the samples.
  std::vector<float> finish();
  // Seconds of output so far.
  double seconds() const { return samples_.size() / double(kAudioSampleRate); }

 private:
  std::string name_;
  double max_seconds_;
  AVSampleFormat format_;
  int sample_rate_, channels_;
  ResamplerPtr context_;
  std::vector<float> samples_;
};

// Decodes one audio stream packet by packet into 16 kHz mono float, enforcing `max_seconds`
// while it decodes (a header may understate the length).
class SoundtrackDecoder {
 public:
  SoundtrackDecoder(const AVStream* stream, std::string path, double max_seconds);

  // Decodes one packet of the stream.
  void decode(const AVPacket* packet);
  // Drains the decoder and the resampler and hands over the samples.
  std::vector<float> finish();

 private:
  void receive_frames();
  double decoded_seconds() const;

  std::string path_;
  double max_seconds_;
  CodecPtr codec_;
  FramePtr frame_;
  std::optional<MonoResampler> resampler_;
};

}  // namespace nuri::ffmpeg
