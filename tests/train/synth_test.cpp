// nuri data synth: a tiny corpus generates, its manifests parse and point at real media of the
// promised formats, the same seed gives the same bytes, and splits share no sentence.
// The corpus and the codecs need a media build (NURI_MEDIA).
#ifdef NURI_WITH_MEDIA
#include "train/synth.h"

#include <gtest/gtest.h>
#include <sndfile.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <set>
#include <sstream>

#include "kernels/error.h"
#include "kernels/file_io.h"
#include "tests/common/ffprobe.h"
#include "tests/common/temp_dir.h"

namespace nuri {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The options of the tiny corpus: two samples per task in train, one in valid and test.
SynthOptions tiny(const std::string& out, int threads) {
  SynthOptions options;
  options.out = out;
  options.train = 2;
  options.valid = 1;
  options.test = 1;
  options.seed = 11;
  options.image_size = 96;
  options.video_size = 64;
  options.threads = threads;
  return options;
}

// The lines of a manifest, parsed.
std::vector<json> read_manifest(const fs::path& path) {
  std::vector<json> lines;
  std::istringstream text(read_file(path.string()));
  for (std::string line; std::getline(text, line);) lines.push_back(json::parse(line));
  return lines;
}

// Every file under `root`, relative, with its bytes.
std::map<std::string, std::string> tree(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& item : fs::recursive_directory_iterator(root)) {
    if (item.is_regular_file()) {
      files[fs::relative(item.path(), root).string()] = read_file(item.path().string());
    }
  }
  return files;
}

// The file paths a manifest line refers to, by part type.
std::vector<std::pair<std::string, std::string>> media_parts(const json& line) {
  std::vector<std::pair<std::string, std::string>> parts;
  for (const json& message : line["messages"]) {
    for (const json& part : message["content"]) {
      if (part.contains("path")) parts.emplace_back(part["type"], part["path"]);
    }
  }
  return parts;
}

// RGB of the corpus's colour names (the drawing's palette, restated for the check).
const std::map<std::string, cv::Vec3b>& palette() {
  static const std::map<std::string, cv::Vec3b> table = {
      {"red", {220, 30, 35}},     {"green", {35, 165, 60}},   {"blue", {35, 75, 220}},
      {"yellow", {240, 215, 35}}, {"purple", {135, 50, 180}}, {"orange", {245, 135, 25}},
      {"white", {245, 245, 245}}, {"black", {15, 15, 15}},
  };
  return table;
}

// One corpus generated for the whole suite (generation takes a second or two).
class SynthCorpus : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    root_ = dir_->file("corpus");
    summary_ = synthesize_corpus(tiny(root_, 2));
  }
  static void TearDownTestSuite() { delete dir_; }

  static test::TempDir* dir_;
  static std::string root_;
  static SynthSummary summary_;
};
test::TempDir* SynthCorpus::dir_ = nullptr;
std::string SynthCorpus::root_;
SynthSummary SynthCorpus::summary_;

