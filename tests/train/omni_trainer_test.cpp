// Training the omni model from a config: the config's omni sections, packing a manifest of real
// media files (with a bad one skipped and counted), a short run whose loss falls, bit-exact resume,
// and nuri eval's scoring helpers.
#include "train/omni_trainer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "kernels/autograd.h"
#include "kernels/error.h"
#include "kernels/file_io.h"
#include "kernels/ops/shape.h"
#include "tests/train/train_test_util.h"
#include "train/evaluation.h"
#include "train/files.h"
#include "train/omni_data.h"

namespace nuri::test {
namespace {

namespace fs = std::filesystem;

std::string media(const std::string& name) {
  return std::string(NURI_SOURCE_DIR) + "/tests/data/media/" + name;
}

// These tests read real media files: a build without media decoding skips them, saying so.
#ifdef NURI_WITH_MEDIA
#define REQUIRE_MEDIA()
#else
#define REQUIRE_MEDIA() GTEST_SKIP() << "built without media decoding (NURI_MEDIA=OFF)"
#endif

std::string error_of(const std::function<void()>& run) {
  try {
    run();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// A manifest of audio, image and video questions over the committed media fixtures.
std::string write_manifest(const std::string& dir, bool with_bad_file) {
  std::string lines;
  auto add = [&](const std::string& part, const std::string& question, const std::string& answer,
                 const std::string& task) {
    lines +=
        nlohmann::json(
            {{"messages",
              {{{"role", "user"},
                {"content", {nlohmann::json::parse(part), {{"type", "text"}, {"text", question}}}}},
               {{"role", "assistant"}, {"content", answer}}}},
             {"task", task},
             {"answer", answer}})
            .dump() +
        "\n";
  };
  // Transcripts: a tone says nothing; the second clip is labelled as if it said "a beep".
  add(R"({"type":"input_audio","path":")" + media("tone.flac") + R"(","transcript":""})",
      "무슨 소리?", "삐 소리", "audio_kind");
  add(R"({"type":"input_audio","path":")" + media("tone.mp3") + R"(","transcript":"a beep"})",
      "what sound?", "a beep", "audio_kind");
  add(R"({"type":"image","path":")" + media("pattern.png") + R"("})", "무슨 색?", "네 가지 색",
      "image_color");
  add(R"({"type":"image","path":")" + media("pattern_exif6.jpg") + R"("})", "what is it?",
      "a pattern", "image_shape");
  add(R"({"type":"video","path":")" + media("bar_tone.mp4") + R"("})", "어느 쪽으로?", "오른쪽",
      "video_direction");
  if (with_bad_file) {
    write_file_atomic(dir + "/broken.wav", "RIFF\x10\0\0\0WAVEfmt garbage");
    add(R"({"type":"input_audio","path":"broken.wav"})", "what?", "nothing", "audio_kind");
  }
  const std::string path = dir + "/train.jsonl";
  write_file_atomic(path, lines);
  return path;
}

nlohmann::json omni_config_json(const std::string& dir, const std::string& manifest, int steps) {
  nlohmann::json c = tiny_config(dir, steps);
  c["model"]["type"] = "omni";
  c["model"]["num_attention_heads"] = 2;
  c["model"]["mrope_section"] = {4, 2, 2};
  c["model"]["max_position_embeddings"] = 512;
  c["model"]["audio"] = {{"enabled", true}, {"hidden_size", 16},       {"num_layers", 1},
                         {"num_heads", 2},  {"intermediate_size", 32}, {"ctc_weight", 0.3}};
  c["model"]["vision"] = {{"enabled", true},       {"patch_size", 8},
                          {"hidden_size", 16},     {"num_layers", 1},
                          {"num_heads", 2},        {"intermediate_size", 32},
                          {"min_pixels", 16 * 16}, {"max_pixels", 32 * 32}};
  c["data"] = {{"train_manifest", manifest}, {"valid_manifest", manifest}};
  c["tokenizer"]["vocab_size"] = 300;
  c["train"]["batch_size"] = 2;
  c["eval"] = {{"every", 0}, {"batches", 0}};
  return c;
}

TEST(OmniTrainConfig, VisionStemChannelsAreAListOfIntegers) {
  const nlohmann::json json = omni_config_json(fresh_dir("omni-stem"), "m.jsonl", 3);
  const TrainConfig defaults = parse_train_config(json, {}, "test");
  EXPECT_TRUE(defaults.vision->stem_channels.empty());
  EXPECT_EQ(defaults.json["model"]["vision"]["stem_channels"], nlohmann::json::array());
  EXPECT_EQ(
      parse_train_config(json, {"model.vision.stem_channels=[8,16]"}, "test").vision->stem_channels,
      (std::vector<int64_t>{8, 16}));
  EXPECT_NE(error_of([&] {
              parse_train_config(json, {"model.vision.stem_channels=[\"wide\"]"}, "test");
            }).find("'model.vision.stem_channels' must be a list"),
            std::string::npos);
}

TEST(OmniTrainConfig, SectionsParseAndErrorsNameTheKey) {
  const std::string dir = fresh_dir("omni-config");
  const nlohmann::json json = omni_config_json(dir, "m.jsonl", 3);
  const TrainConfig c = parse_train_config(json, {}, "test");
  EXPECT_TRUE(c.omni);
  ASSERT_TRUE(c.audio && c.vision);
  EXPECT_EQ(c.audio->output_size, 32);
  EXPECT_EQ(c.vision->patch_size, 8);
  EXPECT_EQ(c.model.mrope_section, (std::array<int64_t, 3>{4, 2, 2}));
  EXPECT_NE(error_of([&] {
              parse_train_config(json, {"model.audio.n_mel=8"}, "test");
            }).find("unknown key 'model.audio.n_mel'"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              parse_train_config(json, {"model.type=text"}, "test");
            }).find("enabled is true but model.type is \"text\""),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              parse_train_config(json, {"model.mrope_section=[1,1,1]"}, "test");
            }).find("mrope_section"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              parse_train_config(json, {"model.mrope_section=[4,\"x\",2]"}, "test");
            }).find("must be a list"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              parse_train_config(json, {"data.train_manifest="}, "test");
            }).find("data.train_manifest"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              parse_train_config(json, {"model.vision.num_heads=3"}, "test");
            }).find("vision"),
            std::string::npos);
  EXPECT_EQ(parse_train_config(json, {"data.task_weights={\"transcribe\":2.5}"}, "test")
                .data.task_weights,
            (std::map<std::string, double>{{"transcribe", 2.5}}));
  EXPECT_EQ(parse_train_config(json, {"data.task_weights={\"transcribe\":0}"}, "test")
                .data.task_weights.at("transcribe"),
            0.0);
  EXPECT_NE(
      error_of([&] { parse_train_config(json, {"data.task_weights={\"transcribe\":-1}"}, "test"); })
          .find("'data.task_weights.transcribe' must be zero (the task is left out) or "
                "positive, got -1"),
      std::string::npos);
  EXPECT_NE(error_of([&] {
              parse_train_config(json, {"data.task_weights={\"transcribe\":\"a lot\"}"}, "test");
            }).find("'data.task_weights.transcribe' must be a number"),
            std::string::npos);
}

