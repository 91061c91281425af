// The omni model: config, splicing encoder outputs into the sequence, the loss on assistant text
// over padded batches, gradients into every module, freezing, checkpoints and greedy replies.
#include "fusion/omni_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "kernels/autograd.h"
#include "kernels/device.h"
#include "kernels/error.h"
#include "kernels/ops/linear.h"
#include "kernels/ops/random.h"
#include "kernels/ops/shape.h"
#include "tests/common/adamw_losses.h"
#include "tests/common/temp_dir.h"
#include "tests/fusion/fusion_test_util.h"

namespace nuri::test {
namespace {

OmniConfig tiny_config() {
  OmniConfig c;
  c.decoder.vocab_size = tokenizer().vocab_size();
  c.decoder.hidden_size = 32;
  c.decoder.intermediate_size = 64;
  c.decoder.num_hidden_layers = 2;
  c.decoder.num_attention_heads = 4;
  c.decoder.num_key_value_heads = 2;
  c.decoder.mrope_section = {2, 1, 1};
  c.decoder.initializer_range = 0.2f;
  AudioEncoderConfig audio;
  audio.n_mels = 8;
  audio.hidden_size = 16;
  audio.num_layers = 1;
  audio.num_heads = 2;
  audio.intermediate_size = 32;
  audio.chunk_seconds = 0.4;
  audio.output_size = 32;
  audio.initializer_range = 0.2f;
  c.audio = audio;
  VisionEncoderConfig vision;
  vision.patch_size = 4;
  vision.hidden_size = 16;
  vision.num_layers = 1;
  vision.num_heads = 2;
  vision.intermediate_size = 32;
  vision.output_size = 32;
  vision.min_pixels = 16 * 16;
  vision.initializer_range = 0.2f;
  c.vision = vision;
  return c;
}

OmniModel initialised(const OmniConfig& config, uint64_t seed) {
  OmniModel model(config);
  Generator gen{seed, 0};
  model.init(gen);
  return model;
}

Tensor random_tensor(const Shape& shape, uint64_t seed) {
  Tensor x = Tensor::empty(shape);
  Generator gen{seed, 0};
  normal_(x, gen);
  return x;
}

Conversation parse(const std::string& text) {
  return conversation_from_json(nlohmann::json::parse(text), "/d", "test");
}

// A conversation with audio, an image and a video, and its inputs.
struct Example {
  Conversation conversation;
  std::vector<MediaInput> inputs;
};

MediaInput media_input(PartKind kind, const Tensor& mel, const Tensor& pixels,
                       std::vector<double> frame_times = {}) {
  MediaInput input;
  input.kind = kind;
  input.mel = mel;
  input.pixels = pixels;
  input.frame_times = std::move(frame_times);
  return input;
}

Example rich_example(uint64_t seed) {
  Example e{parse(R"({"messages":[{"role":"user","content":[
      {"type":"input_audio","path":"a.wav"},{"type":"image","path":"b.png"},
      {"type":"video","path":"c.mp4"},{"type":"text","text":"무엇이 보이나요?"}]},
      {"role":"assistant","content":"빨간 원"}]})"),
            {}};
  e.inputs.push_back(media_input(PartKind::audio, random_tensor({8, 90}, seed), Tensor()));
  e.inputs.push_back(media_input(PartKind::image, Tensor(), random_tensor({3, 16, 24}, seed + 1)));
  e.inputs.push_back(media_input(PartKind::video, random_tensor({8, 150}, seed + 2),
                                 random_tensor({3, 3, 8, 8}, seed + 3), {0.0, 0.5, 1.0}));
  return e;
}

Example text_example(const std::string& user, const std::string& reply) {
  return {parse(nlohmann::json({{"messages",
                                 {{{"role", "user"}, {"content", user}},
                                  {{"role", "assistant"}, {"content", reply}}}}})
                    .dump()),
          {}};
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  EXPECT_EQ(x.size(), y.size());
  double d = 0;
  for (size_t i = 0; i < x.size(); ++i) d = std::max(d, std::abs(double(x[i]) - y[i]));
  return d;
}

TEST(OmniConfig, RoundTripsAsHuggingFaceStyleJson) {
  const OmniConfig c = tiny_config();
  const nlohmann::json json = c.to_json();
  EXPECT_EQ(json["hidden_size"], 32);
  EXPECT_EQ(json["audio_config"]["n_mels"], 8);
  EXPECT_EQ(json["vision_config"]["patch_size"], 4);
  EXPECT_EQ(OmniConfig::from_json(json).to_json(), json);
}

