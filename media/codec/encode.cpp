// The media writers: wav (libsndfile), png/jpg (OpenCV) and mp4 (FFmpeg: MPEG-4 Part 2 video,
// AAC audio). Each writes a temporary file beside the target and renames it into place, so a
// target appears complete or not at all.
#include <fcntl.h>
#include <sndfile.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include "kernels/error.h"
#include "kernels/file_io.h"
#include "media/audio.h"
#include "media/image.h"
#include "media/video.h"

namespace nuri {
namespace {

// A temporary path beside `target` with the same extension (libraries that choose the format by
// name see the right one). Removed on destruction unless commit() renamed it over the target.
class TempPath {
 public:
  explicit TempPath(const std::string& target) : target_(target) {
    static std::atomic<uint64_t> counter{0};
    const std::filesystem::path path(target);
    temp_ = (path.parent_path() / cat(".", path.stem().string(), ".tmp.", ::getpid(), ".",
                                      counter++, path.extension().string()))
                .string();
  }
  ~TempPath() {
    if (!committed_) std::remove(temp_.c_str());
  }
  TempPath(const TempPath&) = delete;
  TempPath& operator=(const TempPath&) = delete;

  const std::string& path() const { return temp_; }

  // Flushes the finished temporary file to disk, renames it over the target and syncs the
  // directory.
  void commit() {
    const int fd = ::open(temp_.c_str(), O_RDONLY | O_CLOEXEC);
    NURI_CHECK(fd >= 0, target_, ": reopening ", temp_, " failed: ", std::strerror(errno));
    const int synced = ::fsync(fd) == 0 ? 0 : errno;
    ::close(fd);
    NURI_CHECK(synced == 0, target_, ": syncing ", temp_, " failed: ", std::strerror(synced));
    NURI_CHECK(std::rename(temp_.c_str(), target_.c_str()) == 0, target_, ": renaming ", temp_,
               " failed: ", std::strerror(errno));
    committed_ = true;
    const std::filesystem::path directory = std::filesystem::path(target_).parent_path();
    sync_directory(directory.empty() ? "." : directory.string());
  }

