// The chat template: token layout, targets on assistant text only, and time-aligned multimodal
// positions for images, audio and interleaved video.
#include "fusion/chat_template.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "kernels/error.h"
#include "tests/fusion/fusion_test_util.h"

namespace nuri::test {
namespace {

int32_t id(const char* token) {
  return *tokenizer().token_to_id(token);
}

Conversation parse(const std::string& text) {
  return conversation_from_json(nlohmann::json::parse(text), "/data/set", "test.jsonl:1");
}

// (t, h, w) of position i.
std::array<int32_t, 3> at(const SequenceLayout& s, int64_t i) {
  const int64_t n = s.size();
  return {s.positions[i], s.positions[n + i], s.positions[2 * n + i]};
}

std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Conversation, ParsesPartsAndResolvesPaths) {
  const Conversation c = parse(R"({"messages":[
    {"role":"user","content":[{"type":"input_audio","path":"a/q.wav"},
                              {"type":"image","path":"/abs/b.png"},{"type":"text","text":"hi"}]},
    {"role":"assistant","content":"red"}]})");
  ASSERT_EQ(c.messages.size(), 2u);
  ASSERT_EQ(c.media().size(), 2u);
  EXPECT_EQ(c.media()[0]->kind, PartKind::audio);
  EXPECT_EQ(c.media()[0]->path, "/data/set/a/q.wav");
  EXPECT_EQ(c.media()[1]->path, "/abs/b.png");
  EXPECT_EQ(c.messages[1].content[0].text, "red");
}

TEST(Conversation, AudioAndVideoPartsMayCarryATranscript) {
  const Conversation c = parse(R"({"messages":[{"role":"user","content":[
    {"type":"input_audio","path":"q.wav","transcript":"무슨 색인가요"},
    {"type":"video","path":"v.mp4","transcript":""},{"type":"input_audio","path":"r.wav"}]}]})");
  ASSERT_EQ(c.media().size(), 3u);
  EXPECT_EQ(c.media()[0]->transcript, std::optional<std::string>("무슨 색인가요"));
  EXPECT_EQ(c.media()[1]->transcript, std::optional<std::string>(""));
  EXPECT_FALSE(c.media()[2]->transcript.has_value());
  EXPECT_NE(error_of(R"({"messages":[{"role":"user","content":[
              {"type":"image","path":"a.png","transcript":"x"}]}]})")
                .find("messages[0].content[0]: an image part has no 'transcript'"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"messages":[{"role":"user","content":[
              {"type":"audio","path":"a.wav","transcript":3}]}]})")
                .find("'transcript' must be a string, got 3"),
            std::string::npos);
}

TEST(Conversation, ErrorsNameTheLineAndField) {
  EXPECT_NE(error_of(R"({"messages":[]})").find("test.jsonl:1: 'messages' is empty"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"messages":[{"role":"bot","content":"x"}]})").find("unknown role 'bot'"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"messages":[{"role":"user","content":[{"type":"gif","path":"a"}]}]})")
                .find("messages[0].content[0]: unknown content part type 'gif'"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"messages":[{"role":"user","content":[{"type":"image"}]}]})")
                .find("needs a non-empty string 'path'"),
            std::string::npos);
  EXPECT_NE(
      error_of(R"({"messages":[{"role":"assistant","content":[{"type":"audio","path":"r.wav"}]}]})")
          .find("only user messages may hold media"),
      std::string::npos);
  EXPECT_NE(error_of(R"([1,2])").find("expected an object with a 'messages' array"),
            std::string::npos);
}

TEST(ChatTemplate, TextTurnsAndAssistantOnlyTargets) {
  const ChatTemplate chat(tokenizer());
  const Conversation c = parse(R"({"messages":[{"role":"user","content":"빨간 사과"},
                                             {"role":"assistant","content":"red apple"}]})");
  const SequenceLayout s = chat.layout(c, {});
  const std::vector<int32_t> user = tokenizer().encode("빨간 사과");
  const std::vector<int32_t> reply = tokenizer().encode("red apple");
  std::vector<int32_t> expected = {id("<|im_start|>"), id("<|user|>")};
  expected.insert(expected.end(), user.begin(), user.end());
  expected.push_back(id("<|im_end|>"));
  expected.push_back(id("<|im_start|>"));
  expected.push_back(id("<|assistant|>"));
  const size_t reply_at = expected.size();
  expected.insert(expected.end(), reply.begin(), reply.end());
  expected.push_back(id("<|im_end|>"));
  ASSERT_EQ(s.ids, expected);
  // Targets: the reply's tokens and its <|im_end|>, each predicted from the position before.
  for (size_t i = 0; i < expected.size(); ++i) {
    const bool learned = i + 1 >= reply_at && i + 1 < expected.size();
    EXPECT_EQ(s.targets[i], learned ? expected[i + 1] : -100) << i;
  }
  for (int64_t i = 0; i < s.size(); ++i)
    EXPECT_EQ(at(s, i), (std::array<int32_t, 3>{int32_t(i), int32_t(i), int32_t(i)}));
  EXPECT_EQ(s.next_position, s.size());
  EXPECT_TRUE(s.slices.empty());
  // A generation prompt opens an assistant turn and adds no targets.
  const Conversation question = parse(R"({"messages":[{"role":"user","content":"hi"}]})");
  const SequenceLayout g = chat.layout(question, {}, true);
  EXPECT_EQ(g.ids.back(), id("<|assistant|>"));
  EXPECT_TRUE(std::all_of(g.targets.begin(), g.targets.end(), [](int32_t t) { return t == -100; }));
}