TEST(OmniConfig, ErrorsNameTheSection) {
  nlohmann::json json = tiny_config().to_json();
  json["vision_config"]["output_size"] = 16;
  try {
    OmniConfig::from_json(json);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vision_config.output_size 16"), std::string::npos);
  }
  json = tiny_config().to_json();
  json["audio_config"]["n_mel"] = 8;
  try {
    OmniConfig::from_json(json);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("audio_config"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("n_mel"), std::string::npos) << e.what();
  }
  json = tiny_config().to_json();
  json.erase("rope_scaling");
  EXPECT_THROW(OmniConfig::from_json(json), Error);
}

TEST(OmniModel, EmbedSplicesEncoderOutputsIntoTheSequence) {
  const OmniModel model = initialised(tiny_config(), 1);
  const ChatTemplate chat(tokenizer());
  const Example e = rich_example(5);
  const SequenceLayout layout = chat.layout(e.conversation, model.shapes_of(e.inputs));
  NoGradScope no_grad;
  const Tensor embedded = reshape(model.embed(layout, e.inputs), {layout.size(), 32});
  const Tensor tokens =
      reshape(model.decoder().embed(Tensor::from_data<int32_t>(layout.ids, {1, layout.size()})),
              {layout.size(), 32});
  AudioEncoder audio(*model.config().audio);
  VisionEncoder vision(*model.config().vision);
  // The model's encoders are its own; read their outputs through parameters copied by name.
  for (NamedParameter& p : audio.parameters())
    for (const NamedParameter& q : model.parameters())
      if (q.name == p.name) p.tensor.copy_from(q.tensor);
  for (NamedParameter& p : vision.parameters())
    for (const NamedParameter& q : model.parameters())
      if (q.name == p.name) p.tensor.copy_from(q.tensor);
  const Tensor sound = reshape(audio.encode(e.inputs[0].mel), {-1, 32});
  const Tensor picture = vision.encode_image(e.inputs[1].pixels);
  const Tensor frames = vision.encode_video(e.inputs[2].pixels);
  const Tensor soundtrack = reshape(audio.encode(e.inputs[2].mel), {-1, 32});
  int64_t media_rows = 0;
  for (const MediaSlice& s : layout.slices) {
    const Tensor& source = s.media == 0   ? sound
                           : s.media == 1 ? picture
                           : s.audio      ? soundtrack
                                          : frames;
    EXPECT_EQ(max_abs_diff(slice(embedded, 0, s.start, s.start + s.count),
                           slice(source, 0, s.first, s.first + s.count)),
              0.0);
    media_rows += s.count;
  }
  EXPECT_EQ(media_rows, sound.size(0) + picture.size(0) + frames.size(0) + soundtrack.size(0));
  // Every other row is the token's embedding.
  std::vector<bool> is_media(layout.size(), false);
  for (const MediaSlice& s : layout.slices)
    for (int64_t i = s.start; i < s.start + s.count; ++i) is_media[i] = true;
  for (int64_t i = 0; i < layout.size(); ++i) {
    if (!is_media[i]) {
      EXPECT_EQ(max_abs_diff(slice(embedded, 0, i, i + 1), slice(tokens, 0, i, i + 1)), 0.0) << i;
    }
  }
}

TEST(OmniModel, PaddedBatchLossEqualsTheTokenWeightedMeanOfSingles) {
  const OmniModel model = initialised(tiny_config(), 2);
  const ChatTemplate chat(tokenizer());
  const Example a = rich_example(7);
  const Example b = text_example("짧은 질문", "긴 대답입니다 정말로");
  const SequenceLayout la = chat.layout(a.conversation, model.shapes_of(a.inputs));
  const SequenceLayout lb = chat.layout(b.conversation, {});
  auto targets = [](const SequenceLayout& s) {
    return std::count_if(s.targets.begin(), s.targets.end(), [](int32_t t) { return t >= 0; });
  };
  NoGradScope no_grad;
  const double loss_a = model.loss({&la}, {&a.inputs}).item();
  const double loss_b = model.loss({&lb}, {&b.inputs}).item();
  const double loss_ab = model.loss({&la, &lb}, {&a.inputs, &b.inputs}).item();
  const double na = targets(la), nb = targets(lb);
  EXPECT_GT(na, 0);
  EXPECT_NEAR(loss_ab, (loss_a * na + loss_b * nb) / (na + nb), 1e-5);
  // A random model scores about log(V) per token.
  EXPECT_NEAR(loss_a, std::log(static_cast<double>(tokenizer().vocab_size())), 2.0);
}