TEST(OmniPack, SkipsAndCountsBadSamplesUpToTheLimit) {
  REQUIRE_MEDIA();
  const std::string dir = fresh_dir("omni-pack");
  const std::string manifest = write_manifest(dir, true);
  const TrainConfig config = parse_train_config(omni_config_json(dir, manifest, 3), {}, "test");
  const Tokenizer tokenizer =
      Tokenizer::load(std::string(NURI_SOURCE_DIR) + "/tests/data/tokenizer/tokenizer.json");
  const OmniModel model(omni_config(config, tokenizer));
  const ChatTemplate chat(tokenizer);
  PackOptions options;
  options.manifest = manifest;
  options.out_dir = dir + "/pack";
  options.progress = false;
  const std::string error = error_of([&] { pack_manifest(options, model, chat); });
  EXPECT_NE(error.find("exceed the limit of 0"), std::string::npos) << error;
  EXPECT_NE(error.find("broken.wav"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(dir + "/pack/index.json"));
  options.max_bad_samples = 1;
  const PackSummary summary = pack_manifest(options, model, chat);
  EXPECT_EQ(summary.samples, 5);
  EXPECT_EQ(summary.skipped, 1);
  const std::string fingerprint = fnv1a_hex(tokenizer.to_json());
  const PackedDataset packed(dir + "/pack", model.config(), fingerprint);
  ASSERT_EQ(packed.size(), 5);
  EXPECT_EQ(packed.skipped(), 1);
  // A packed sample is the same sequence and inputs as decoding the manifest line afresh.
  const OmniSample video = packed.sample(4);
  EXPECT_EQ(video.task, "video_direction");
  const std::vector<ManifestEntry> entries = load_manifest(manifest);
  const std::vector<MediaInput> fresh = decode_media(entries[4].conversation, model.config(), {});
  const SequenceLayout layout = chat.layout(entries[4].conversation, model.shapes_of(fresh));
  EXPECT_EQ(video.layout.ids, layout.ids);
  EXPECT_EQ(video.layout.positions, layout.positions);
  EXPECT_EQ(video.media[0].pixels.to_vector(), fresh[0].pixels.to_vector());
  EXPECT_EQ(video.media[0].mel.to_vector(), fresh[0].mel.to_vector());
  EXPECT_EQ(video.media[0].frame_times.size(), fresh[0].frame_times.size());
  // The model's config says how video is sampled: at vision.video_fps, every frame within the
  // video pixel budget (here one merged patch), apart from the images' budget.
  OmniConfig sparse = model.config();
  sparse.vision->video_fps = 1;
  sparse.vision->video_min_pixels = 16 * 16;
  sparse.vision->video_max_pixels = 16 * 16;
  const MediaInput clip = decode_media(entries[4].conversation, sparse, {})[0];
  EXPECT_EQ(fresh[0].frame_times.size(), 6u);  // 3 s at the default 2 frames per second
  EXPECT_EQ(clip.frame_times, (std::vector<double>{0, 1, 2}));
  EXPECT_EQ(clip.pixels.shape(), (Shape{3, 3, 16, 16}));
  EXPECT_EQ(decode_media(entries[2].conversation, sparse, {})[0].pixels.shape(),
            decode_media(entries[2].conversation, model.config(), {})[0].pixels.shape());
  // Transcripts are packed as the tokenizer's ids; media without one have none.
  EXPECT_FALSE(video.media[0].transcript.defined());
  ASSERT_TRUE(packed.sample(0).media[0].transcript.defined());
  EXPECT_EQ(packed.sample(0).media[0].transcript.numel(), 0);
  const Tensor beep = packed.sample(1).media[0].transcript;
  ASSERT_TRUE(beep.defined());
  EXPECT_EQ(std::vector<int32_t>(beep.data<int32_t>(), beep.data<int32_t>() + beep.numel()),
            tokenizer.encode("a beep"));
  // A pack made for another encoder shape is refused with advice.
  OmniConfig other = model.config();
  other.vision->patch_size = 4;
  EXPECT_NE(error_of([&] {
              PackedDataset(dir + "/pack", other, fingerprint);
            }).find("run nuri data pack again"),
            std::string::npos);
  // So is one whose video was sampled at another rate.
  EXPECT_NE(error_of([&] {
              PackedDataset(dir + "/pack", sparse, fingerprint);
            }).find("run nuri data pack again"),
            std::string::npos);
}

TEST(OmniTrainer, LossFallsAndResumeIsBitIdentical) {
  REQUIRE_MEDIA();
  const std::string dir = fresh_dir("omni-train");
  const std::string manifest = write_manifest(dir, false);
  const nlohmann::json json = omni_config_json(dir, manifest, 8);
  const TrainSummary whole = train_omni_model(parse_train_config(json, {}, "test"));
  EXPECT_EQ(whole.step, 8);
  ASSERT_TRUE(whole.eval.contains("eval_loss_video_direction")) << whole.eval.dump();
  // The loss falls on the training conversations (held-out = training here).
  std::ifstream metrics(dir + "/run/metrics.jsonl");
  std::vector<double> losses;
  int ctc_steps = 0;  // steps whose batch held a transcribed clip: their CTC term is logged apart
  for (std::string line; std::getline(metrics, line);) {
    const auto m = nlohmann::json::parse(line);
    if (m.contains("loss")) losses.push_back(m["loss"]);
    if (m.contains("aux_loss")) ctc_steps += m["aux_loss"].get<double>() > 0;
  }
  ASSERT_EQ(losses.size(), 8u);
  EXPECT_GT(ctc_steps, 0);
  EXPECT_LT(losses.back(), losses.front() * 0.8);
  // Resuming from step 3 gives the same weights at step 8.
  nlohmann::json resumed = json;
  resumed["checkpoint"]["dir"] = dir + "/resumed";
  fs::create_directories(dir + "/resumed");
  fs::copy(dir + "/run/step-3", dir + "/resumed/step-3", fs::copy_options::recursive);
  // A checkpoint written before a model key existed (here the video ones) resumes: the key it
  // lacks takes its default.
  nlohmann::json older = nlohmann::json::parse(read_file(dir + "/resumed/step-3/config.json"));
  ASSERT_EQ(older["vision_config"].erase("video_fps"), 1u);
  write_file_atomic(dir + "/resumed/step-3/config.json", older.dump());
  const TrainSummary second =
      train_omni_model(parse_train_config(resumed, {}, "test"), {.resume = dir + "/resumed"});
  EXPECT_EQ(second.step, 8);
  EXPECT_EQ(read_file(dir + "/run/step-8/model.safetensors"),
            read_file(dir + "/resumed/step-8/model.safetensors"));
  // Freezing a module leaves its weights as they were initialised.
  nlohmann::json frozen = json;
  frozen["checkpoint"]["dir"] = dir + "/frozen";
  frozen["train"]["freeze"] = {"vision_encoder", "audio_encoder"};
  frozen["train"]["steps"] = 2;
  train_omni_model(parse_train_config(frozen, {}, "test"));
  const SafetensorsFile a = SafetensorsFile::open(dir + "/run/step-3/model.safetensors");
  const SafetensorsFile b = SafetensorsFile::open(dir + "/frozen/step-2/model.safetensors");
  const std::string name = "vision_encoder.layers.0.mlp.fc1.weight";
  OmniModel init(
      OmniConfig::from_json(nlohmann::json::parse(read_file(dir + "/run/step-3/config.json"))));
  Generator generator{7, 0};
  init.init(generator);
  for (const NamedParameter& p : init.parameters())
    if (p.name == name) {
      EXPECT_EQ(p.tensor.to_vector(), b.tensor(name).to_vector());
    }
  EXPECT_NE(a.tensor(name).to_vector(), b.tensor(name).to_vector());
  // Task weights blend the tasks; a task no sample has is an error that names it.
  nlohmann::json weighted = json;
  weighted["checkpoint"]["dir"] = dir + "/weighted";
  weighted["train"]["steps"] = 2;
  weighted["data"]["task_weights"] = {{"image_color", 4}};
  EXPECT_EQ(train_omni_model(parse_train_config(weighted, {}, "test")).step, 2);
  weighted["data"]["task_weights"] = {{"image_colour", 4}};
  weighted["checkpoint"]["dir"] = dir + "/misnamed";
  EXPECT_NE(error_of([&] {
              train_omni_model(parse_train_config(weighted, {}, "test"));
            }).find("data.task_weights names 'image_colour', which no training sample has"),
            std::string::npos);
  // A weight of 0 leaves a task out; leaving every task out is an error.
  weighted["data"]["task_weights"] = {
      {"audio_kind", 0}, {"image_shape", 0}, {"image_color", 0}, {"video_direction", 0}};
  weighted["checkpoint"]["dir"] = dir + "/nothing";
  EXPECT_NE(error_of([&] {
              train_omni_model(parse_train_config(weighted, {}, "test"));
            }).find("data.task_weights leaves out every task"),
            std::string::npos);
  weighted["data"]["task_weights"]["video_direction"] = 1;
  weighted["checkpoint"]["dir"] = dir + "/only-video";
  EXPECT_EQ(train_omni_model(parse_train_config(weighted, {}, "test")).step, 2);
  // train.init_from starts a fresh run (step 0, a new optimizer) from a checkpoint's weights: the
  // frozen encoders keep step 8's weights, and the decoder trains on from them.
  nlohmann::json staged = json;
  staged["checkpoint"]["dir"] = dir + "/staged";
  staged["train"]["steps"] = 1;
  staged["train"]["init_from"] = dir + "/run/step-8";
  staged["train"]["freeze"] = {"vision_encoder", "audio_encoder"};
  staged["model"]["vision"]["video_fps"] = 1;  // what shapes no weight may change between stages
  EXPECT_EQ(train_omni_model(parse_train_config(staged, {}, "test")).step, 1);
  const SafetensorsFile trained = SafetensorsFile::open(dir + "/run/step-8/model.safetensors");
  const SafetensorsFile next = SafetensorsFile::open(dir + "/staged/step-1/model.safetensors");
  EXPECT_EQ(next.tensor(name).to_vector(), trained.tensor(name).to_vector());
  const std::string decoder_weight = "model.norm.weight";
  EXPECT_NE(next.tensor(decoder_weight).to_vector(), trained.tensor(decoder_weight).to_vector());
  // A module new in this stage (a second vision layer) starts as initialised; a weight of another
  // shape is refused, naming it.
  staged["checkpoint"]["dir"] = dir + "/grown";
  staged["model"]["vision"]["num_layers"] = 2;
  EXPECT_EQ(train_omni_model(parse_train_config(staged, {}, "test")).step, 1);
  staged["checkpoint"]["dir"] = dir + "/mismatched";
  staged["model"]["vision"]["intermediate_size"] = 48;
  const std::string misfit =
      error_of([&] { train_omni_model(parse_train_config(staged, {}, "test")); });
  EXPECT_NE(misfit.find("model.safetensors: tensor 'vision_encoder.layers.0.mlp.fc1.weight' has "
                        "shape [32, 16], expected [48, 16]"),
            std::string::npos)
      << misfit;
  // Resuming needs the same model: a changed key is named with both values.
  nlohmann::json changed = resumed;
  changed["checkpoint"]["dir"] = dir + "/changed";
  changed["model"]["vision"]["video_fps"] = 1;
  fs::create_directories(dir + "/changed");
  fs::copy(dir + "/run/step-3", dir + "/changed/step-3", fs::copy_options::recursive);
  const std::string refused = error_of([&] {
    train_omni_model(parse_train_config(changed, {}, "test"), {.resume = dir + "/changed"});
  });
  EXPECT_NE(refused.find("the checkpoint's model config differs from this config's model section "
                         "at /vision_config/video_fps 2.0 -> 1.0"),
            std::string::npos)
      << refused;
}

TEST(OmniEval, ScoringHelpers) {
  EXPECT_EQ(normalize_answer("  Red  apple. "), "red apple");
  EXPECT_EQ(normalize_answer("빨간색!"), "빨간색");
  EXPECT_EQ(characters("빨간 a").size(), 4u);
  EXPECT_EQ(words(" 빨간  사과 ").size(), 2u);
  EXPECT_EQ(edit_distance(characters("kitten"), characters("sitting")), 3);
  EXPECT_EQ(edit_distance(characters("사과"), characters("사과")), 0);
  EXPECT_EQ(edit_distance(words("a b c"), words("a c")), 1);
  EXPECT_EQ(edit_distance(characters(""), characters("abc")), 3);
}

}  // namespace
}  // namespace nuri::test