TEST_F(SynthCorpus, ManifestsParseAndEveryFileExists) {
  const std::map<std::string, size_t> expected = {{"train", 2}, {"valid", 1}, {"test", 1}};
  int64_t files = 0;
  for (const auto& [split, per_task] : expected) {
    const std::vector<json> lines = read_manifest(fs::path(root_) / (split + ".jsonl"));
    ASSERT_EQ(lines.size(), per_task * kSynthTasks.size()) << split;
    std::map<std::string, size_t> tasks;
    for (const json& line : lines) {
      ++tasks[line.at("task").get<std::string>()];
      ASSERT_EQ(line["messages"].size(), 2u);
      EXPECT_EQ(line["messages"][0]["role"], "user");
      EXPECT_EQ(line["messages"][1]["role"], "assistant");
      EXPECT_EQ(line["messages"][1]["content"][0]["text"], line["answer"]);
      EXPECT_FALSE(line["answer"].get<std::string>().empty());
      EXPECT_TRUE(line["language"] == "en" || line["language"] == "ko");
      const auto parts = media_parts(line);
      EXPECT_FALSE(parts.empty()) << line.dump();
      for (const auto& [type, path] : parts) {
        EXPECT_TRUE(fs::is_regular_file(fs::path(root_) / path)) << path;
        EXPECT_EQ(path.rfind("media/" + split + "/", 0), 0u) << path;
        ++files;
      }
      // Every spoken part says what its transcript holds: the sentence, the spoken question, or
      // the video's word ("" for a tone).
      const std::string task = line["task"];
      for (const json& part : line["messages"][0]["content"]) {
        const std::string type = part["type"];
        if (type == "image" || type == "text") {
          EXPECT_FALSE(part.contains("transcript")) << line.dump();
          continue;
        }
        ASSERT_TRUE(part.contains("transcript")) << line.dump();
        if (task == "transcribe" || task == "video_speech") {
          EXPECT_EQ(part["transcript"], line["answer"]);
        }
        if (task == "spoken_image_question") {
          EXPECT_EQ(part["transcript"], line["question"]);
        }
      }
    }
    for (const char* task : kSynthTasks) EXPECT_EQ(tasks[task], per_task) << split << " " << task;
  }
  EXPECT_EQ(files, summary_.files);
  const json description = json::parse(read_file(root_ + "/synth.json"));
  EXPECT_EQ(description["seed"], 11);
  EXPECT_EQ(description["counts"]["train"]["transcribe"], 2);
  // Nothing but the corpus: no temporary directory beside it.
  EXPECT_EQ(dir_->listing(), std::vector<std::string>{"corpus"});
}

// Generates a corpus in a child process, so that every such corpus starts from the speech
// engine's state at the fork (espeak-ng carries state from one utterance to the next).
void synthesize_in_child(const SynthOptions& options) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      synthesize_corpus(options);
      ::_exit(0);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      ::_exit(1);
    }
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(Synth, SameSeedGivesTheSameBytesWhateverTheThreads) {
  test::TempDir dir;
  synthesize_in_child(tiny(dir.file("one"), 2));
  synthesize_in_child(tiny(dir.file("two"), 1));
  const auto first = tree(dir.file("one")), second = tree(dir.file("two"));
  ASSERT_EQ(first.size(), second.size());
  for (const auto& [name, bytes] : first) {
    ASSERT_TRUE(second.count(name)) << name;
    EXPECT_TRUE(second.at(name) == bytes) << name << " differs";
  }
}

TEST_F(SynthCorpus, SameSeedGivesTheSameManifestsInOneProcess) {
  test::TempDir other;
  synthesize_corpus(tiny(other.file("corpus"), 1));
  for (const char* split : kSynthSplits) {
    const std::string name = std::string(split) + ".jsonl";
    EXPECT_EQ(read_file(root_ + "/" + name), read_file(other.file("corpus/" + name))) << name;
  }
}

TEST_F(SynthCorpus, AnotherSeedGivesAnotherCorpus) {
  test::TempDir other;
  SynthOptions options = tiny(other.file("corpus"), 2);
  options.seed = 12;
  synthesize_corpus(options);
  EXPECT_NE(read_file(root_ + "/train.jsonl"), read_file(other.file("corpus/train.jsonl")));
}

TEST_F(SynthCorpus, SplitsShareNoSentence) {
  std::map<std::string, std::set<std::string>> sentences;
  for (const char* split : kSynthSplits) {
    for (const json& line : read_manifest(fs::path(root_) / (std::string(split) + ".jsonl"))) {
      if (line["task"] != "transcribe") continue;
      const std::string sentence = line["answer"];
      sentences[split].insert(sentence);
      const size_t words =
          1 + static_cast<size_t>(std::count(sentence.begin(), sentence.end(), ' '));
      EXPECT_GE(words, 3u) << sentence;
      EXPECT_LE(words, 8u) << sentence;
    }
  }
  for (const auto& [a, first] : sentences) {
    for (const auto& [b, second] : sentences) {
      if (a >= b) continue;
      for (const std::string& sentence : first) EXPECT_EQ(second.count(sentence), 0u) << sentence;
    }
  }
}

