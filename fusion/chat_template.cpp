#include "fusion/chat_template.h"

#include <algorithm>
#include <cmath>

#include "kernels/error.h"

namespace nuri {

namespace {

int32_t special(const Tokenizer& tokenizer, const char* token) {
  const std::optional<int32_t> id = tokenizer.token_to_id(token);
  NURI_CHECK(id.has_value(), "chat template: the tokenizer has no special token ", token);
  return *id;
}

// Temporal position offset of media time `seconds`.
int32_t temporal_id(double seconds) {
  return static_cast<int32_t>(std::lround(seconds / kSecondsPerTemporalId));
}

// Appends to a layout while tracking positions and targets.
struct Builder {
  SequenceLayout out;
  std::vector<int32_t> t, h, w;
  std::vector<bool> learn;  // whether the token at this position is a target of the previous one
  int32_t next = 0;         // the position of the next text token
  int32_t top = -1;         // the largest position id used so far

  void token(int32_t id, bool target) {
    out.ids.push_back(id);
    t.push_back(next);
    h.push_back(next);
    w.push_back(next);
    learn.push_back(target);
    top = std::max(top, next);
    ++next;
  }
  // A media row at (dt, dh, dw) relative to the span's first id `base`.
  void media_row(int32_t pad, int32_t base, int32_t dt, int32_t dh, int32_t dw) {
    out.ids.push_back(pad);
    t.push_back(base + dt);
    h.push_back(base + dh);
    w.push_back(base + dw);
    learn.push_back(false);
    top = std::max({top, base + dt, base + dh, base + dw});
  }
  // Records rows [first, first + count) of a media item's tokens placed at sequence offset start.
  void slice(int64_t media, bool audio, int64_t first, int64_t count, int64_t start) {
    if (count > 0) out.slices.push_back({media, audio, first, count, start});
  }
  // Continues text one past the largest id used so far.
  void close_span() { next = top + 1; }  // top >= next - 1: every text token raises it
};

}  // namespace

ChatTemplate::ChatTemplate(const Tokenizer& tokenizer)
    : tokenizer_(tokenizer),
      im_start_(special(tokenizer, "<|im_start|>")),
      im_end_(special(tokenizer, "<|im_end|>")),
      system_(special(tokenizer, "<|system|>")),
      user_(special(tokenizer, "<|user|>")),
      assistant_(special(tokenizer, "<|assistant|>")),
      audio_start_(special(tokenizer, "<|audio_start|>")),
      audio_end_(special(tokenizer, "<|audio_end|>")),
      audio_pad_(special(tokenizer, "<|audio_pad|>")),
      image_start_(special(tokenizer, "<|image_start|>")),
      image_end_(special(tokenizer, "<|image_end|>")),
      image_pad_(special(tokenizer, "<|image_pad|>")),
      video_start_(special(tokenizer, "<|video_start|>")),
      video_end_(special(tokenizer, "<|video_end|>")),
      video_pad_(special(tokenizer, "<|video_pad|>")) {}

SequenceLayout ChatTemplate::layout(const Conversation& conversation,
                                    const std::vector<MediaShape>& shapes,
                                    bool generation_prompt) const {
  const size_t media_count = conversation.media().size();
  NURI_CHECK(shapes.size() == media_count, "chat template: the conversation has ", media_count,
             " media parts but ", shapes.size(), " shapes were given");
  Builder b;
  int64_t media = 0;
  for (const Message& message : conversation.messages) {
    const bool learn = message.role == Role::assistant;
    const int32_t role = message.role == Role::system ? system_
                         : message.role == Role::user ? user_
                                                      : assistant_;
    b.token(im_start_, false);
    b.token(role, false);
    for (const ContentPart& part : message.content) {
      if (part.kind == PartKind::text) {
        for (int32_t id : tokenizer_.encode(part.text)) b.token(id, learn);
        continue;
      }
      const MediaShape& shape = shapes[media];
      NURI_CHECK(shape.kind == part.kind, "chat template: media part ", media, " (", part.path,
                 ") has a shape of another kind");
      if (part.kind == PartKind::audio) {
        b.token(audio_start_, false);
        const int32_t base = b.next;
        b.slice(media, true, 0, shape.audio_tokens, b.out.size());
        for (int64_t k = 0; k < shape.audio_tokens; ++k) {
          const int32_t dt = temporal_id(k * shape.seconds_per_audio_token);
          b.media_row(audio_pad_, base, dt, dt, dt);
        }
        b.close_span();
        b.token(audio_end_, false);
      } else if (part.kind == PartKind::image) {
        NURI_CHECK(shape.grid_h > 0 && shape.grid_w > 0, "chat template: image ", part.path,
                   " has an empty token grid");
        b.token(image_start_, false);
        const int32_t base = b.next;
        b.slice(media, false, 0, shape.grid_h * shape.grid_w, b.out.size());
        for (int32_t r = 0; r < shape.grid_h; ++r)
          for (int32_t c = 0; c < shape.grid_w; ++c) b.media_row(image_pad_, base, 0, r, c);
        b.close_span();
        b.token(image_end_, false);
      } else {
        NURI_CHECK(shape.grid_h > 0 && shape.grid_w > 0 && !shape.slice_times.empty(),
                   "chat template: video ", part.path, " has no frames");
        b.token(video_start_, false);
        const int32_t base = b.next;
        const int64_t per_slice = shape.grid_h * shape.grid_w;
        size_t slice = 0;
        int64_t audio_token = 0;
        for (int64_t chunk = 0;
             slice < shape.slice_times.size() || audio_token < shape.audio_tokens; ++chunk) {
          const double chunk_end = (chunk + 1) * kInterleaveChunkSeconds;
          const size_t first_slice = slice;
          const int64_t visual_start = b.out.size();
          while (slice < shape.slice_times.size() && shape.slice_times[slice] < chunk_end) {
            const int32_t dt = temporal_id(shape.slice_times[slice]);
            for (int32_t r = 0; r < shape.grid_h; ++r)
              for (int32_t c = 0; c < shape.grid_w; ++c) b.media_row(video_pad_, base, dt, r, c);
            ++slice;
          }
          b.slice(media, false, first_slice * per_slice, (slice - first_slice) * per_slice,
                  visual_start);
          const int64_t first_audio = audio_token, audio_start = b.out.size();
          while (audio_token < shape.audio_tokens &&
                 audio_token * shape.seconds_per_audio_token < chunk_end) {
            const int32_t dt = temporal_id(audio_token * shape.seconds_per_audio_token);
            b.media_row(audio_pad_, base, dt, dt, dt);
            ++audio_token;
          }
          b.slice(media, true, first_audio, audio_token - first_audio, audio_start);
        }
        b.close_span();
        b.token(video_end_, false);
      }
      ++media;
    }
    b.token(im_end_, learn);
  }
  if (generation_prompt) {
    b.token(im_start_, false);
    b.token(assistant_, false);
  }
  SequenceLayout& out = b.out;
  const size_t n = out.ids.size();
  out.targets.assign(n, -100);
  for (size_t i = 0; i + 1 < n; ++i)
    if (b.learn[i + 1]) out.targets[i] = out.ids[i + 1];
  out.positions = b.t;
  out.positions.insert(out.positions.end(), b.h.begin(), b.h.end());
  out.positions.insert(out.positions.end(), b.w.begin(), b.w.end());
  out.next_position = b.next;
  return out;
}

}  // namespace nuri
