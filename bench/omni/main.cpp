// nuri-bench-omni: training throughput of the omni model on the CPU. Each step is a full training
// step of fusion's OmniModel (the encoders' and the decoder's forward, one tape.backward, and
// train/optimizer.h's AdamW over the trainable parameters) on a synthetic batch shaped like the
// synthetic corpus (`nuri data synth`): sample i takes the corpus's task i mod 9, so a batch mixes
// 3 s of speech, 112x112 images, 3 s videos at the config's model.vision.video_fps (2) with their
// soundtrack, and images with a 2 s spoken question, each with a short text turn. Images and
// frames reach the vision encoder at the size training resizes them to (the config's grid). The
// model comes from a training config (configs/tiny-omni.json by default). It prints tokens/s
// (sequence tokens, as the trainer counts them), samples/s, seconds per step and the median time
// of each part of a step, and the shares of the forward time taken by the audio encoder, the
// vision encoder and the decoder.
//
// There is no PyTorch peer: no PyTorch omni model shares this architecture (the decoder alone is
// compared with PyTorch by bench/decoder_vs_torch.py).
#include <omp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench/timing.h"
#include "fusion/chat_template.h"
#include "fusion/omni_model.h"
#include "kernels/autograd.h"
#include "kernels/cpu/blas.h"
#include "kernels/error.h"
#include "kernels/file_io.h"
#include "kernels/ops/cross_entropy.h"
#include "kernels/ops/random.h"
#include "kernels/ops/shape.h"
#include "media/image.h"
#include "train/config.h"
#include "train/omni_trainer.h"
#include "train/optimizer.h"
#include "train/synth.h"

extern "C" void openblas_set_num_threads(int);

