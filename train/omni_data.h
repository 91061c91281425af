// The omni model's data: manifests decoded into encoder inputs, packed into shards (safetensors
// files with an index) so that training reads at memory speed, and read back from them.
//
// A pack directory holds index.json and shard-NNNNN.safetensors. Each sample's tensors are named
// "<n>.ids", "<n>.targets", "<n>.positions" (i32: the chat template's layout) and, for its media,
// "<n>.media<j>.mel" (f32 [n_mels, frames]), "<n>.media<j>.pixels" (u8 [H, W, 3] for an image,
// [T, H, W, 3] for video frames), "<n>.media<j>.times" (f32 frame times in seconds) and
// "<n>.media<j>.transcript" (i32 token ids of what an audio item says, when known). The index
// records the model and tokenizer the layouts were made for, each sample's shard, task, answer
// and origin, and the samples skipped as bad with their errors.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fusion/chat_template.h"
#include "fusion/omni_model.h"
#include "kernels/safetensors.h"
#include "train/manifest.h"

namespace nuri {

// Limits on the media decoded for training; the model's config says how video is sampled
// (VisionEncoderConfig::video_fps, max_video_frames and the video pixel budget).
struct MediaDecodeOptions {
  double max_audio_seconds = 60;
  double max_video_seconds = 30;
};

// Decodes the media of one conversation into the encoders' inputs (log-mel, resized pixels).
// Errors name the file and the fault.
std::vector<MediaInput> decode_media(const Conversation& conversation, const OmniConfig& config,
                                     const MediaDecodeOptions& options);

// What `nuri data pack` does.
struct PackOptions {
  std::string manifest;
  std::string out_dir;
  int64_t shard_samples = 256;  // samples per shard
  int64_t max_bad_samples = 0;  // more bad samples than this abort the pack
  MediaDecodeOptions media;
  int threads = 0;  // decoding threads; 0: the OpenMP default
  bool progress = true;
};

// Result of a pack.
struct PackSummary {
  int64_t samples = 0;
  int64_t skipped = 0;
  int64_t shards = 0;
  int64_t bytes = 0;
};

// Packs a manifest for `model` (whose token counts fix the layouts) and `chat`. Samples whose
// media fail to decode are skipped and listed in the index with the reason; more than
// max_bad_samples of them is an error that names the first few. The index is written last, so a
// directory with index.json is complete.
PackSummary pack_manifest(const PackOptions& options, const OmniModel& model,
                          const ChatTemplate& chat);

// The layout stored under `key` in a pack shard ("<key>.ids", ".targets", ".positions" and
// ".slices", five i32 per media slice), with next_position one past its largest position.
// Inconsistent tensor sizes are an error naming the shard and key.
SequenceLayout read_packed_layout(const SafetensorsFile& shard, const std::string& key);

// One packed sample, ready for the model.
struct OmniSample {
  SequenceLayout layout;
  std::vector<MediaInput> media;
  std::string task, answer, where;
};

// A pack directory, mapped: samples are read on demand.
class PackedDataset {
 public:
  // Opens dir/index.json and its shards. The pack must have been made for this model config and
  // tokenizer (fingerprints in the index); otherwise the error says to re-pack.
  PackedDataset(const std::string& dir, const OmniConfig& config,
                const std::string& tokenizer_fingerprint);
  int64_t size() const { return static_cast<int64_t>(entries_.size()); }
  // Sample i with its pixels normalised for the vision encoder.
  OmniSample sample(int64_t i) const;
  const std::string& task(int64_t i) const { return entries_[i].task; }
  int64_t skipped() const { return skipped_; }
  // Tokens of sample i's sequence.
  int64_t tokens(int64_t i) const { return entries_[i].tokens; }

 private:
  struct Entry {
    int64_t shard = 0, index = 0, tokens = 0;
    std::vector<PartKind> media;
    std::string task, answer, where;
  };
  std::string dir_;
  OmniConfig config_;
  std::vector<SafetensorsFile> shards_;
  std::vector<Entry> entries_;
  int64_t skipped_ = 0;
};

// The fingerprint that ties a pack to a model config (the parts that change layouts or inputs).
std::string pack_fingerprint(const OmniConfig& config, const std::string& tokenizer_fingerprint);

}  // namespace nuri