TEST(OmniModel, CtcAddsTheWeightedSumOverTranscribedAudioPerSequence) {
  OmniConfig config = tiny_config();
  config.audio->ctc_weight = 0.5;
  OmniModel model = initialised(config, 4);
  const ChatTemplate chat(tokenizer());
  const Example plain = rich_example(11);
  const SequenceLayout layout = chat.layout(plain.conversation, model.shapes_of(plain.inputs));
  const auto ids = [](const std::string& text) {
    const std::vector<int32_t> v = tokenizer().encode(text);
    return Tensor::from_data<int32_t>(v, {static_cast<int64_t>(v.size())});
  };
  // Transcripts on the audio (item 0), on the video's soundtrack (item 2), or on both.
  auto with = [&](bool audio, bool video) {
    Example e = plain;
    if (audio) e.inputs[0].transcript = ids("빨간 원");
    if (video) e.inputs[2].transcript = ids("");  // a soundtrack that says nothing
    return e;
  };
  NoGradScope no_grad;
  auto loss = [&](const Example& e) { return model.loss({&layout}, {&e.inputs}).item(); };
  const double decoder = model.decoder_loss({&layout}, {&plain.inputs}).item();
  EXPECT_NEAR(loss(plain), decoder, 1e-6);
  const double audio_ctc = (loss(with(true, false)) - decoder) / 0.5;
  const double video_ctc = (loss(with(false, true)) - decoder) / 0.5;
  EXPECT_GT(audio_ctc, 0.1);
  EXPECT_GT(video_ctc, 0.01);
  // Both items' terms add up: the CTC part is per sequence of the batch (one here).
  EXPECT_NEAR(loss(with(true, true)), decoder + 0.5 * (audio_ctc + video_ctc), 1e-5);
  // In a batch of two sequences, the same item weighs half as much.
  const Example text = text_example("짧은 질문", "대답");
  const SequenceLayout text_layout = chat.layout(text.conversation, {});
  const Example audio = with(true, false);
  const OmniModel::Losses pair =
      model.losses({&layout, &text_layout}, {&audio.inputs, &text.inputs});
  ASSERT_TRUE(pair.ctc.defined());
  EXPECT_NEAR(pair.ctc.item(), 0.5 * audio_ctc / 2, 1e-5);
  // The decoder's loss ignores transcripts.
  const Example both = with(true, true);
  EXPECT_NEAR(model.decoder_loss({&layout}, {&both.inputs}).item(), decoder, 1e-6);
  // A label outside the vocabulary is named.
  Example bad = plain;
  bad.inputs[0].transcript = Tensor::from_data<int32_t>(
      std::vector<int32_t>{static_cast<int32_t>(config.decoder.vocab_size)}, {1});
  try {
    loss(bad);
    ADD_FAILURE() << "a label past the vocabulary was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("or is the blank"), std::string::npos) << e.what();
  }
  // Without audio.ctc_weight there is no head, and transcripts change nothing.
  const OmniModel no_head = initialised(tiny_config(), 4);
  for (const NamedParameter& p : no_head.parameters())
    EXPECT_EQ(p.name.find("ctc_head"), std::string::npos) << p.name;
  EXPECT_NEAR(no_head.loss({&layout}, {&both.inputs}).item(),
              no_head.loss({&layout}, {&plain.inputs}).item(), 1e-6);
}

