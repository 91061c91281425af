// `nuri data synth`: plans every sample from its own random stream, renders them on worker
// threads (speech one at a time), and writes the manifests last inside a temporary directory
// that is renamed into place.
#include "train/synth.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_set>

#include "kernels/error.h"
#include "kernels/file_io.h"
#include "media/audio.h"
#include "media/image.h"
#include "media/video.h"
#include "train/metrics.h"
#include "train/synth_parts.h"

namespace nuri {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;
using synth::Colour;
using synth::Rng;

enum Task : size_t {
  kTranscribe,
  kImageColor,
  kImageShape,
  kImageCount,
  kImageText,
  kVideoDirection,
  kVideoObject,
  kVideoSpeech,
  kSpokenImageQuestion,
};

// Purposes of the random streams (see synth::stream_id).
constexpr uint64_t kSentenceStream = 0, kSampleStream = 1, kNoiseStream = 2;

constexpr double kSpeechSnrDb = 30;

// A question in English and Korean.
const synth::Named kTranscribePrompt = {"Transcribe the speech.", "음성을 받아 적어 주세요."};
const synth::Named kColorQuestion = {"What colour is the shape?", "도형은 무슨 색인가요?"};
const synth::Named kShapeQuestion = {"What shape is this?", "이 도형은 어떤 모양인가요?"};
const synth::Named kCountQuestion = {"How many shapes are there?", "도형이 몇 개 있나요?"};
const synth::Named kTextQuestion = {"What word is written in the picture?",
                                    "그림에 어떤 단어가 쓰여 있나요?"};
const synth::Named kDirectionQuestion = {"Which way does the shape move?",
                                         "도형은 어느 쪽으로 움직이나요?"};
const synth::Named kObjectQuestion = {"Which shape moves?", "어떤 도형이 움직이나요?"};
const synth::Named kSpeechQuestion = {"What word is spoken in the video?",
                                      "영상에서 어떤 단어를 말하나요?"};

// The eight directions of motion (image rows grow downwards) and their names.
struct Direction {
  synth::Named name;
  int dx, dy;
};
const std::vector<Direction>& directions() {
  static const std::vector<Direction> table = {
      {{"up", "위"}, 0, -1},
      {{"down", "아래"}, 0, 1},
      {{"left", "왼쪽"}, -1, 0},
      {{"right", "오른쪽"}, 1, 0},
      {{"up-left", "왼쪽 위"}, -1, -1},
      {{"up-right", "오른쪽 위"}, 1, -1},
      {{"down-left", "왼쪽 아래"}, -1, 1},
      {{"down-right", "오른쪽 아래"}, 1, 1},
  };
  return table;
}

// One sample to generate: its split, task and index; transcription samples carry the sentence
// chosen (serially, so that sentences are unique across splits) before rendering.
struct Job {
  size_t split, task;
  int64_t index;
  std::string sentence, language;
};

// One drawn object.
struct Object {
  size_t shape, colour;
  double x, y, r, angle;
};

// The answer naming an object ("red circle", "빨간색 원").
std::string object_name(const Object& object, const std::string& language) {
  return synth::colours()[object.colour].name.in(language) + " " +
         synth::shapes()[object.shape].in(language);
}

// English or Korean, evenly.
std::string pick_language(Rng& rng) {
  return rng.below(2) ? "ko" : "en";
}

// A random voice, rate and pitch for `language`.
synth::Voice pick_voice(Rng& rng, const std::string& language) {
  return {rng.pick(synth::voices(language)), static_cast<int>(rng.between(130, 190)),
          static_cast<int>(rng.between(35, 65))};
}

// Speech at a random level (from `rng`) with Gaussian noise at kSpeechSnrDb (from `noise_rng`,
// whose number of draws depends on the speech's length).
std::vector<float> level_and_noise(Rng& rng, Rng& noise_rng, std::vector<float> audio,
                                   const std::string& text) {
  float peak = 0;
  double energy = 0;
  for (float x : audio) {
    peak = std::max(peak, std::abs(x));
    energy += static_cast<double>(x) * x;
  }
  NURI_CHECK(peak > 0, "synth: espeak-ng produced silence for '", text, "'");
  const double gain = rng.uniform(0.5, 0.9) / peak;
  const double rms = std::sqrt(energy / static_cast<double>(audio.size())) * gain;
  const double noise = rms * std::pow(10.0, -kSpeechSnrDb / 20);
  for (float& x : audio) x = static_cast<float>(x * gain + noise * noise_rng.normal());
  return audio;
}

// A sine tone of random pitch, level and length, faded in and out.
std::vector<float> tone(Rng& rng) {
  const double hz = rng.uniform(220, 880), amplitude = rng.uniform(0.2, 0.5);
  const size_t length = static_cast<size_t>(rng.uniform(0.3, 1.0) * kAudioSampleRate);
  const size_t fade = kAudioSampleRate / 50;
  std::vector<float> sound(length);
  for (size_t i = 0; i < length; ++i) {
    const double envelope =
        std::min({1.0, static_cast<double>(i) / fade, static_cast<double>(length - i) / fade});
    sound[i] = static_cast<float>(amplitude * envelope *
                                  std::sin(2 * 3.141592653589793 * hz * i / kAudioSampleRate));
  }
  return sound;
}

// A soundtrack of `samples` samples: a faint noise floor with `sound` at a random time (cut
// short if longer). `rng` is a noise stream: its draws depend on the sound's length.
std::vector<float> soundtrack(Rng& rng, std::vector<float> sound, size_t samples) {
  sound.resize(std::min(sound.size(), samples));
  const size_t offset = rng.below(samples - sound.size() + 1);
  std::vector<float> audio(samples);
  for (float& x : audio) x = static_cast<float>(0.002 * rng.normal());
  for (size_t i = 0; i < sound.size(); ++i) audio[offset + i] += sound[i];
  return audio;
}

// Runs the espeak-ng calls of the jobs one at a time in job order, whatever thread does each
// job: espeak-ng carries state from one utterance to the next, so the order fixes the bytes.
// Every job takes its turn once, by speaking or by passing.
class SpeechTurns {
 public:
  explicit SpeechTurns(size_t jobs) : finished_(jobs, false) {}