 private:
  std::string target_, temp_;
  bool committed_ = false;
};

// The extension of `path`, lower-cased, with its dot (".png").
std::string lower_extension(const std::string& path) {
  std::string extension = std::filesystem::path(path).extension().string();
  for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return extension;
}

// Checks that every sample is finite; the error names the file and the first bad sample.
void check_finite(const std::string& path, const std::vector<float>& samples) {
  for (size_t i = 0; i < samples.size(); ++i) {
    NURI_CHECK(std::isfinite(samples[i]), path, ": audio sample ", i, " is ", samples[i],
               " (not finite)");
  }
}

// Checks an image's shape against its pixel buffer; the error names the file.
void check_image(const std::string& path, const Image& image, const char* what) {
  NURI_CHECK(image.height > 0 && image.width > 0, path, ": ", what, " is empty (", image.height,
             "x", image.width, ")");
  NURI_CHECK(image.rgb.size() == static_cast<size_t>(image.height * image.width * 3), path, ": ",
             what, " holds ", image.rgb.size(),
             " bytes, not height x width x 3 = ", image.height * image.width * 3);
}

// FFmpeg's message for an error code.
std::string av_error(int code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, text, sizeof(text));
  return text;
}

struct SndfileCloser {
  void operator()(SNDFILE* file) const { sf_close(file); }
};
struct CodecContextFree {
  void operator()(AVCodecContext* context) const { avcodec_free_context(&context); }
};
struct FrameFree {
  void operator()(AVFrame* frame) const { av_frame_free(&frame); }
};
struct PacketFree {
  void operator()(AVPacket* packet) const { av_packet_free(&packet); }
};
struct SwsFree {
  void operator()(SwsContext* context) const { sws_freeContext(context); }
};
// Closes the output file (when open) and frees the muxer.
struct OutputFormatFree {
  void operator()(AVFormatContext* format) const {
    if (format->pb && !(format->oformat->flags & AVFMT_NOFILE)) avio_closep(&format->pb);
    avformat_free_context(format);
  }
};
using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextFree>;
using FramePtr = std::unique_ptr<AVFrame, FrameFree>;

// One encoder feeding one stream of the muxer.
struct EncodedStream {
  CodecContextPtr codec;
  AVStream* stream = nullptr;
};

// Opens an encoder by id with the settings `configure` applies, and adds its stream.
template <class Configure>
EncodedStream open_stream(const std::string& path, AVFormatContext* format, AVCodecID id,
                          Configure configure) {
  const AVCodec* encoder = avcodec_find_encoder(id);
  NURI_CHECK(encoder, path, ": this FFmpeg has no ", avcodec_get_name(id), " encoder");
  EncodedStream out;
  out.codec.reset(avcodec_alloc_context3(encoder));
  NURI_CHECK(out.codec, path, ": out of memory for the ", encoder->name, " encoder");
  configure(out.codec.get());
  out.codec->thread_count = 1;  // the same bytes on every machine
  out.codec->flags |= AV_CODEC_FLAG_BITEXACT;
  if (format->oformat->flags & AVFMT_GLOBALHEADER) {
    out.codec->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  }
  int status = avcodec_open2(out.codec.get(), encoder, nullptr);
  NURI_CHECK(status >= 0, path, ": opening the ", encoder->name,
             " encoder failed: ", av_error(status));
  out.stream = avformat_new_stream(format, nullptr);
  NURI_CHECK(out.stream, path, ": out of memory for a stream");
  out.stream->time_base = out.codec->time_base;
  status = avcodec_parameters_from_context(out.stream->codecpar, out.codec.get());
  NURI_CHECK(status >= 0, path, ": copying encoder parameters failed: ", av_error(status));
  return out;
}

// Sends one frame (nullptr: end of stream) to the encoder and muxes every packet it returns.
void encode(const std::string& path, AVFormatContext* format, const EncodedStream& out,
            const AVFrame* frame, AVPacket* packet) {
  int status = avcodec_send_frame(out.codec.get(), frame);
  NURI_CHECK(status >= 0, path, ": encoding with ", out.codec->codec->name,
             " failed: ", av_error(status));
  while (true) {
    status = avcodec_receive_packet(out.codec.get(), packet);
    if (status == AVERROR(EAGAIN) || status == AVERROR_EOF) return;
    NURI_CHECK(status >= 0, path, ": encoding with ", out.codec->codec->name,
               " failed: ", av_error(status));
    // A video packet lasts one frame (the muxer needs it for the last frame's duration).
    if (packet->duration == 0 && out.codec->codec_type == AVMEDIA_TYPE_VIDEO) packet->duration = 1;
    av_packet_rescale_ts(packet, out.codec->time_base, out.stream->time_base);
    packet->stream_index = out.stream->index;
    status = av_interleaved_write_frame(format, packet);  // takes the packet's data
    NURI_CHECK(status >= 0, path, ": writing a packet failed: ", av_error(status));
  }
}

// An allocated frame with buffers for the format the encoder was opened with.
FramePtr encoder_frame(const std::string& path, const AVCodecContext* codec, int samples) {
  FramePtr frame(av_frame_alloc());
  NURI_CHECK(frame, path, ": out of memory for a frame");
  if (codec->codec_type == AVMEDIA_TYPE_VIDEO) {
    frame->format = codec->pix_fmt;
    frame->width = codec->width;
    frame->height = codec->height;
  } else {
    frame->format = codec->sample_fmt;
    frame->sample_rate = codec->sample_rate;
    frame->nb_samples = samples;
    const int status = av_channel_layout_copy(&frame->ch_layout, &codec->ch_layout);
    NURI_CHECK(status >= 0, path, ": copying the channel layout failed: ", av_error(status));
  }
  const int status = av_frame_get_buffer(frame.get(), 0);
  NURI_CHECK(status >= 0, path, ": allocating a frame failed: ", av_error(status));
  return frame;
}

}  // namespace