TEST(OmniModel, GradientsReachEveryModuleAndFrozenOnesAreSkipped) {
  OmniModel model = initialised(tiny_config(), 3);
  const ChatTemplate chat(tokenizer());
  const Example e = rich_example(9);
  const SequenceLayout layout = chat.layout(e.conversation, model.shapes_of(e.inputs));
  auto backward = [&] {
    for (NamedParameter& p : model.parameters()) p.tensor.clear_grad();
    Tape tape;
    Tensor loss;
    {
      TapeScope scope(tape);
      loss = model.loss({&layout}, {&e.inputs});
    }
    tape.backward(loss);
  };
  backward();
  std::set<std::string> reached;
  for (const NamedParameter& p : model.parameters()) {
    const Tensor g = p.tensor.grad();
    if (!g.defined()) continue;
    double norm = 0;
    for (float v : g.to_vector()) norm += double(v) * v;
    EXPECT_TRUE(std::isfinite(norm)) << p.name;
    if (norm > 0) reached.insert(OmniModel::module_of(p.name));
  }
  EXPECT_EQ(reached, (std::set<std::string>{"decoder", "audio_encoder", "audio_projector",
                                            "vision_encoder", "vision_projector"}));
  const size_t all = model.parameters().size();
  model.freeze("audio_encoder");
  model.freeze("vision_encoder");
  const std::vector<NamedParameter> trainable = model.trainable_parameters();
  EXPECT_LT(trainable.size(), all);
  for (const NamedParameter& p : trainable) {
    EXPECT_NE(OmniModel::module_of(p.name), "audio_encoder");
    EXPECT_NE(OmniModel::module_of(p.name), "vision_encoder");
  }
  backward();
  for (const NamedParameter& p : model.parameters()) {
    const std::string module = OmniModel::module_of(p.name);
    const bool frozen = module == "audio_encoder" || module == "vision_encoder";
    EXPECT_EQ(p.tensor.grad().defined(), !frozen) << p.name;
  }
  model.freeze("audio_encoder", false);
  size_t vision_encoder = 0;
  for (const NamedParameter& p : model.parameters())
    vision_encoder += OmniModel::module_of(p.name) == "vision_encoder";
  EXPECT_EQ(model.trainable_parameters().size(), all - vision_encoder);
  EXPECT_THROW(model.freeze("speech_head"), Error);
}

// The whole omni model on cuda:0 (audio, image and video encoders, CTC, decoder) gives the CPU's
// loss and gradients, from the same weights and inputs left on the CPU; a moved frozen module
// stays frozen. The two sum in different orders: losses within 1e-5 relative, every gradient
// within 1e-3 of its largest element. Skips visibly without a GPU.
TEST(CudaOmniModel, LossAndGradientsMatchTheCpu) {
  if (!cuda_compiled()) GTEST_SKIP() << "built without CUDA: the omni model on a GPU not checked";
  if (cuda_device_count() == 0)
    GTEST_SKIP() << "no CUDA device: the omni model on a GPU not checked";
  OmniModel cpu = initialised(tiny_config(), 3);
  OmniModel gpu = initialised(tiny_config(), 3);
  gpu.freeze("vision_encoder");
  gpu.to(Device::cuda(0));
  for (const NamedParameter& p : gpu.parameters()) {
    if (OmniModel::module_of(p.name) == "vision_encoder") {
      EXPECT_FALSE(p.tensor.requires_grad()) << p.name << " was unfrozen by the move";
    }
  }
  gpu.freeze("vision_encoder", false);
  const ChatTemplate chat(tokenizer());
  const Example e = rich_example(9);
  const SequenceLayout layout = chat.layout(e.conversation, cpu.shapes_of(e.inputs));
  const auto loss_of = [&](OmniModel& model) {
    Tape tape;
    Tensor loss;
    {
      TapeScope scope(tape);
      loss = model.loss({&layout}, {&e.inputs});
    }
    tape.backward(loss);
    return static_cast<double>(loss.item());
  };
  const double expected = loss_of(cpu), got = loss_of(gpu);
  EXPECT_NEAR(got, expected, 1e-5 * std::abs(expected));
  const std::vector<NamedParameter> a = cpu.parameters(), b = gpu.parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(b[i].tensor.device().is_cuda()) << b[i].name;
    ASSERT_EQ(a[i].tensor.grad().defined(), b[i].tensor.grad().defined()) << a[i].name;
    if (!a[i].tensor.grad().defined()) continue;
    double largest = 0;
    for (float v : a[i].tensor.grad().to_vector()) largest = std::max(largest, double(std::abs(v)));
    EXPECT_LE(max_abs_diff(b[i].tensor.grad(), a[i].tensor.grad()), 1e-3 * largest + 1e-7)
        << a[i].name;
  }
}

// A conversation with an image, audio and video whose answer is left out, laid out as a prompt.
struct ReplyPrompt {
  Example example;
  SequenceLayout layout;
};
ReplyPrompt reply_prompt(const OmniModel& model) {
  const ChatTemplate chat(tokenizer());
  Example e = rich_example(11);
  e.conversation.messages.pop_back();
  const SequenceLayout layout = chat.layout(e.conversation, model.shapes_of(e.inputs), true);
  return {std::move(e), layout};
}