  // Waits for the turn of `job` (all earlier jobs have spoken or passed), speaks, and passes.
  std::vector<float> speak(size_t job, const std::string& text, const synth::Voice& voice) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      turn_.wait(lock, [&] { return next_ == job || stopped_; });
      NURI_CHECK(!stopped_, "synth: stopped after an error in another sample");
    }
    std::vector<float> audio;
    try {
      audio = synth::speak(text, voice);
    } catch (...) {
      stop();
      throw;
    }
    pass(job);
    return audio;
  }
  // Gives up the turn of a job that does not speak.
  void pass(size_t job) {
    std::lock_guard<std::mutex> lock(mutex_);
    finished_[job] = true;
    while (next_ < finished_.size() && finished_[next_]) ++next_;
    turn_.notify_all();
  }
  // Wakes every waiting job with an error (after a failure elsewhere).
  void stop() {
    std::lock_guard<std::mutex> lock(mutex_);
    stopped_ = true;
    turn_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable turn_;
  std::vector<bool> finished_;
  size_t next_ = 0;
  bool stopped_ = false;
};

// Colour indices, uniformly; `distinct` draws without repeats.
std::vector<size_t> pick_colours(Rng& rng, size_t count, bool distinct) {
  std::vector<size_t> out;
  while (out.size() < count) {
    const size_t colour = rng.below(synth::colours().size());
    if (!distinct || std::find(out.begin(), out.end(), colour) == out.end()) out.push_back(colour);
  }
  return out;
}

// Perceived brightness (Rec. 601 luma).
double luma(const Colour& c) {
  return 0.299 * c.r + 0.587 * c.g + 0.114 * c.b;
}