void save_wav(const std::string& path, const std::vector<float>& samples, int sample_rate) {
  NURI_CHECK(sample_rate > 0, path, ": sample rate ", sample_rate, " is not positive");
  NURI_CHECK(!samples.empty(), path, ": no audio samples to write");
  check_finite(path, samples);
  std::vector<float> clipped(samples.size());
  std::transform(samples.begin(), samples.end(), clipped.begin(),
                 [](float x) { return std::clamp(x, -1.0f, 1.0f); });

  TempPath temp(path);
  SF_INFO info{};
  info.samplerate = sample_rate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  {
    std::unique_ptr<SNDFILE, SndfileCloser> file(sf_open(temp.path().c_str(), SFM_WRITE, &info));
    NURI_CHECK(file, path, ": opening ", temp.path(),
               " for writing failed: ", sf_strerror(nullptr));
    const sf_count_t written =
        sf_write_float(file.get(), clipped.data(), static_cast<sf_count_t>(clipped.size()));
    NURI_CHECK(written == static_cast<sf_count_t>(clipped.size()), path, ": wrote ", written,
               " of ", clipped.size(), " samples: ", sf_strerror(file.get()));
    const int closed = sf_close(file.release());
    NURI_CHECK(closed == 0, path, ": closing ", temp.path(), " failed: ", sf_error_number(closed));
  }
  temp.commit();
}