// Greedy replies with the model and its KV cache on cuda:0 are the CPU's. Skips visibly without a
// GPU.
TEST(CudaOmniModel, GreedyReplyMatchesTheCpu) {
  if (!cuda_compiled()) GTEST_SKIP() << "built without CUDA: replies on a GPU not checked";
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: replies on a GPU not checked";
  const OmniModel cpu = initialised(tiny_config(), 6);
  OmniModel gpu = initialised(tiny_config(), 6);
  gpu.to(Device::cuda(0));
  const ReplyPrompt p = reply_prompt(cpu);
  const std::vector<int32_t> expected = cpu.reply(p.layout, p.example.inputs, 8, -1);
  ASSERT_EQ(expected.size(), 8u);
  EXPECT_EQ(gpu.reply(p.layout, p.example.inputs, 8, -1), expected);
}

// The losses of 20 AdamW steps of the tiny omni model on `device` with `precision` GEMMs (as
// train.precision runs a job), over a batch of two conversations with audio, an image and video.
std::vector<double> omni_training_losses(const Device& device, GemmPrecision precision) {
  const GemmPrecisionScope gemms(precision);
  OmniModel model = initialised(tiny_config(), 5);
  model.to(device);
  const ChatTemplate chat(tokenizer());
  const std::vector<Example> batch = {rich_example(21), rich_example(31)};
  std::vector<SequenceLayout> layouts;
  for (const Example& e : batch)
    layouts.push_back(chat.layout(e.conversation, model.shapes_of(e.inputs)));
  const std::vector<const SequenceLayout*> layout_of = {&layouts[0], &layouts[1]};
  const std::vector<const std::vector<MediaInput>*> inputs_of = {&batch[0].inputs,
                                                                 &batch[1].inputs};
  return adamw_losses(model.parameters(), 20, {.lr = 3e-3f, .weight_decay = 0.01f},
                      [&] { return model.loss(layout_of, inputs_of); });
}

// 20 training steps of the whole omni model on cuda:0 follow the CPU's loss curve, in fp32 and
// with bf16 GEMMs: the first step within 1e-4 relative (1e-3 in bf16, whose tensor-core attention
// rounds its probabilities to bf16), every later one within 1%, as the text model's do. Skips
// visibly without a GPU.
TEST(CudaOmniModel, TrainingFollowsTheCpuLossCurve) {
  if (!cuda_compiled()) GTEST_SKIP() << "built without CUDA: omni training on a GPU not checked";
  if (cuda_device_count() == 0)
    GTEST_SKIP() << "no CUDA device: omni training on a GPU not checked";
  for (const GemmPrecision precision : {GemmPrecision::f32, GemmPrecision::bf16}) {
    const char* name = precision == GemmPrecision::f32 ? "fp32" : "bf16";
    const std::vector<double> cpu = omni_training_losses(Device::cpu(), precision);
    const std::vector<double> gpu = omni_training_losses(Device::cuda(0), precision);
    ASSERT_EQ(gpu.size(), cpu.size());
    EXPECT_LT(cpu.back(), cpu.front() * 0.8) << name << ": the CPU reference does not learn";
    for (size_t i = 0; i < cpu.size(); ++i) {
      const double first = precision == GemmPrecision::f32 ? 1e-4 : 1e-3;
      EXPECT_NEAR(gpu[i], cpu[i], (i == 0 ? first : 1e-2) * std::abs(cpu[i]))
          << name << " step " << i + 1;
    }
  }
}

// The CPU reference that the GPU test above follows learns: its loss falls over the 20 steps in
// both precisions, and bf16 GEMMs stay near fp32.
TEST(OmniModel, TwentyTrainingStepsLowerTheLoss) {
  const std::vector<double> f32 = omni_training_losses(Device::cpu(), GemmPrecision::f32);
  const std::vector<double> bf16 = omni_training_losses(Device::cpu(), GemmPrecision::bf16);
  ASSERT_EQ(f32.size(), 20u);
  EXPECT_LT(f32.back(), f32.front() * 0.8);
  EXPECT_LT(bf16.back(), bf16.front() * 0.8);
  EXPECT_NEAR(bf16.front(), f32.front(), 1e-2 * f32.front());
}