// A low-saturation background far enough in RGB from every colour in `used`.
Colour pick_background(Rng& rng, const std::vector<size_t>& used) {
  Colour background{{"", ""}, 128, 128, 128};
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int grey = static_cast<int>(rng.between(80, 175));
    const auto channel = [&] {
      return static_cast<uint8_t>(std::clamp<int64_t>(grey + rng.between(-15, 15), 0, 255));
    };
    background.r = channel();
    background.g = channel();
    background.b = channel();
    bool far = true;
    for (size_t index : used) {
      const Colour& c = synth::colours()[index];
      const double distance =
          std::hypot(c.r - background.r, c.g - background.g, c.b - background.b);
      far = far && distance >= 90;
    }
    if (far) break;
  }
  return background;
}

// An image of one colour with Gaussian pixel noise of `sigma`.
Image noisy_fill(Rng& rng, int64_t size, const Colour& colour, double sigma) {
  Image image{size, size, std::vector<uint8_t>(static_cast<size_t>(size * size * 3))};
  const uint8_t base[3] = {colour.r, colour.g, colour.b};
  for (size_t i = 0; i < image.rgb.size(); ++i) {
    image.rgb[i] = static_cast<uint8_t>(std::clamp(base[i % 3] + sigma * rng.normal(), 0.0, 255.0));
  }
  return image;
}

// Adds Gaussian pixel noise of `sigma`.
void add_noise(Rng& rng, Image& image, double sigma) {
  for (uint8_t& value : image.rgb) {
    value = static_cast<uint8_t>(std::clamp(value + sigma * rng.normal(), 0.0, 255.0));
  }
}

// Places objects of the given colours at random sizes and positions inside a size x size image
// so that none overlaps another or the rows [keep_out_top, keep_out_bottom).
std::vector<Object> place_objects(Rng& rng, double size, const std::vector<size_t>& colours,
                                  bool distinct_shapes, double keep_out_top = 0,
                                  double keep_out_bottom = 0) {
  const double gap = 0.03 * size, margin = 2;
  for (double scale = 1.0;; scale *= 0.9) {
    std::vector<Object> objects;
    for (size_t colour : colours) {
      for (int attempt = 0; attempt < 200; ++attempt) {
        Object object{rng.below(synth::shapes().size()), colour, 0, 0, 0, 0};
        object.r = rng.uniform(0.08, 0.16) * size * scale;
        object.x = rng.uniform(object.r + margin, size - object.r - margin);
        object.y = rng.uniform(object.r + margin, size - object.r - margin);
        object.angle = rng.uniform(-0.25, 0.25);
        bool free = object.y + object.r + gap <= keep_out_top ||
                    object.y - object.r - gap >= keep_out_bottom;
        for (const Object& other : objects) {
          free = free &&
                 std::hypot(object.x - other.x, object.y - other.y) > object.r + other.r + gap &&
                 !(distinct_shapes && object.shape == other.shape);
        }
        if (free) {
          objects.push_back(object);
          break;
        }
      }
    }
    if (objects.size() == colours.size()) return objects;
  }
}

// A still image of objects (and optionally a word) on a noisy background.
Image draw_scene(Rng& rng, synth::Painter& painter, int64_t size,
                 const std::vector<Object>& objects, const Colour& background,
                 const std::string& word = "", const Colour* word_colour = nullptr,
                 double word_y = 0, double word_height = 0) {
  Image image = noisy_fill(rng, size, background, 10);
  for (const Object& o : objects) {
    painter.shape(image, o.shape, synth::colours()[o.colour], o.x, o.y, o.r, o.angle);
  }
  if (!word.empty()) {
    painter.text(image, word, *word_colour, size / 2.0, word_y, 0.9 * size, word_height);
  }
  add_noise(rng, image, 4);
  return image;
}

// The manifest's content parts.
json text_part(const std::string& text) {
  return json{{"type", "text"}, {"text", text}};
}
json file_part(const char* type, const std::string& path) {
  return json{{"type", type}, {"path", path}};
}
// A media part with what its speech says ("" for a soundtrack without speech).
json spoken_part(const char* type, const std::string& path, const std::string& transcript) {
  json part = file_part(type, path);
  part["transcript"] = transcript;
  return part;
}

