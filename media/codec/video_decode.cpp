// load_video: libavformat demuxes, libavcodec decodes, frames are sampled by their presentation
// time and converted to RGB by libswscale; the soundtrack goes through the audio decoder of
// ffmpeg_util.h in the same pass.
#include <cmath>
#include <optional>

extern "C" {
#include <libavutil/pixdesc.h>
}

#include "kernels/error.h"
#include "media/codec/ffmpeg_util.h"
#include "media/video.h"

namespace nuri {
namespace {

// Samples a video stream's decoded frames at a fixed rate: a sample slot k at k / fps seconds
// takes the first frame shown at or after it.
class FrameSampler {
 public:
  FrameSampler(const AVStream* stream, const std::string& path, const VideoLoadOptions& options)
      : path_(path),
        options_(options),
        codec_(ffmpeg::open_decoder(stream, path)),
        frame_(ffmpeg::make_frame()),
        time_base_(av_q2d(stream->time_base)),
        start_(stream->start_time != AV_NOPTS_VALUE ? stream->start_time : 0) {}

  // Decodes one packet (nullptr drains the decoder) and keeps the frames that fill a slot.
  void decode(const AVPacket* packet, std::vector<VideoFrame>& frames) {
    int code = avcodec_send_packet(codec_.get(), packet);
    NURI_CHECK(code >= 0 || code == AVERROR_EOF, path_, ": corrupt video data after ", last_time_,
               " s (", ffmpeg::error_text(code), ")");
    while (!full(frames)) {
      code = avcodec_receive_frame(codec_.get(), frame_.get());
      if (code == AVERROR(EAGAIN) || code == AVERROR_EOF) return;
      NURI_CHECK(code >= 0, path_, ": corrupt video data after ", last_time_, " s (",
                 ffmpeg::error_text(code), ")");
      take(frames);
      av_frame_unref(frame_.get());
    }
  }

  // Whether sampling has stopped at max_frames.
  bool full(const std::vector<VideoFrame>& frames) const {
    return static_cast<int64_t>(frames.size()) >= options_.max_frames;
  }
  // The presentation time of the last decoded frame, in seconds.
  double last_time() const { return last_time_; }
  // Whether any frame was decoded.
  bool decoded_any() const { return decoded_any_; }

 private:
  void take(std::vector<VideoFrame>& frames) {
    const AVFrame& frame = *frame_;
    NURI_CHECK(frame.best_effort_timestamp != AV_NOPTS_VALUE, path_,
               ": a video frame without a timestamp after ", last_time_, " s");
    double time = static_cast<double>(frame.best_effort_timestamp - start_) * time_base_;
    NURI_CHECK(time <= options_.max_seconds, path_, ": video runs past the ", options_.max_seconds,
               " s limit");
    decoded_any_ = true;
    last_time_ = std::max(last_time_, time);
    // A small tolerance absorbs timestamps rounded to the stream's time base.
    constexpr double kSlack = 1e-6;
    if (time + kSlack < next_slot_ / options_.fps) return;
    next_slot_ = std::floor(time * options_.fps + kSlack) + 1;
    frames.push_back({time, to_rgb(frame)});
  }

  Image to_rgb(const AVFrame& frame) {
    NURI_CHECK(frame.width > 0 && frame.height > 0 && frame.width <= 16384 && frame.height <= 16384,
               path_, ": video frame size ", frame.width, "x", frame.height,
               " (expected sides in [1, 16384])");
    scaler_.reset(sws_getCachedContext(
        scaler_.release(), frame.width, frame.height, static_cast<AVPixelFormat>(frame.format),
        frame.width, frame.height, AV_PIX_FMT_RGB24, SWS_BICUBIC, nullptr, nullptr, nullptr));
    if (!scaler_) {
      const char* name = av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame.format));
      fail(path_, ": cannot convert ", name ? name : "unknown", " frames to RGB");
    }
    Image image;
    image.height = frame.height;
    image.width = frame.width;
    image.rgb.resize(static_cast<size_t>(frame.height) * frame.width * 3);
    uint8_t* planes[] = {image.rgb.data()};
    int strides[] = {frame.width * 3};
    int rows =
        sws_scale(scaler_.get(), frame.data, frame.linesize, 0, frame.height, planes, strides);
    NURI_CHECK(rows == frame.height, path_, ": converting a ", frame.width, "x", frame.height,
               " frame to RGB failed");
    return image;
  }