TEST(OmniModel, CheckpointRoundTripsEveryModule) {
  const OmniModel model = initialised(tiny_config(), 4);
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  model.save(path);
  const SafetensorsFile file = SafetensorsFile::open(path);
  for (const char* name : {"model.embed_tokens.weight", "model.layers.1.self_attn.q_proj.weight",
                           "audio_encoder.conv1.weight", "audio_projector.fc2.bias",
                           "vision_encoder.patch_embed.weight", "vision_projector.fc1.weight"})
    EXPECT_TRUE(file.contains(name)) << name;
  OmniModel loaded = initialised(tiny_config(), 99);
  loaded.load(path);
  const std::vector<NamedParameter> a = model.parameters(), b = loaded.parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(max_abs_diff(a[i].tensor, b[i].tensor), 0.0);
  // A decoder-only checkpoint lacks the encoders: the error names a missing tensor.
  model.decoder().save(path);
  try {
    loaded.load(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing tensor 'audio_encoder."), std::string::npos)
        << e.what();
  }
}

TEST(OmniModel, GreedyReplyMatchesFullForwardArgmax) {
  const OmniModel model = initialised(tiny_config(), 6);
  const ReplyPrompt p = reply_prompt(model);
  const Example& e = p.example;
  const SequenceLayout& prompt = p.layout;
  const std::vector<int32_t> reply = model.reply(prompt, e.inputs, 5, -1);
  ASSERT_EQ(reply.size(), 5u);
  // Re-run without a cache, one token longer each time, and take the last row's argmax.
  NoGradScope no_grad;
  SequenceLayout grown = prompt;
  for (int32_t expected : reply) {
    const int64_t n = grown.size();
    const Tensor hidden = model.decoder().forward_hidden(
        model.embed(grown, e.inputs), Tensor::from_data<int32_t>(grown.positions, {3, n}));
    const std::vector<float> logits =
        model.decoder().logits(slice(hidden, 1, n - 1, n)).to_vector();
    EXPECT_EQ(std::max_element(logits.begin(), logits.end()) - logits.begin(), expected);
    // Append the token at the next text position in all three streams.
    std::vector<int32_t> positions;
    for (int s = 0; s < 3; ++s) {
      positions.insert(positions.end(), grown.positions.begin() + s * n,
                       grown.positions.begin() + (s + 1) * n);
      positions.push_back(grown.next_position);
    }
    grown.positions = positions;
    grown.ids.push_back(expected);
    grown.targets.push_back(-100);
    ++grown.next_position;
  }
}

}  // namespace
}  // namespace nuri::test

namespace nuri::test {
namespace {

// The gradient that reaches the encoders through the spliced sequence is the true one: the
// largest-gradient elements of each projector, encoder and decoder matrix against central
// finite differences of the batch loss.
TEST(OmniModel, SplicedGradientsMatchFiniteDifferences) {
  OmniModel model = initialised(tiny_config(), 8);
  const ChatTemplate chat(tokenizer());
  const Example a = rich_example(21);
  const Example b = text_example("질문", "대답");
  const SequenceLayout la = chat.layout(a.conversation, model.shapes_of(a.inputs));
  const SequenceLayout lb = chat.layout(b.conversation, {});
  auto loss = [&] { return model.loss({&la, &lb}, {&a.inputs, &b.inputs}); };
  {
    Tape tape;
    Tensor l;
    {
      TapeScope scope(tape);
      l = loss();
    }
    tape.backward(l);
  }
  for (const char* name : {"vision_projector.fc2.weight", "vision_encoder.patch_embed.weight",
                           "audio_projector.fc1.weight", "audio_encoder.conv1.weight",
                           "model.layers.0.self_attn.q_proj.weight"}) {
    Tensor param;
    for (const NamedParameter& p : model.parameters())
      if (p.name == name) param = p.tensor;
    ASSERT_TRUE(param.defined()) << name;
    const std::vector<float> grad = param.grad().to_vector();
    const size_t at = std::max_element(grad.begin(), grad.end(),
                                       [](float x, float y) { return std::abs(x) < std::abs(y); }) -
                      grad.begin();
    NoGradScope no_grad;
    float* value = param.data<float>() + at;
    const float saved = *value, step = 1e-2f;
    *value = saved + step;
    const double up = loss().item();
    *value = saved - step;
    const double down = loss().item();
    *value = saved;
    const double numeric = (up - down) / (2 * step);
    EXPECT_NEAR(grad[at], numeric, 0.05 * std::abs(numeric) + 1e-4) << name;
  }
}

}  // namespace
}  // namespace nuri::test