// One manifest line: the user's parts, the assistant's answer, and the fields the scorer reads.
json conversation(json user, const std::string& answer, size_t task, const std::string& language) {
  json line;
  line["messages"] =
      json::array({json{{"role", "user"}, {"content", std::move(user)}},
                   json{{"role", "assistant"}, {"content", json::array({text_part(answer)})}}});
  line["task"] = kSynthTasks[task];
  line["answer"] = answer;
  line["language"] = language;
  return line;
}

// Renders the samples of one worker thread.
class SampleMaker {
 public:
  SampleMaker(const SynthOptions& options, const std::string& font, const fs::path& root,
              SpeechTurns& turns)
      : options_(options), painter_(font), root_(root), turns_(turns) {}

  // Generates the media files of job `number` under root and returns its manifest line. A job
  // that speaks does so first, and one that does not passes its turn first (SpeechTurns).
  json make(const Job& job, size_t number) {
    number_ = number;
    const uint64_t index = static_cast<uint64_t>(job.index);
    Rng rng(options_.seed, synth::stream_id(job.split, job.task, kSampleStream, index));
    noise_ = Rng(options_.seed, synth::stream_id(job.split, job.task, kNoiseStream, index));
    const std::string stem = cat("media/", kSynthSplits[job.split], "/", kSynthTasks[job.task], "/",
                                 zero_padded(job.index));
    switch (job.task) {
      case kTranscribe: {
        const std::string wav = stem + ".wav";
        save(wav, speak(rng, job.sentence, job.language));
        return conversation(json::array({spoken_part("input_audio", wav, job.sentence),
                                         text_part(kTranscribePrompt.in(job.language))}),
                            job.sentence, job.task, job.language);
      }
      case kImageColor:
      case kImageShape:
      case kImageCount: {
        turns_.pass(number_);
        const std::string language = pick_language(rng);
        const std::string png = stem + ".png";
        const std::string answer = still_image(rng, job.task, png, language);
        return conversation(
            json::array({file_part("image", png), text_part(still_question(job.task, language))}),
            answer, job.task, language);
      }
      case kImageText:
        turns_.pass(number_);
        return image_text(rng, job, stem);
      case kVideoDirection:
      case kVideoObject:
      case kVideoSpeech:
        return video(rng, job, stem);
      case kSpokenImageQuestion: {
        const std::string language = pick_language(rng);
        const std::string png = stem + ".png", wav = stem + ".wav";
        const size_t asked = kImageColor + rng.below(3);
        const std::string question = still_question(asked, language);
        save(wav, speak(rng, question, language));
        const std::string answer = still_image(rng, asked, png, language);
        json line = conversation(
            json::array({file_part("image", png), spoken_part("input_audio", wav, question)}),
            answer, job.task, language);
        line["question"] = question;
        return line;
      }
      default:
        fail("synth: no task ", job.task);
    }
  }

  int64_t files() const { return files_; }
  int64_t bytes() const { return bytes_; }

 private:
  static std::string zero_padded(int64_t index) {
    std::string digits = std::to_string(index);
    return std::string(digits.size() < 6 ? 6 - digits.size() : 0, '0') + digits;
  }

  // Counts a written file.
  void wrote(const std::string& relative) {
    ++files_;
    bytes_ += static_cast<int64_t>(fs::file_size(root_ / relative));
  }
  void save(const std::string& relative, const std::vector<float>& audio) {
    save_wav((root_ / relative).string(), audio);
    wrote(relative);
  }
  void save(const std::string& relative, const Image& image) {
    save_image((root_ / relative).string(), image);
    wrote(relative);
  }

  // Speech of `text` in a random voice of `language`, levelled, with noise, in this job's turn.
  std::vector<float> speak(Rng& rng, const std::string& text, const std::string& language) {
    const synth::Voice voice = pick_voice(rng, language);
    return level_and_noise(rng, noise_, turns_.speak(number_, text, voice), text);
  }