namespace nuri {
namespace {

using bench::Clock;
using bench::seconds_since;

// The four input shapes of the corpus's tasks.
enum class Kind { speech, image, video, spoken_image_question };

// The input shape of a task of train/synth.h's kSynthTasks.
Kind kind_of_task(const std::string& task) {
  if (task == "transcribe") return Kind::speech;
  if (task == "spoken_image_question") return Kind::spoken_image_question;
  if (task.rfind("video_", 0) == 0) return Kind::video;
  NURI_CHECK(task.rfind("image_", 0) == 0, "nuri-bench-omni: unknown corpus task ", task);
  return Kind::image;
}

// The media sizes of the synthetic batch.
struct MediaSizes {
  int64_t side = 112;             // the corpus's images and video frames are side x side ...
  int64_t grid_side = 112;        // ... resized to this for the vision encoder, as training does
  int64_t video_grid_side = 112;  // video frames' side, within the video pixel budget
  double speech_seconds = 3;      // transcription audio
  double question_seconds = 2;    // a spoken question about an image
  double video_seconds = 3;       // video length, and its soundtrack's
  double video_fps = 2;           // frames per second: the config's model.vision.video_fps
};

// One conversation of the batch, laid out as training lays it out.
struct Sample {
  Kind kind = Kind::speech;
  std::vector<MediaInput> media;
  SequenceLayout layout;
  int64_t text_tokens = 0;  // tokens of the text parts (without the template's tokens)
};

Tensor random_normal(const Shape& shape, Generator& gen) {
  Tensor x = Tensor::empty(shape);
  normal_(x, gen);
  return x;
}

Tensor random_uniform(const Shape& shape, Generator& gen) {
  Tensor x = Tensor::empty(shape);
  uniform_(x, gen);
  return x;
}

// Log-mel frames [n_mels, 100 per second] of noise.
MediaInput audio_input(int64_t n_mels, double seconds, Generator& gen) {
  MediaInput in;
  in.kind = PartKind::audio;
  in.mel =
      random_normal({n_mels, std::lround(seconds * AudioEncoderConfig::kFramesPerSecond)}, gen);
  return in;
}

MediaInput image_input(int64_t side, Generator& gen) {
  MediaInput in;
  in.kind = PartKind::image;
  in.pixels = random_uniform({3, side, side}, gen);
  return in;
}

// A video's frames at `fps` with its soundtrack.
MediaInput video_input(const MediaSizes& sizes, int64_t n_mels, Generator& gen) {
  MediaInput in = audio_input(n_mels, sizes.video_seconds, gen);
  in.kind = PartKind::video;
  const int64_t frames = std::lround(sizes.video_seconds * sizes.video_fps);
  in.pixels = random_uniform({frames, 3, sizes.video_grid_side, sizes.video_grid_side}, gen);
  for (int64_t f = 0; f < frames; ++f) in.frame_times.push_back(f / sizes.video_fps);
  return in;
}

ContentPart text_part(const std::string& text) {
  return {PartKind::text, text, "", std::nullopt};
}
ContentPart media_part(PartKind kind) {
  return {kind, "", "synthetic", std::nullopt};
}

// A conversation of `kind` with random media and the corpus's English prompts.
Sample make_sample(Kind kind, const MediaSizes& sizes, const OmniModel& model,
                   const ChatTemplate& chat, Generator& gen) {
  const int64_t n_mels = model.config().audio->n_mels;
  Sample s;
  s.kind = kind;
  Message user{Role::user, {}}, assistant{Role::assistant, {}};
  switch (kind) {
    case Kind::speech:
      s.media.push_back(audio_input(n_mels, sizes.speech_seconds, gen));
      user.content = {media_part(PartKind::audio), text_part("Transcribe the speech.")};
      assistant.content = {text_part("the small red ball rolls under the table")};
      break;
    case Kind::image:
      s.media.push_back(image_input(sizes.grid_side, gen));
      user.content = {media_part(PartKind::image), text_part("What colour is the shape?")};
      assistant.content = {text_part("blue")};
      break;
    case Kind::video:
      s.media.push_back(video_input(sizes, n_mels, gen));
      user.content = {media_part(PartKind::video), text_part("Which way does the shape move?")};
      assistant.content = {text_part("left")};
      break;
    case Kind::spoken_image_question:
      s.media.push_back(image_input(sizes.grid_side, gen));
      s.media.push_back(audio_input(n_mels, sizes.question_seconds, gen));
      user.content = {media_part(PartKind::image), media_part(PartKind::audio)};
      assistant.content = {text_part("three")};
      break;
  }
  Conversation conversation;
  conversation.messages = {user, assistant};
  for (const Message& m : conversation.messages)
    for (const ContentPart& part : m.content)
      if (part.kind == PartKind::text)
        s.text_tokens += static_cast<int64_t>(chat.tokenizer().encode(part.text).size());
  s.layout = chat.layout(conversation, model.shapes_of(s.media));
  return s;
}

// A training forward as OmniModel::loss computes it, in two separately timed parts: the encoders
// (embed_batch, which also looks up the token embeddings) and the decoder (forward, logits and
// cross-entropy).
struct Forward {
  Tensor loss;
  double encoders_s = 0, decoder_s = 0;
};

Forward timed_forward(const OmniModel& model, const std::vector<Sample>& batch) {
  std::vector<const SequenceLayout*> layouts;
  std::vector<const std::vector<MediaInput>*> inputs;
  for (const Sample& s : batch) {
    layouts.push_back(&s.layout);
    inputs.push_back(&s.media);
  }
  Forward f;
  const auto start = Clock::now();
  const Tensor embeddings = model.embed_batch(layouts, inputs);
  f.encoders_s = seconds_since(start);
  const auto decoder_start = Clock::now();
  f.loss = model.decoder_loss(layouts, embeddings);
  f.decoder_s = seconds_since(decoder_start);
  return f;
}

// The forward time of the batch's media through stand-alone audio and vision encoders of the
// model's configs (recorded on a tape, as in training): OmniModel runs both encoders inside
// embed(), so these times apportion the step's encoder time between the two.
struct EncoderSplit {
  double audio_s = 0, vision_s = 0;
};

EncoderSplit time_encoders(const AudioEncoder& audio, const VisionEncoder& vision,
                           const std::vector<Sample>& batch) {
  Tape tape;
  TapeScope scope(tape);
  EncoderSplit split;
  auto start = Clock::now();
  for (const Sample& s : batch)
    for (const MediaInput& m : s.media)
      if (m.mel.defined()) audio.encode(m.mel);
  split.audio_s = seconds_since(start);
  start = Clock::now();
  for (const Sample& s : batch)
    for (const MediaInput& m : s.media) {
      if (m.kind == PartKind::image) vision.encode_image(m.pixels);
      if (m.kind == PartKind::video) vision.encode_video(m.pixels);
    }
  split.vision_s = seconds_since(start);
  return split;
}

// What the command line asks for.
struct Options {
  std::string config, tokenizer, json_path;
  int64_t vocab = 0, batch = 0;
  int steps = 5, warmup = 1, threads = 0;
  MediaSizes sizes;
};

// Adds one figure to the printed table and the JSON rows.
void add_row(nlohmann::json& rows, const std::string& name, double value, const std::string& unit) {
  std::printf("  %-40s %12.3f %s\n", name.c_str(), value, unit.c_str());
  std::fflush(stdout);
  rows.push_back({{"name", name}, {"value", value}, {"unit", unit}});
}

void run(const Options& o) {
  TrainConfig config = load_train_config(o.config);
  NURI_CHECK(config.omni, o.config, ": model.type is not \"omni\"");
  NURI_CHECK(config.audio && config.vision, o.config,
             ": the benchmark's batch needs both encoders (model.audio.enabled and "
             "model.vision.enabled)");
  if (o.vocab > 0) config.model.vocab_size = o.vocab;
  if (config.model.vocab_size == 0) config.model.vocab_size = config.tokenizer.vocab_size;
  const int64_t batch_size = o.batch > 0 ? o.batch : config.train.batch_size;
  NURI_CHECK(batch_size > 0, o.config, ": train.batch_size is 0 and --batch is not given");

  const Tokenizer tokenizer = Tokenizer::load(o.tokenizer);
  const ChatTemplate chat(tokenizer);
  const OmniConfig omni = omni_config(config, tokenizer);
  OmniModel model(omni);
  Generator init{config.train.seed, 0};
  model.init(init);
  for (const std::string& module : config.train.freeze) model.freeze(module);
  std::vector<NamedParameter> parameters = model.trainable_parameters();
  NURI_CHECK(!parameters.empty(), o.config, ": train.freeze leaves nothing to train");
  AdamW optimizer(parameters, config.optim.adamw, config.optim.grad_clip);

  AudioEncoder audio(*omni.audio);
  VisionEncoder vision(*omni.vision);
  audio.init(init);
  vision.init(init);

  MediaSizes sizes = o.sizes;
  sizes.video_fps = omni.vision->video_fps;
  sizes.grid_side = omni.vision->image_grid(sizes.side, sizes.side).height;
  sizes.video_grid_side = omni.vision->video_grid(sizes.side, sizes.side).height;
  Generator data{config.train.seed + 1, 0};
  std::vector<Sample> batch;
  std::vector<int64_t> kind_counts(4, 0);
  int64_t tokens = 0, text_tokens = 0, longest = 0;
  for (int64_t i = 0; i < batch_size; ++i) {
    const Kind kind = kind_of_task(kSynthTasks[static_cast<size_t>(i) % kSynthTasks.size()]);
    batch.push_back(make_sample(kind, sizes, model, chat, data));
    ++kind_counts[static_cast<size_t>(kind)];
    tokens += batch.back().layout.size();
    text_tokens += batch.back().text_tokens;
    longest = std::max(longest, batch.back().layout.size());
  }

  int64_t trainable = 0, total = 0;
  for (const NamedParameter& p : parameters) trainable += p.tensor.numel();
  for (const NamedParameter& p : model.parameters()) total += p.tensor.numel();
  std::printf("nuri-bench-omni: %s, %d threads (machine: %u)\n", o.config.c_str(), o.threads,
              std::thread::hardware_concurrency());
  std::printf("  model: %.2fM parameters (%.2fM trainable), vocabulary %lld\n", total / 1e6,
              trainable / 1e6, static_cast<long long>(omni.decoder.vocab_size));
  std::printf(
      "  batch: %lld conversations (%lld speech, %lld image, %lld video, %lld spoken image "
      "question), %lld tokens (longest %lld, %.1f text tokens per conversation)\n",
      static_cast<long long>(batch_size), static_cast<long long>(kind_counts[0]),
      static_cast<long long>(kind_counts[1]), static_cast<long long>(kind_counts[2]),
      static_cast<long long>(kind_counts[3]), static_cast<long long>(tokens),
      static_cast<long long>(longest), static_cast<double>(text_tokens) / batch_size);
  std::printf("  %d warm-up steps, medians over %d steps\n", o.warmup, o.steps);
  std::fflush(stdout);

  std::vector<double> step_s, encoders_s, decoder_s, backward_s, optimizer_s, audio_s, vision_s;
  double first_loss = 0, last_loss = 0;
  for (int step = 0; step < o.warmup + o.steps; ++step) {
    const auto start = Clock::now();
    Tape tape;
    Forward f;
    {
      TapeScope scope(tape);
      f = timed_forward(model, batch);
    }
    const auto backward_start = Clock::now();
    tape.backward(f.loss);
    const double backward = seconds_since(backward_start);
    const auto optimizer_start = Clock::now();
    optimizer.step(config.optim.adamw.lr);
    const double optimizer_time = seconds_since(optimizer_start);
    const double total_time = seconds_since(start);
    const double loss = f.loss.item();
    const EncoderSplit split = time_encoders(audio, vision, batch);  // outside the step
    if (step == 0) first_loss = loss;
    last_loss = loss;
    if (step < o.warmup) continue;
    step_s.push_back(total_time);
    encoders_s.push_back(f.encoders_s);
    decoder_s.push_back(f.decoder_s);
    backward_s.push_back(backward);
    optimizer_s.push_back(optimizer_time);
    audio_s.push_back(split.audio_s);
    vision_s.push_back(split.vision_s);
  }

  const double step = bench::median(step_s), encoders = bench::median(encoders_s);
  const double decoder = bench::median(decoder_s), forward = encoders + decoder;
  const double audio_alone = bench::median(audio_s), vision_alone = bench::median(vision_s);
  const double audio_part = audio_alone / (audio_alone + vision_alone);
  nlohmann::json rows = nlohmann::json::array();
  add_row(rows, "throughput", tokens / step, "tokens/s");
  add_row(rows, "samples", batch_size / step, "samples/s");
  add_row(rows, "step", step, "s");
  add_row(rows, "encoders forward", encoders * 1e3, "ms");
  add_row(rows, "decoder forward", decoder * 1e3, "ms");
  add_row(rows, "backward", bench::median(backward_s) * 1e3, "ms");
  add_row(rows, "optimizer", bench::median(optimizer_s) * 1e3, "ms");
  add_row(rows, "audio encoder forward (alone)", audio_alone * 1e3, "ms");
  add_row(rows, "vision encoder forward (alone)", vision_alone * 1e3, "ms");
  add_row(rows, "forward share: audio encoder", 100 * encoders * audio_part / forward, "%");
  add_row(rows, "forward share: vision encoder", 100 * encoders * (1 - audio_part) / forward, "%");
  add_row(rows, "forward share: decoder", 100 * decoder / forward, "%");
  std::printf("  loss: %.4f at the first step, %.4f at the last (the same batch each step)\n",
              first_loss, last_loss);

  if (!o.json_path.empty()) {
    const nlohmann::json out = {{"config", o.config},
                                {"threads", o.threads},
                                {"machine_threads", std::thread::hardware_concurrency()},
                                {"steps", o.steps},
                                {"warmup", o.warmup},
                                {"batch",
                                 {{"conversations", batch_size},
                                  {"speech", kind_counts[0]},
                                  {"image", kind_counts[1]},
                                  {"video", kind_counts[2]},
                                  {"spoken_image_question", kind_counts[3]},
                                  {"tokens", tokens},
                                  {"longest", longest}}},
                                {"model", omni.to_json()},
                                {"parameters", total},
                                {"trainable_parameters", trainable},
                                {"rows", rows}};
    write_file_atomic(o.json_path, out.dump(2) + "\n");
  }
}

}  // namespace
}  // namespace nuri

