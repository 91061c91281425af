// The log-mel front end in the Whisper convention: 16 kHz audio, a periodic Hann window of 400
// samples (n_fft 400), hop 160 (100 frames per second), reflect padding of n_fft/2 at both ends,
// power spectrum, 80 or 128 Slaney-normalized mel bins from 0 to 8 kHz, log10, then (x + 4) / 4.
// Whisper clamps each utterance at its maximum - 8, which a stream cannot know in advance: that
// is the whole-file mode; the streaming mode clamps at a fixed floor instead.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>
#include "kernels/tensor.h"

namespace nuri {

inline constexpr int kMelFft = 400;
inline constexpr int kMelHop = 160;

// Which clamp the log-mel applies before (x + 4) / 4.
enum class MelClamp {
  fixed_floor,  // log10 >= kMelFloor, the same for every frame: streamable
  whisper,      // log10 >= max over the whole input - 8, as Whisper does
};

// The floor of the streaming mode, in log10 power.
inline constexpr float kMelFloor = -8.0f;

struct MelOptions {
  int n_mels = 80;  // 80 or 128
  MelClamp clamp = MelClamp::fixed_floor;
};

// Log-mel of 16 kHz mono samples: f32 [n_mels, frames] with frames = samples / 160 (Whisper
// drops the last STFT frame), so fewer than 160 samples (none included) give [n_mels, 0]. Inputs
// of 160 to 200 samples, which torch.stft refuses, are padded as numpy.pad's reflect mode does:
// the reflection repeats. Throws on an unsupported n_mels or a sample that is not finite.
Tensor log_mel(const std::vector<float>& samples, const MelOptions& options = {});

// The same frames as log_mel in fixed_floor mode, bit for bit, computed from audio that arrives in
// pieces of any size: push() returns the frames that are complete so far (frame t once sample
// 160 t + 199 is known, frame 0 once sample 200 is), finish() the rest. It holds at most the last
// n_fft samples plus the piece being pushed.
class StreamingLogMel {
 public:
  // Throws on an unsupported n_mels (80 or 128).
  explicit StreamingLogMel(int n_mels = 80);
  ~StreamingLogMel();
  StreamingLogMel(const StreamingLogMel&) = delete;
  StreamingLogMel& operator=(const StreamingLogMel&) = delete;
  // Appends samples; returns the newly complete frames as f32 [n_mels, k] (k may be 0). Throws,
  // keeping the stream as it was, on a negative count, a sample that is not finite, or after
  // finish().
  Tensor push(const float* samples, int64_t count);
  // Ends the stream (reflect padding at the end); returns the remaining frames. Throws when
  // called twice.
  Tensor finish();
  // Frames returned so far.
  int64_t frames() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace nuri