  std::string path_;
  VideoLoadOptions options_;
  ffmpeg::CodecPtr codec_;
  ffmpeg::FramePtr frame_;
  ffmpeg::ScalerPtr scaler_;
  double time_base_;
  int64_t start_;
  double next_slot_ = 0;
  double last_time_ = 0;
  bool decoded_any_ = false;
};

void check_options(const std::string& path, const VideoLoadOptions& options) {
  NURI_CHECK(std::isfinite(options.fps) && options.fps > 0 && options.fps <= 1000, path,
             ": fps must be in (0, 1000], not ", options.fps);
  NURI_CHECK(std::isfinite(options.max_seconds) && options.max_seconds > 0, path,
             ": max_seconds must be positive, not ", options.max_seconds);
  NURI_CHECK(options.max_frames > 0, path, ": max_frames must be positive, not ",
             options.max_frames);
}

}  // namespace

Video load_video(const std::string& path, const VideoLoadOptions& options) {
  check_options(path, options);
  ffmpeg::FormatPtr format = ffmpeg::open_input(path);
  int video_index = av_find_best_stream(format.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  NURI_CHECK(video_index >= 0, path, ": no video stream");
  const AVStream* video_stream = format->streams[video_index];
  double declared = ffmpeg::declared_seconds(format.get(), video_stream);
  NURI_CHECK(declared <= options.max_seconds, path, ": ", declared, " s of video exceeds the ",
             options.max_seconds, " s limit");

  FrameSampler sampler(video_stream, path, options);
  int audio_index = -1;
  std::optional<ffmpeg::SoundtrackDecoder> soundtrack;
  if (options.audio) {
    audio_index =
        av_find_best_stream(format.get(), AVMEDIA_TYPE_AUDIO, -1, video_index, nullptr, 0);
    if (audio_index >= 0) {
      soundtrack.emplace(format->streams[audio_index], path, options.max_seconds);
    }
  }

  Video video;
  ffmpeg::PacketPtr packet = ffmpeg::make_packet();
  while (!(sampler.full(video.frames) && !soundtrack)) {
    int code = av_read_frame(format.get(), packet.get());
    if (code == AVERROR_EOF) break;
    NURI_CHECK(code >= 0, path, ": read error (", ffmpeg::error_text(code), ")");
    if (packet->stream_index == video_index && !sampler.full(video.frames)) {
      sampler.decode(packet.get(), video.frames);
    } else if (soundtrack && packet->stream_index == audio_index) {
      soundtrack->decode(packet.get());
    }
    av_packet_unref(packet.get());
  }
  if (!sampler.full(video.frames)) sampler.decode(nullptr, video.frames);
  NURI_CHECK(sampler.decoded_any(), path, ": no decodable video frames");
  if (!sampler.full(video.frames)) {
    NURI_CHECK(declared < 0 || sampler.last_time() >= 0.9 * declared - 0.5, path,
               ": truncated or corrupt (the header declares ", declared, " s, frames end at ",
               sampler.last_time(), " s)");
  }
  if (soundtrack) video.audio = soundtrack->finish();
  if (format->duration != AV_NOPTS_VALUE && format->duration > 0) {
    video.duration = static_cast<double>(format->duration) / AV_TIME_BASE;
  } else {
    video.duration = declared >= 0 ? declared : sampler.last_time();
  }
  return video;
}

}  // namespace nuri