  // The question of a colour, shape or count task.
  static std::string still_question(size_t task, const std::string& language) {
    return (task == kImageColor   ? kColorQuestion
            : task == kImageShape ? kShapeQuestion
                                  : kCountQuestion)
        .in(language);
  }

  // Draws and saves the image of a colour, shape or count question; returns the answer.
  std::string still_image(Rng& rng, size_t task, const std::string& png,
                          const std::string& language) {
    const size_t count = task == kImageCount ? static_cast<size_t>(rng.between(1, 5)) : 1;
    const std::vector<size_t> colours = pick_colours(rng, count, false);
    const std::vector<Object> objects =
        place_objects(rng, static_cast<double>(options_.image_size), colours, false);
    const Colour background = pick_background(rng, colours);
    save(png, draw_scene(noise_, painter_, options_.image_size, objects, background));
    if (task == kImageColor) return synth::colours()[objects[0].colour].name.in(language);
    if (task == kImageShape) return synth::shapes()[objects[0].shape].in(language);
    return std::to_string(count);
  }

  // A word written across the image in a band, with up to two objects above or below it. The
  // word's colour is picked after the background, for contrast in brightness.
  json image_text(Rng& rng, const Job& job, const std::string& stem) {
    const std::string language = pick_language(rng);
    const std::string word = rng.pick(synth::single_words(rng.below(2) ? "ko" : "en"));
    const double size = static_cast<double>(options_.image_size);
    const double height = rng.uniform(0.18, 0.26) * size;
    const double y = rng.uniform(0.2 * size, 0.8 * size);
    const std::vector<size_t> colours = pick_colours(rng, rng.below(3), true);
    const std::vector<Object> objects =
        place_objects(rng, size, colours, false, y - 0.6 * height, y + 0.6 * height);
    const Colour background = pick_background(rng, colours);
    std::vector<size_t> readable;
    for (size_t c = 0; c < synth::colours().size(); ++c) {
      if (std::abs(luma(synth::colours()[c]) - luma(background)) >= 80) readable.push_back(c);
    }
    const Colour& ink = synth::colours()[rng.pick(readable)];
    const std::string png = stem + ".png";
    save(png, draw_scene(noise_, painter_, options_.image_size, objects, background, word, &ink, y,
                         height));
    return conversation(
        json::array({file_part("image", png), text_part(kTextQuestion.in(language))}), word,
        job.task, language);
  }