namespace nuri::test {
namespace {

// Two different images must change the model's prediction after them: the decoded pixels reach
// the vision encoder and its tokens reach the decoder.
TEST(OmniData, DifferentImagesGiveDifferentPredictions) {
  REQUIRE_MEDIA();
  const std::string dir = fresh_dir("omni-images");
  const TrainConfig config = parse_train_config(omni_config_json(dir, "m.jsonl", 3), {}, "test");
  const Tokenizer tokenizer =
      Tokenizer::load(std::string(NURI_SOURCE_DIR) + "/tests/data/tokenizer/tokenizer.json");
  OmniModel model(omni_config(config, tokenizer));
  Generator generator{3, 0};
  model.init(generator);
  const ChatTemplate chat(tokenizer);
  std::vector<std::vector<float>> predictions;
  for (const char* image : {"pattern.png", "pattern_gray.png"}) {
    const Conversation conversation = conversation_from_json(
        nlohmann::json::parse(R"({"messages":[{"role":"user","content":[{"type":"image","path":")" +
                              media(image) + R"("},{"type":"text","text":"colour?"}]}]})"),
        "/", "test");
    const std::vector<MediaInput> inputs = decode_media(conversation, model.config(), {});
    const SequenceLayout layout = chat.layout(conversation, model.shapes_of(inputs), true);
    NoGradScope no_grad;
    const Tensor hidden = model.decoder().forward_hidden(
        model.embed(layout, inputs),
        Tensor::from_data<int32_t>(layout.positions, {3, layout.size()}));
    predictions.push_back(
        model.decoder().logits(slice(hidden, 1, layout.size() - 1, layout.size())).to_vector());
  }
  double diff = 0;
  for (size_t i = 0; i < predictions[0].size(); ++i)
    diff = std::max(diff, std::abs(double(predictions[0][i]) - predictions[1][i]));
  EXPECT_GT(diff, 1e-3);
}

}  // namespace
}  // namespace nuri::test