TEST(ChatTemplate, ImageTakesGridPositionsAndAudioOneIdPer40ms) {
  const ChatTemplate chat(tokenizer());
  const Conversation c = parse(R"({"messages":[{"role":"user","content":[
      {"type":"image","path":"i.png"},{"type":"input_audio","path":"a.wav"}]},
      {"role":"assistant","content":"ok"}]})");
  MediaShape image{.kind = PartKind::image, .grid_h = 2, .grid_w = 3, .slice_times = {}};
  MediaShape audio{.kind = PartKind::audio,
                   .audio_tokens = 4,
                   .seconds_per_audio_token = 0.08,
                   .slice_times = {}};
  const SequenceLayout s = chat.layout(c, {image, audio});
  // <|im_start|> <|user|> <|image_start|> = positions 0..2; the grid starts at id 3.
  ASSERT_EQ(s.ids[2], id("<|image_start|>"));
  ASSERT_EQ(s.slices.size(), 2u);
  EXPECT_EQ(s.slices[0].start, 3);
  EXPECT_EQ(s.slices[0].count, 6);
  EXPECT_FALSE(s.slices[0].audio);
  for (int r = 0; r < 2; ++r)
    for (int col = 0; col < 3; ++col) {
      EXPECT_EQ(s.ids[3 + r * 3 + col], id("<|image_pad|>"));
      EXPECT_EQ(at(s, 3 + r * 3 + col), (std::array<int32_t, 3>{3, 3 + r, 3 + col}));
    }
  // <|image_end|> continues one past the largest id (3 + 2 = 5), so it sits at 6.
  EXPECT_EQ(s.ids[9], id("<|image_end|>"));
  EXPECT_EQ(at(s, 9)[0], 6);
  EXPECT_EQ(s.ids[10], id("<|audio_start|>"));
  EXPECT_EQ(s.slices[1].start, 11);
  EXPECT_TRUE(s.slices[1].audio);
  // 80 ms per token is two temporal ids per token.
  for (int k = 0; k < 4; ++k)
    EXPECT_EQ(at(s, 11 + k), (std::array<int32_t, 3>{8 + 2 * k, 8 + 2 * k, 8 + 2 * k}));
  EXPECT_EQ(at(s, 15)[0], 15);  // <|audio_end|> after the largest id 14
}

TEST(ChatTemplate, VideoInterleavesFramesThenSoundInTwoSecondChunks) {
  const ChatTemplate chat(tokenizer());
  const Conversation c = parse(R"({"messages":[{"role":"user","content":[
      {"type":"video","path":"v.mp4"}]}]})");
  // Slices at 0, 1, 2 and 3 s (2 frames at 2 fps each), a 1x2 grid, 3.2 s of sound at 25/s.
  MediaShape video{.kind = PartKind::video,
                   .audio_tokens = 80,
                   .grid_h = 1,
                   .grid_w = 2,
                   .slice_times = {0, 1, 2, 3}};
  const SequenceLayout s = chat.layout(c, {video});
  ASSERT_EQ(s.slices.size(), 4u);
  // Chunk 0: slices 0-1 (4 rows), then sound tokens 0-49; chunk 1: slices 2-3, tokens 50-79.
  EXPECT_FALSE(s.slices[0].audio);
  EXPECT_EQ(s.slices[0].count, 4);
  EXPECT_TRUE(s.slices[1].audio);
  EXPECT_EQ(s.slices[1].first, 0);
  EXPECT_EQ(s.slices[1].count, 50);
  EXPECT_EQ(s.slices[2].first, 4);
  EXPECT_EQ(s.slices[3].first, 50);
  EXPECT_EQ(s.slices[3].count, 30);
  const int64_t base = s.slices[0].start;  // = the first temporal id
  // The frame at 1 s and the sound token at 1 s share a temporal id.
  EXPECT_EQ(at(s, base + 2)[0], base + 25);
  EXPECT_EQ(at(s, s.slices[1].start + 25)[0], base + 25);
  EXPECT_EQ(at(s, s.slices[2].start)[0], base + 50);
  EXPECT_EQ(at(s, s.slices[2].start + 1),
            (std::array<int32_t, 3>{int32_t(base + 50), int32_t(base), int32_t(base + 1)}));
  EXPECT_EQ(s.ids[s.slices[3].start + 29 + 1], id("<|video_end|>"));
  // <|video_end|> and <|im_end|> follow the largest id, base + 79.
  EXPECT_EQ(s.next_position, base + 79 + 3);
}

TEST(ChatTemplate, ShapesMustMatchTheMedia) {
  const ChatTemplate chat(tokenizer());
  const Conversation c = parse(R"({"messages":[{"role":"user","content":[
      {"type":"image","path":"i.png"}]}]})");
  EXPECT_THROW(chat.layout(c, {}), Error);
  EXPECT_THROW(
      chat.layout(c, {MediaShape{.kind = PartKind::audio, .audio_tokens = 3, .slice_times = {}}}),
      Error);
}

}  // namespace
}  // namespace nuri::test
