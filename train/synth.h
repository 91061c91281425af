// `nuri data synth`: a small synthetic multimodal corpus (speech, images, video and questions
// about them) in the JSONL manifest format of the training data, generated deterministically
// from a seed so that tests and the quickstart train on the same bytes everywhere.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace nuri {

// The kinds of question in the corpus; each manifest line's "task" field names one.
inline constexpr std::array<const char*, 9> kSynthTasks = {
    "transcribe",      "image_color",  "image_shape",  "image_count",          "image_text",
    "video_direction", "video_object", "video_speech", "spoken_image_question"};

// The splits, in the order they are generated.
inline constexpr std::array<const char*, 3> kSynthSplits = {"train", "valid", "test"};

// What to generate and where.
struct SynthOptions {
  std::string out;                 // the corpus directory (must be absent or empty unless force)
  int64_t train = 200;             // samples per task in the train split
  int64_t valid = 20;              // ... in the valid split
  int64_t test = 20;               // ... in the test split
  std::vector<std::string> tasks;  // the kSynthTasks to generate (empty: all of them)
  std::map<std::string, int64_t> train_of;  // train samples of these tasks, instead of `train`
  uint64_t seed = 1;                        // same seed, same manifests
  int64_t image_size = 112;                 // images are image_size x image_size
  int64_t video_size = 112;                 // video frames are video_size x video_size (even)
  double video_fps = 8;                     // frames per second of the videos
  int threads = 0;        // worker threads for drawing and encoding (0: all cores)
  std::string font;       // a TrueType font with Hangul ("": look for NanumGothic)
  bool force = false;     // replace a non-empty `out`
  bool progress = false;  // draw a progress bar on a terminal
};

// What was generated: sample counts per split and task (in kSynthSplits x kSynthTasks order).
struct SynthSummary {
  std::array<std::array<int64_t, kSynthTasks.size()>, kSynthSplits.size()> counts{};
  int64_t files = 0;  // media files written
  int64_t bytes = 0;  // their total size
  double seconds = 0;
};

// Generates the corpus into options.out: train.jsonl, valid.jsonl and test.jsonl, media files
// under media/ (paths in the manifests are relative to them) and synth.json (options and counts).
// Writes into a temporary sibling directory that is renamed into place at the end, so `out`
// never holds a partial corpus. Throws nuri::Error on bad options or when a tool is missing.
SynthSummary synthesize_corpus(const SynthOptions& options);

// One word of the speech vocabulary.
struct SynthWord {
  std::string text;      // UTF-8 (Hangul for Korean)
  std::string language;  // "en" or "ko"
  std::string role;      // part of speech in the sentence templates: noun, adjective, verb, ...
};

// The vocabulary the spoken sentences are built from.
const std::vector<SynthWord>& synth_vocabulary();

}  // namespace nuri