TEST_F(SynthCorpus, SpeechIsSixteenKilohertzMonoAndNotSilent) {
  int checked = 0;
  for (const json& line : read_manifest(fs::path(root_) / "train.jsonl")) {
    for (const auto& [type, path] : media_parts(line)) {
      if (type != "input_audio") continue;
      SF_INFO info{};
      SNDFILE* file = sf_open((fs::path(root_) / path).c_str(), SFM_READ, &info);
      ASSERT_NE(file, nullptr) << path;
      EXPECT_EQ(info.samplerate, 16000) << path;
      EXPECT_EQ(info.channels, 1) << path;
      std::vector<float> samples(static_cast<size_t>(info.frames));
      sf_read_float(file, samples.data(), info.frames);
      sf_close(file);
      EXPECT_GT(info.frames, 16000 / 4) << path;  // a quarter second at least
      double energy = 0;
      float peak = 0;
      for (float x : samples) {
        energy += x * x;
        peak = std::max(peak, std::abs(x));
      }
      EXPECT_GT(std::sqrt(energy / samples.size()), 0.02) << path;
      EXPECT_GT(peak, 0.3) << path;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 4);  // transcribe and spoken_image_question, two each
}

TEST_F(SynthCorpus, ImagesHaveTheSizeAndTheColourTheAnswerNames) {
  for (const json& line : read_manifest(fs::path(root_) / "train.jsonl")) {
    for (const auto& [type, path] : media_parts(line)) {
      if (type != "image") continue;
      const cv::Mat bgr = cv::imread((fs::path(root_) / path).string(), cv::IMREAD_COLOR);
      ASSERT_EQ(bgr.rows, 96) << path;
      ASSERT_EQ(bgr.cols, 96) << path;
      if (line["task"] != "image_color" || line["language"] != "en") continue;
      const cv::Vec3b rgb = palette().at(line["answer"]);
      int close = 0;
      for (int y = 0; y < bgr.rows; ++y) {
        for (int x = 0; x < bgr.cols; ++x) {
          const cv::Vec3b p = bgr.at<cv::Vec3b>(y, x);
          close += std::hypot(p[2] - rgb[0], p[1] - rgb[1], p[0] - rgb[2]) < 40;
        }
      }
      EXPECT_GT(close, 40) << path << " should show a " << line["answer"] << " shape";
    }
  }
}

TEST_F(SynthCorpus, VideosHaveMpeg4VideoAndAacSound) {
  int checked = 0;
  for (const json& line : read_manifest(fs::path(root_) / "train.jsonl")) {
    for (const auto& [type, path] : media_parts(line)) {
      if (type != "video") continue;
      const json info = test::ffprobe((fs::path(root_) / path).string());
      ASSERT_EQ(info["streams"].size(), 2u) << path;
      EXPECT_EQ(info["streams"][0]["codec_name"], "mpeg4") << path;
      EXPECT_EQ(info["streams"][0]["width"], 64) << path;
      EXPECT_EQ(info["streams"][1]["codec_name"], "aac") << path;
      EXPECT_EQ(info["streams"][1]["sample_rate"], "16000") << path;
      const double seconds = std::stod(info["format"]["duration"].get<std::string>());
      EXPECT_GE(seconds, 1.9) << path;
      EXPECT_LE(seconds, 4.2) << path;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 6);
}

TEST(Synth, VocabularyHasBothLanguagesAndTwoHundredWords) {
  const std::vector<SynthWord>& words = synth_vocabulary();
  EXPECT_GE(words.size(), 200u);
  std::map<std::string, std::set<std::string>> by_language;
  for (const SynthWord& word : words) {
    by_language[word.language].insert(word.text);
    const bool ascii = std::all_of(word.text.begin(), word.text.end(),
                                   [](char c) { return c >= 'a' && c <= 'z'; });
    // Hangul syllables are three bytes starting 0xEA..0xED in UTF-8.
    const auto lead = static_cast<unsigned char>(word.text[0]);
    if (word.language == "en") {
      EXPECT_TRUE(ascii) << word.text;
    } else {
      EXPECT_TRUE(lead >= 0xEA && lead <= 0xED) << word.text;
    }
  }
  ASSERT_EQ(by_language.size(), 2u);
  EXPECT_GE(by_language["en"].size(), 100u);
  EXPECT_GE(by_language["ko"].size(), 100u);
}

TEST(Synth, RefusesANonEmptyOutputUnlessForced) {
  test::TempDir dir;
  dir.write("keep.txt", "precious");
  SynthOptions options = tiny(dir.file(""), 2);
  options.train = 1;
  options.valid = options.test = 0;
  try {
    synthesize_corpus(options);
    FAIL() << "a non-empty --out was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--force"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(dir.file("keep.txt")), "precious");
  options.force = true;
  synthesize_corpus(options);
  EXPECT_FALSE(fs::exists(dir.file("keep.txt")));
  EXPECT_TRUE(fs::is_regular_file(dir.file("train.jsonl")));
}

TEST(Synth, RefusesBadOptions) {
  test::TempDir dir;
  SynthOptions options = tiny(dir.file("corpus"), 1);
  options.image_size = 8;
  EXPECT_THROW(synthesize_corpus(options), Error);
  options = tiny(dir.file("corpus"), 1);
  options.video_size = 65;
  EXPECT_THROW(synthesize_corpus(options), Error);
  options = tiny(dir.file("corpus"), 1);
  options.train = options.valid = options.test = 0;
  EXPECT_THROW(synthesize_corpus(options), Error);
  options = tiny(dir.file("corpus"), 1);
  options.font = dir.file("no-such-font.ttf");
  EXPECT_THROW(synthesize_corpus(options), Error);
  options = tiny(dir.file("corpus"), 1);
  options.tasks = {"transcribe", "juggle"};
  try {
    synthesize_corpus(options);
    FAIL() << "an unknown task was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'juggle'"), std::string::npos) << e.what();
  }
  options = tiny(dir.file("corpus"), 1);
  options.train_of = {{"transcribe", -1}};
  EXPECT_THROW(synthesize_corpus(options), Error);
  EXPECT_TRUE(dir.listing().empty());
}