int main(int argc, char** argv) {
  nuri::cpu::reexec_for_blas_core(argv);
  using namespace nuri;
  CLI::App app{"nuri omni-model training throughput (CPU)", "nuri-bench-omni"};
  Options o;
  o.config = NURI_SOURCE_DIR "/configs/tiny-omni.json";
  o.tokenizer = NURI_SOURCE_DIR "/tests/data/tokenizer/tokenizer.json";
  o.threads = omp_get_max_threads();
  app.add_option("--config", o.config, "Training config (model.type omni)")->capture_default_str();
  app.add_option("--tokenizer", o.tokenizer, "A tokenizer.json with the chat and media tokens")
      ->capture_default_str();
  app.add_option("--vocab", o.vocab,
                 "Decoder vocabulary size (default: model.vocab_size, else tokenizer.vocab_size "
                 "of the config)")
      ->check(CLI::PositiveNumber);
  app.add_option("--batch", o.batch, "Conversations per step (default: train.batch_size)")
      ->check(CLI::PositiveNumber);
  app.add_option("--steps", o.steps, "Timed steps")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--warmup", o.warmup, "Untimed steps first")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--threads", o.threads, "Threads for OpenMP and OpenBLAS")
      ->check(CLI::PositiveNumber);
  app.add_option("--json", o.json_path, "Also write the figures to this file");
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(o.threads);
  openblas_set_num_threads(o.threads);
  try {
    run(o);
  } catch (const Error& e) {
    std::fprintf(stderr, "nuri-bench-omni: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