  // A clip of one object moving (and, for the object question, a second one standing still)
  // with a soundtrack of a spoken word or a tone.
  json video(Rng& rng, const Job& job, const std::string& stem) {
    const std::string language = pick_language(rng);
    const int64_t frame_count =
        static_cast<int64_t>(std::lround(rng.uniform(2, 4) * options_.video_fps));
    const size_t samples = static_cast<size_t>(
        std::lround(static_cast<double>(frame_count) / options_.video_fps * kAudioSampleRate));
    std::string said;
    std::vector<float> audio;
    if (job.task == kVideoSpeech || rng.below(2)) {
      const std::string word_language = pick_language(rng);
      said = rng.pick(synth::single_words(word_language));
      audio = soundtrack(noise_, speak(rng, said, word_language), samples);
    } else {
      turns_.pass(number_);
      audio = soundtrack(noise_, tone(rng), samples);
    }
    const double size = static_cast<double>(options_.video_size);
    const Direction& direction = rng.pick(directions());
    const bool two = job.task == kVideoObject;
    const std::vector<size_t> colours = pick_colours(rng, two ? 2 : 1, true);
    const double norm = std::hypot(direction.dx, direction.dy);
    const double ux = direction.dx / norm, uy = direction.dy / norm;
    std::vector<Object> objects;
    double travel = 0;
    // The mover's path must stay inside the frame and clear of the still object.
    for (double scale = 1.0; objects.empty(); scale *= 0.9) {
      for (int attempt = 0; attempt < 200 && objects.empty(); ++attempt) {
        Object mover{rng.below(synth::shapes().size()), colours[0], 0, 0, 0,
                     rng.uniform(-0.25, 0.25)};
        mover.r = rng.uniform(0.08, 0.13) * size * scale;
        travel = rng.uniform(0.3, 0.5) * size * scale;
        const double lo = mover.r + 2, hi = size - mover.r - 2;
        mover.x = rng.uniform(lo - std::min(0.0, ux * travel), hi - std::max(0.0, ux * travel));
        mover.y = rng.uniform(lo - std::min(0.0, uy * travel), hi - std::max(0.0, uy * travel));
        if (!two) {
          objects = {mover};
          break;
        }
        Object still{rng.below(synth::shapes().size()), colours[1], 0, 0, 0,
                     rng.uniform(-0.25, 0.25)};
        still.r = rng.uniform(0.08, 0.13) * size * scale;
        still.x = rng.uniform(still.r + 2, size - still.r - 2);
        still.y = rng.uniform(still.r + 2, size - still.r - 2);
        // Distance from the still object's centre to the mover's path (a segment).
        const double t =
            std::clamp((still.x - mover.x) * ux + (still.y - mover.y) * uy, 0.0, travel);
        const double clearance = std::hypot(mover.x + t * ux - still.x, mover.y + t * uy - still.y);
        if (still.shape != mover.shape && clearance > mover.r + still.r + 0.03 * size) {
          objects = {mover, still};
        }
      }
    }
    const Colour background = pick_background(rng, colours);
    const Image backdrop = noisy_fill(noise_, options_.video_size, background, 10);
    std::vector<Image> frames;
    for (int64_t f = 0; f < frame_count; ++f) {
      Image frame = backdrop;
      const double progress =
          travel * static_cast<double>(f) / static_cast<double>(frame_count - 1);
      for (size_t i = 0; i < objects.size(); ++i) {
        const Object& o = objects[i];
        const double shift = i == 0 ? progress : 0;
        painter_.shape(frame, o.shape, synth::colours()[o.colour], o.x + ux * shift,
                       o.y + uy * shift, o.r, o.angle);
      }
      add_noise(noise_, frame, 3);
      frames.push_back(std::move(frame));
    }
    const std::string mp4 = stem + ".mp4";
    save_video((root_ / mp4).string(), frames, options_.video_fps, audio);
    wrote(mp4);

    const synth::Named& question = job.task == kVideoDirection ? kDirectionQuestion
                                   : job.task == kVideoObject  ? kObjectQuestion
                                                               : kSpeechQuestion;
    const std::string answer = job.task == kVideoDirection ? direction.name.in(language)
                               : job.task == kVideoObject  ? object_name(objects[0], language)
                                                           : said;
    return conversation(
        json::array({spoken_part("video", mp4, said), text_part(question.in(language))}), answer,
        job.task, language);
  }

  const SynthOptions& options_;
  synth::Painter painter_;
  fs::path root_;
  SpeechTurns& turns_;
  size_t number_ = 0;  // the job being made
  // Pixel and sample noise of the job being made: a stream of its own, so that the number of
  // draws (which follows the speech's length) never moves the choices the manifest records.
  Rng noise_{0, 0};
  int64_t files_ = 0, bytes_ = 0;
};

// Samples of kSynthTasks[task] in kSynthSplits[split]: 0 for a task --tasks leaves out, and
// --train-of's count instead of --train for the tasks it names.
int64_t samples_of(const SynthOptions& o, size_t split, size_t task) {
  if (!o.tasks.empty() &&
      std::find(o.tasks.begin(), o.tasks.end(), kSynthTasks[task]) == o.tasks.end())
    return 0;
  if (split == 0) {
    const auto named = o.train_of.find(kSynthTasks[task]);
    return named != o.train_of.end() ? named->second : o.train;
  }
  return split == 1 ? o.valid : o.test;
}

