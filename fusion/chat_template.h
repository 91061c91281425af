// The omni chat template: a conversation becomes one sequence of token ids and media spans, with
// multimodal rotary positions (temporal, height, width) and next-token targets on assistant text
// only.
//
//   <|im_start|><|user|> <|audio_start|> audio… <|audio_end|> text… <|im_end|>
//   <|im_start|><|assistant|> text… <|im_end|>
//
// Text advances all three position streams together. An image's tokens share one temporal id and
// take height and width ids from their place in the merged patch grid. Audio takes one temporal id
// per 40 ms. A video is cut into 2 s chunks; each chunk holds its frames' tokens (temporal id from
// the frame's real time) and then its soundtrack's tokens, so sound and picture stay aligned and a
// live stream is just more chunks. After a span, text continues at one past the largest id used.
#pragma once
#include <cstdint>
#include <vector>
#include "encoders/tokenizer.h"
#include "fusion/conversation.h"

namespace nuri {

// Seconds of media per temporal position id.
inline constexpr double kSecondsPerTemporalId = 0.04;
// Audio and video interleave in chunks of this many seconds.
inline constexpr double kInterleaveChunkSeconds = 2.0;

// The number of tokens each media item's encoder produces, known before encoding.
struct MediaShape {
  PartKind kind = PartKind::audio;
  int64_t audio_tokens = 0;  // audio, or a video's soundtrack
  double seconds_per_audio_token = kSecondsPerTemporalId;
  int64_t grid_h = 0, grid_w = 0;   // merged token grid of an image or of each video slice
  std::vector<double> slice_times;  // video: the time (s) of each temporal slice of frames
};

// A run of one media item's encoder output placed in the sequence: rows [first, first + count)
// of that item's visual tokens, or of its audio (or soundtrack) tokens, at sequence offset start.
struct MediaSlice {
  int64_t media = 0;  // index into the conversation's media()
  bool audio = false;
  int64_t first = 0, count = 0;
  int64_t start = 0;
};

// The sequence of a conversation.
struct SequenceLayout {
  std::vector<int32_t> ids;        // tokens; media rows hold the modality's pad token
  std::vector<int32_t> targets;    // next-token target per position, -100 where there is no loss
  std::vector<int32_t> positions;  // [3, T]: temporal ids, then height ids, then width ids
  std::vector<MediaSlice> slices;  // media rows, in sequence order
  int64_t size() const { return static_cast<int64_t>(ids.size()); }
  // One past the largest position id: where generated text continues.
  int32_t next_position = 0;
};

class ChatTemplate {
 public:
  // Looks up the chat and modality special tokens; a tokenizer without them is an error.
  explicit ChatTemplate(const Tokenizer& tokenizer);
  // Lays out `conversation` whose media have `shapes` (in media() order). With
  // generation_prompt, an open assistant turn (<|im_start|><|assistant|>) ends the sequence.
  SequenceLayout layout(const Conversation& conversation, const std::vector<MediaShape>& shapes,
                        bool generation_prompt = false) const;
  int32_t end_of_turn() const { return im_end_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  const Tokenizer& tokenizer_;
  int32_t im_start_, im_end_, system_, user_, assistant_;
  int32_t audio_start_, audio_end_, audio_pad_;
  int32_t image_start_, image_end_, image_pad_;
  int32_t video_start_, video_end_, video_pad_;
};

}  // namespace nuri
