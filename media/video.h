// Video in and out (FFmpeg): frames sampled at a fixed rate with their real timestamps, and the
// soundtrack as 16 kHz mono audio.
#pragma once
#include <string>
#include <vector>
#include "media/image.h"

namespace nuri {

// One sampled frame and the time it is shown, in seconds from the start of the stream.
struct VideoFrame {
  double time = 0;
  Image image;
};

// A decoded video: sampled frames in time order and the soundtrack (empty when there is none).
struct Video {
  std::vector<VideoFrame> frames;
  std::vector<float> audio;  // 16 kHz mono
  double duration = 0;       // seconds
};

// How frames are sampled, and the limits that keep a hostile file from exhausting memory.
struct VideoLoadOptions {
  double fps = 2;            // frames sampled per second of video
  double max_seconds = 120;  // longer video is an error naming the file and its duration
  int64_t max_frames = 256;  // sampling stops here
  bool audio = true;         // also decode the soundtrack
};

// Decodes a video file (any container and codec FFmpeg reads). A corrupt, truncated, empty or
// unsupported file, or one over the limits, throws nuri::Error naming the file and the fault.
Video load_video(const std::string& path, const VideoLoadOptions& options = {});

// Writes RGB frames (all the same size, even sides) at `fps` with an optional 16 kHz mono
// soundtrack as an mp4 (MPEG-4 video, AAC audio), atomically.
void save_video(const std::string& path, const std::vector<Image>& frames, double fps,
                const std::vector<float>& audio = {});

}  // namespace nuri