// Checks the options; errors name the option at fault.
void check_options(const SynthOptions& o) {
  NURI_CHECK(!o.out.empty(), "synth: --out is required");
  for (const auto& [name, count] : {std::pair{"--train", o.train}, std::pair{"--valid", o.valid},
                                    std::pair{"--test", o.test}}) {
    NURI_CHECK(count >= 0 && count <= 1000000, "synth: ", name, " ", count,
               " is not a sample count in [0, 1000000]");
  }
  NURI_CHECK(o.image_size >= 32 && o.image_size <= 1024, "synth: --image-size ", o.image_size,
             " is not in [32, 1024]");
  NURI_CHECK(o.video_size >= 32 && o.video_size <= 512 && o.video_size % 2 == 0,
             "synth: --video-size ", o.video_size, " is not an even size in [32, 512]");
  NURI_CHECK(o.video_fps >= 1 && o.video_fps <= 30, "synth: --fps ", o.video_fps,
             " is not in [1, 30]");
  NURI_CHECK(o.threads >= 0, "synth: --threads ", o.threads, " is negative");
  auto check_task = [](const char* option, const std::string& task) {
    if (std::find(kSynthTasks.begin(), kSynthTasks.end(), task) != kSynthTasks.end()) return;
    std::string known;
    for (const char* name : kSynthTasks) known += cat(known.empty() ? "" : ", ", name);
    fail("synth: ", option, " names '", task, "', which is not one of: ", known);
  };
  for (const std::string& task : o.tasks) check_task("--tasks", task);
  for (const auto& [task, count] : o.train_of) {
    check_task("--train-of", task);
    NURI_CHECK(count >= 0 && count <= 1000000, "synth: --train-of ", task, "=", count,
               " is not a sample count in [0, 1000000]");
  }
  int64_t total = 0;
  for (size_t split = 0; split < kSynthSplits.size(); ++split)
    for (size_t task = 0; task < kSynthTasks.size(); ++task) total += samples_of(o, split, task);
  NURI_CHECK(total > 0, "synth: --train, --valid and --test are all 0 for the tasks asked");
}

// True when `path` exists and holds anything.
bool non_empty_directory(const fs::path& path) {
  return fs::is_directory(path) && fs::directory_iterator(path) != fs::directory_iterator();
}

// Removes a directory tree on destruction unless released.
class RemoveOnExit {
 public:
  explicit RemoveOnExit(fs::path path) : path_(std::move(path)) {}
  ~RemoveOnExit() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  RemoveOnExit(const RemoveOnExit&) = delete;
  RemoveOnExit& operator=(const RemoveOnExit&) = delete;
  void release() { path_.clear(); }

 private:
  fs::path path_;
};

}  // namespace