void save_image(const std::string& path, const Image& image) {
  check_image(path, image, "the image");
  const std::string extension = lower_extension(path);
  NURI_CHECK(extension == ".png" || extension == ".jpg" || extension == ".jpeg", path,
             ": unsupported image extension '", extension, "' (use .png, .jpg or .jpeg)");
  const cv::Mat rgb(static_cast<int>(image.height), static_cast<int>(image.width), CV_8UC3,
                    const_cast<uint8_t*>(image.rgb.data()));
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::vector<uint8_t> bytes;
  const std::vector<int> params =
      extension == ".png" ? std::vector<int>{} : std::vector<int>{cv::IMWRITE_JPEG_QUALITY, 95};
  NURI_CHECK(cv::imencode(extension, bgr, bytes, params), path, ": encoding as ", extension,
             " failed");
  write_file_atomic(path,
                    std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

void save_video(const std::string& path, const std::vector<Image>& frames, double fps,
                const std::vector<float>& audio) {
  NURI_CHECK(!frames.empty(), path, ": no video frames to write");
  NURI_CHECK(std::isfinite(fps) && fps > 0 && fps <= 1000, path, ": frame rate ", fps,
             " is not in (0, 1000]");
  const int64_t height = frames[0].height, width = frames[0].width;
  for (size_t i = 0; i < frames.size(); ++i) {
    check_image(path, frames[i], cat("frame ", i).c_str());
    NURI_CHECK(frames[i].height == height && frames[i].width == width, path, ": frame ", i, " is ",
               frames[i].height, "x", frames[i].width, ", frame 0 is ", height, "x", width);
  }
  NURI_CHECK(height % 2 == 0 && width % 2 == 0, path, ": frames are ", height, "x", width,
             "; MPEG-4 with 4:2:0 chroma needs even sides");
  check_finite(path, audio);

  // FFmpeg's informational messages (the AAC encoder's statistics) are not for nuri's users.
  static std::once_flag quiet;
  std::call_once(quiet, [] {
    if (av_log_get_level() > AV_LOG_WARNING) av_log_set_level(AV_LOG_WARNING);
  });
  TempPath temp(path);
  AVFormatContext* raw_format = nullptr;
  int status = avformat_alloc_output_context2(&raw_format, nullptr, "mp4", temp.path().c_str());
  NURI_CHECK(status >= 0 && raw_format, path,
             ": creating the mp4 muxer failed: ", av_error(status));
  std::unique_ptr<AVFormatContext, OutputFormatFree> format(raw_format);
  format->flags |= AVFMT_FLAG_BITEXACT;

  const AVRational frame_rate = av_d2q(fps, 65535);
  const EncodedStream video =
      open_stream(path, format.get(), AV_CODEC_ID_MPEG4, [&](AVCodecContext* codec) {
        codec->width = static_cast<int>(width);
        codec->height = static_cast<int>(height);
        codec->pix_fmt = AV_PIX_FMT_YUV420P;
        codec->time_base = av_inv_q(frame_rate);
        codec->framerate = frame_rate;
        codec->gop_size = 12;
        codec->max_b_frames = 0;
        codec->flags |= AV_CODEC_FLAG_QSCALE;
        codec->global_quality = FF_QP2LAMBDA * 3;  // q 3 of 2..31: near transparent
      });
  EncodedStream sound;
  if (!audio.empty()) {
    sound = open_stream(path, format.get(), AV_CODEC_ID_AAC, [&](AVCodecContext* codec) {
      codec->sample_fmt = AV_SAMPLE_FMT_FLTP;
      codec->sample_rate = kAudioSampleRate;
      av_channel_layout_default(&codec->ch_layout, 1);
      codec->bit_rate = 48000;
      codec->time_base = AVRational{1, kAudioSampleRate};
    });
  }

  status = avio_open(&format->pb, temp.path().c_str(), AVIO_FLAG_WRITE);
  NURI_CHECK(status >= 0, path, ": opening ", temp.path(), " failed: ", av_error(status));
  status = avformat_write_header(format.get(), nullptr);
  NURI_CHECK(status >= 0, path, ": writing the mp4 header failed: ", av_error(status));

  std::unique_ptr<AVPacket, PacketFree> packet(av_packet_alloc());
  NURI_CHECK(packet, path, ": out of memory for a packet");
  std::unique_ptr<SwsContext, SwsFree> to_yuv(
      sws_getContext(static_cast<int>(width), static_cast<int>(height), AV_PIX_FMT_RGB24,
                     static_cast<int>(width), static_cast<int>(height), AV_PIX_FMT_YUV420P,
                     SWS_BICUBIC | SWS_ACCURATE_RND | SWS_BITEXACT, nullptr, nullptr, nullptr));
  NURI_CHECK(to_yuv, path, ": creating the RGB to YUV converter failed");

  // Mono float is the same in interleaved and planar layout, and the soundtrack is already at
  // the encoder's rate, so samples go into AAC frames as they are.
  const int audio_frame = sound.codec ? sound.codec->frame_size : 0;
  const bool small_last_frame =
      sound.codec && (sound.codec->codec->capabilities &
                      (AV_CODEC_CAP_SMALL_LAST_FRAME | AV_CODEC_CAP_VARIABLE_FRAME_SIZE));
  size_t next_frame = 0;
  int64_t next_sample = 0;
  const int64_t total_samples = static_cast<int64_t>(audio.size());
  // Frames and audio go to the muxer in time order, so that the file is interleaved.
  while (next_frame < frames.size() || (sound.codec && next_sample < total_samples)) {
    const double video_time = next_frame < frames.size()
                                  ? static_cast<double>(next_frame) / av_q2d(frame_rate)
                                  : INFINITY;
    const double audio_time = sound.codec && next_sample < total_samples
                                  ? static_cast<double>(next_sample) / kAudioSampleRate
                                  : INFINITY;
    if (video_time <= audio_time) {
      const FramePtr frame = encoder_frame(path, video.codec.get(), 0);
      const Image& image = frames[next_frame];
      const uint8_t* source[1] = {image.rgb.data()};
      const int source_stride[1] = {static_cast<int>(width * 3)};
      sws_scale(to_yuv.get(), source, source_stride, 0, static_cast<int>(height), frame->data,
                frame->linesize);
      frame->pts = static_cast<int64_t>(next_frame);
      frame->quality = video.codec->global_quality;
      encode(path, format.get(), video, frame.get(), packet.get());
      ++next_frame;
    } else {
      const int64_t remaining = total_samples - next_sample;
      const int count = static_cast<int>(std::min<int64_t>(audio_frame, remaining));
      const int allocated = small_last_frame ? count : audio_frame;
      const FramePtr frame = encoder_frame(path, sound.codec.get(), allocated);
      float* plane = reinterpret_cast<float*>(frame->data[0]);
      std::copy_n(audio.data() + next_sample, count, plane);
      std::fill(plane + count, plane + allocated, 0.0f);
      for (int i = 0; i < count; ++i) plane[i] = std::clamp(plane[i], -1.0f, 1.0f);
      frame->pts = next_sample;
      encode(path, format.get(), sound, frame.get(), packet.get());
      next_sample += count;
    }
  }
  encode(path, format.get(), video, nullptr, packet.get());
  if (sound.codec) encode(path, format.get(), sound, nullptr, packet.get());
  status = av_write_trailer(format.get());
  NURI_CHECK(status >= 0, path, ": writing the mp4 trailer failed: ", av_error(status));
  status = avio_closep(&format->pb);
  NURI_CHECK(status >= 0, path, ": closing ", temp.path(), " failed: ", av_error(status));
  temp.commit();
}

}  // namespace nuri
