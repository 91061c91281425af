// Audio in and out. Every decoder turns its input into 16 kHz mono float samples in [-1, 1], the
// rate the log-mel front end and the audio encoder expect.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace nuri {

// The sample rate of all audio inside nuri.
inline constexpr int kAudioSampleRate = 16000;

// Limits that keep an enormous or hostile file from exhausting memory.
struct AudioLoadOptions {
  double max_seconds = 600;  // longer input is an error naming the file and its duration
};

// Decodes wav, flac and ogg (libsndfile) or mp3, m4a, opus/webm and the soundtrack of a video
// (FFmpeg), of any rate, channel count and sample format, into 16 kHz mono float. The format is
// found from the content, not the extension. An unreadable, corrupt, truncated, empty or
// unsupported file, or one over the limits, throws nuri::Error naming the file and the fault.
std::vector<float> load_audio(const std::string& path, const AudioLoadOptions& options = {});

// Mixes interleaved float audio of `channels` channels down to mono and resamples it from
// `sample_rate` to 16 kHz (libswresample).
std::vector<float> to_mono_16k(const float* interleaved, int64_t frames, int channels,
                               int sample_rate);

// Writes mono float samples as a 16-bit PCM wav file (libsndfile), atomically.
void save_wav(const std::string& path, const std::vector<float>& samples,
              int sample_rate = kAudioSampleRate);

}  // namespace nuri