SynthSummary synthesize_corpus(const SynthOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  check_options(options);
  const fs::path out = fs::absolute(fs::path(options.out)).lexically_normal();
  const fs::path target = out.filename().empty() ? out.parent_path() : out;
  NURI_CHECK(!fs::exists(target) || fs::is_directory(target), "synth: --out ", options.out,
             " exists and is not a directory");
  NURI_CHECK(options.force || !non_empty_directory(target), "synth: --out ", options.out,
             " is not empty (pass --force to replace it)");
  const std::string font = options.font.empty() ? synth::find_hangul_font() : options.font;
  NURI_CHECK(fs::is_regular_file(font), "synth: --font ", font, " does not exist");

  // Everything is written under a temporary sibling, renamed into place at the end.
  fs::create_directories(target.parent_path());
  const fs::path temp =
      target.parent_path() / cat(".", target.filename().string(), ".tmp-", ::getpid());
  fs::remove_all(temp);
  RemoveOnExit cleanup(temp);
  for (size_t split = 0; split < kSynthSplits.size(); ++split) {
    for (size_t task = 0; task < kSynthTasks.size(); ++task) {
      if (samples_of(options, split, task) > 0) {
        fs::create_directories(temp / "media" / kSynthSplits[split] / kSynthTasks[task]);
      }
    }
  }

  // Sentences are chosen serially, in order, so that no sentence appears twice anywhere (and so
  // in two splits) and the choice does not depend on threads.
  std::vector<Job> jobs;
  std::unordered_set<std::string> sentences;
  std::array<size_t, kSynthSplits.size()> first_job{};
  for (size_t split = 0; split < kSynthSplits.size(); ++split) {
    first_job[split] = jobs.size();
    int64_t most = 0;
    for (size_t task = 0; task < kSynthTasks.size(); ++task)
      most = std::max(most, samples_of(options, split, task));
    for (int64_t index = 0; index < most; ++index) {
      for (size_t task = 0; task < kSynthTasks.size(); ++task) {
        if (index >= samples_of(options, split, task)) continue;
        Job job{split, task, index, "", ""};
        if (task == kTranscribe) {
          Rng rng(options.seed,
                  synth::stream_id(split, task, kSentenceStream, static_cast<uint64_t>(index)));
          job.language = pick_language(rng);
          for (int attempt = 0;; ++attempt) {
            NURI_CHECK(attempt < 1000,
                       "synth: no new sentence after 1000 tries; the vocabulary is too small for ",
                       sentences.size() + 1, " different sentences");
            job.sentence = synth::make_sentence(rng, job.language);
            if (sentences.insert(job.sentence).second) break;
          }
        }
        jobs.push_back(std::move(job));
      }
    }
  }

  // Workers take jobs in order; their espeak-ng calls run one at a time in job order (SpeechTurns).
  std::vector<std::string> lines(jobs.size());
  SpeechTurns turns(jobs.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;
  std::exception_ptr error;
  int64_t done = 0;
  SynthSummary summary;
  ProgressBar bar(static_cast<int64_t>(jobs.size()), 0, options.progress);
  const int threads = options.threads > 0
                          ? options.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto work = [&] {
    try {
      SampleMaker maker(options, font, temp, turns);
      for (size_t i = next++; i < jobs.size() && !failed; i = next++) {
        lines[i] = maker.make(jobs[i], i).dump();
        std::lock_guard<std::mutex> lock(mutex);
        ++done;
        bar.update(done, kSynthTasks[jobs[i].task]);
      }
      std::lock_guard<std::mutex> lock(mutex);
      summary.files += maker.files();
      summary.bytes += maker.bytes();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!error) error = std::current_exception();
      failed = true;
      turns.stop();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& thread : pool) thread.join();
  bar.finish();
  if (error) std::rethrow_exception(error);

  // The manifests and synth.json, last.
  json counts = json::object();
  for (size_t split = 0; split < kSynthSplits.size(); ++split) {
    const size_t end = split + 1 < kSynthSplits.size() ? first_job[split + 1] : jobs.size();
    std::string manifest;
    for (size_t i = first_job[split]; i < end; ++i) {
      manifest += lines[i];
      manifest += '\n';
      ++summary.counts[split][jobs[i].task];
    }
    write_file_atomic((temp / (std::string(kSynthSplits[split]) + ".jsonl")).string(), manifest);
    json& split_counts = counts[kSynthSplits[split]];
    for (size_t task = 0; task < kSynthTasks.size(); ++task) {
      split_counts[kSynthTasks[task]] = summary.counts[split][task];
    }
  }
  const json description = {
      {"generator", "nuri data synth"},
      {"seed", options.seed},
      {"image_size", options.image_size},
      {"video_size", options.video_size},
      {"video_fps", options.video_fps},
      {"samples_per_task",
       {{"train", options.train}, {"valid", options.valid}, {"test", options.test}}},
      {"train_of", options.train_of},
      {"tasks", options.tasks.empty()
                    ? std::vector<std::string>(kSynthTasks.begin(), kSynthTasks.end())
                    : options.tasks},
      {"counts", counts},
      {"vocabulary_words", synth_vocabulary().size()},
  };
  write_file_atomic((temp / "synth.json").string(), description.dump(2) + "\n");
  sync_directory(temp.string());

  // Into place: an old corpus is moved aside first and removed after the rename.
  const fs::path old =
      target.parent_path() / cat(".", target.filename().string(), ".old-", ::getpid());
  RemoveOnExit old_cleanup(old);
  if (fs::exists(target)) fs::rename(target, old);
  fs::rename(temp, target);
  cleanup.release();
  sync_directory(target.parent_path().string());
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace nuri