// --tasks picks tasks; --train-of sets the train count of one (and adds no task not picked).
TEST(Synth, GeneratesOnlyTheTasksAsked) {
  test::TempDir dir;
  SynthOptions options = tiny(dir.file("corpus"), 2);
  options.tasks = {"transcribe", "image_color"};
  options.train_of = {{"transcribe", 5}, {"video_object", 3}};
  const SynthSummary summary = synthesize_corpus(options);
  for (size_t split = 0; split < kSynthSplits.size(); ++split) {
    for (size_t task = 0; task < kSynthTasks.size(); ++task) {
      const std::string name = kSynthTasks[task];
      const int64_t train = name == "transcribe" ? 5 : options.train;
      const int64_t expected =
          name == "transcribe" || name == "image_color" ? (split == 0 ? train : options.valid) : 0;
      EXPECT_EQ(summary.counts[split][task], expected) << kSynthSplits[split] << " " << name;
    }
  }
  std::set<std::string> tasks;
  for (const json& line : read_manifest(dir.file("corpus/train.jsonl"))) tasks.insert(line["task"]);
  EXPECT_EQ(tasks, (std::set<std::string>{"transcribe", "image_color"}));
  const json description = json::parse(read_file(dir.file("corpus/synth.json")));
  EXPECT_EQ(description["tasks"], json({"transcribe", "image_color"}));
  EXPECT_FALSE(fs::exists(dir.file("corpus/media/train/video_direction")));
}

}  // namespace
}  // namespace nuri
#endif  // NURI_WITH_MEDIA
