#include "train/evaluation.h"

#include <filesystem>
#include <map>

#include "fusion/omni_model.h"
#include "kernels/autograd.h"
#include "kernels/error.h"
#include "kernels/file_io.h"
#include "kernels/log.h"
#include "train/checkpoint.h"
#include "train/metrics.h"

namespace nuri {

namespace fs = std::filesystem;

namespace {

// Tasks scored by error rates rather than exact match.
bool is_transcription(const std::string& task) {
  return task == "transcribe";
}

// The modalities of a conversation's media, e.g. "audio+image", or "text".
std::string modality(const Conversation& conversation) {
  bool audio = false, image = false, video = false;
  for (const ContentPart* part : conversation.media()) {
    audio |= part->kind == PartKind::audio;
    image |= part->kind == PartKind::image;
    video |= part->kind == PartKind::video;
  }
  std::string out;
  for (auto [on, name] : {std::pair{audio, "audio"}, {image, "image"}, {video, "video"}})
    if (on) out += (out.empty() ? "" : "+") + std::string(name);
  return out.empty() ? "text" : out;
}

std::string reply_text(const Message& message) {
  std::string text;
  for (const ContentPart& part : message.content) text += part.text;
  return text;
}

struct TaskScore {
  int64_t count = 0, correct = 0;
  int64_t char_errors = 0, chars = 0, word_errors = 0, words = 0;
  double loss = 0;
  int64_t tokens = 0;
  nlohmann::json examples = nlohmann::json::array();
};

std::string percent(double x) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f%%", 100 * x);
  return text;
}

}  // namespace

std::vector<std::u32string> characters(const std::string& text) {
  std::vector<std::u32string> out;
  for (size_t i = 0; i < text.size();) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const size_t length = byte < 0x80       ? 1
                          : byte >> 5 == 6  ? 2
                          : byte >> 4 == 14 ? 3
                          : byte >> 3 == 30 ? 4
                                            : 1;
    char32_t code = length == 1 ? byte : byte & (0x3F >> (length - 1));
    size_t used = 1;
    for (; used < length && i + used < text.size(); ++used) {
      const auto next = static_cast<unsigned char>(text[i + used]);
      if (next >> 6 != 2) break;
      code = (code << 6) | (next & 0x3F);
    }
    if (used != length) {  // invalid: one byte, one character
      code = byte;
      used = 1;
    }
    out.push_back(std::u32string(1, code));
    i += used;
  }
  return out;
}

std::vector<std::u32string> words(const std::string& text) {
  std::vector<std::u32string> out;
  std::u32string word;
  for (const std::u32string& c : characters(text)) {
    if (c == U" ") {
      if (!word.empty()) out.push_back(word);
      word.clear();
    } else {
      word += c;
    }
  }
  if (!word.empty()) out.push_back(word);
  return out;
}

int64_t edit_distance(const std::vector<std::u32string>& a, const std::vector<std::u32string>& b) {
  std::vector<int64_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int64_t>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int64_t diagonal = row[0];
    row[0] = static_cast<int64_t>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int64_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::string normalize_answer(const std::string& text) {
  std::string out;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x80 && std::ispunct(byte)) continue;
    if (byte < 0x80 && std::isspace(byte)) {
      if (!out.empty() && out.back() != ' ') out += ' ';
      continue;
    }
    out += static_cast<char>(byte < 0x80 ? std::tolower(byte) : byte);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

EvalReport evaluate_checkpoint(const EvalOptions& options) {
  const std::string dir = resolve_checkpoint(options.checkpoint);
  const Device device = usable_device(options.device);
  OmniModel model = load_omni_model(dir);
  model.to(device);
  const Tokenizer tokenizer = Tokenizer::load((fs::path(dir) / "tokenizer.json").string());
  const ChatTemplate chat(tokenizer);
  std::vector<ManifestEntry> entries = load_manifest(options.manifest);
  if (options.max_samples > 0 && static_cast<int64_t>(entries.size()) > options.max_samples)
    entries.resize(options.max_samples);

  std::map<std::string, TaskScore> tasks;
  std::map<std::string, std::pair<double, int64_t>> modalities;  // loss sum, tokens
  nlohmann::json skipped = nlohmann::json::array();
  ProgressBar bar(static_cast<int64_t>(entries.size()), 0, options.progress);
  NoGradScope no_grad;
  for (size_t n = 0; n < entries.size(); ++n) {
    const ManifestEntry& entry = entries[n];
    bar.update(static_cast<int64_t>(n + 1), entry.where);
    const Conversation& conversation = entry.conversation;
    if (conversation.messages.back().role != Role::assistant) {
      skipped.push_back(
          {{"where", entry.where}, {"error", "the last turn is not the assistant's"}});
      continue;
    }
    std::vector<MediaInput> media;
    try {
      media = decode_media(conversation, model.config(), options.media);
    } catch (const Error& e) {
      skipped.push_back({{"where", entry.where}, {"error", e.what()}});
      continue;
    }
    const std::vector<MediaShape> shapes = model.shapes_of(media);
    const SequenceLayout full = chat.layout(conversation, shapes);
    const int64_t targets =
        std::count_if(full.targets.begin(), full.targets.end(), [](int32_t t) { return t >= 0; });
    const double loss = model.decoder_loss({&full}, {&media}).item() * static_cast<double>(targets);

    Conversation prompt = conversation;
    prompt.messages.pop_back();
    const SequenceLayout question = chat.layout(prompt, shapes, true);
    const std::vector<int32_t> ids =
        model.reply(question, media, options.max_new_tokens, chat.end_of_turn());
    const std::string predicted = tokenizer.decode(ids, true);
    const std::string expected =
        entry.answer.empty() ? reply_text(conversation.messages.back()) : entry.answer;

    const std::string task = entry.task.empty() ? "other" : entry.task;
    TaskScore& score = tasks[task];
    ++score.count;
    score.loss += loss;
    score.tokens += targets;
    auto& [modality_loss, modality_tokens] = modalities[modality(conversation)];
    modality_loss += loss;
    modality_tokens += targets;
    const std::string want = normalize_answer(expected), got = normalize_answer(predicted);
    score.correct += want == got;
    if (is_transcription(task)) {
      score.char_errors += edit_distance(characters(got), characters(want));
      score.chars += static_cast<int64_t>(characters(want).size());
      score.word_errors += edit_distance(words(got), words(want));
      score.words += static_cast<int64_t>(words(want).size());
    }
    if (score.examples.size() < 3)
      score.examples.push_back(
          {{"where", entry.where}, {"expected", expected}, {"got", predicted}});
  }
  bar.finish();

  nlohmann::json report = {{"checkpoint", dir},
                           {"manifest", options.manifest},
                           {"samples", entries.size() - skipped.size()},
                           {"skipped", skipped},
                           {"tasks", nlohmann::json::object()},
                           {"modalities", nlohmann::json::object()}};
  std::string md =
      "| task | samples | accuracy | CER | WER | loss/token |\n|---|---|---|---|---|---|\n";
  for (const auto& [task, s] : tasks) {
    nlohmann::json t = {{"samples", s.count},
                        {"accuracy", static_cast<double>(s.correct) / s.count},
                        {"loss", s.loss / std::max<int64_t>(s.tokens, 1)},
                        {"examples", s.examples}};
    std::string cer = "", wer = "";
    if (is_transcription(task)) {
      t["cer"] = static_cast<double>(s.char_errors) / std::max<int64_t>(s.chars, 1);
      t["wer"] = static_cast<double>(s.word_errors) / std::max<int64_t>(s.words, 1);
      cer = percent(t["cer"]);
      wer = percent(t["wer"]);
    }
    char loss[32];
    std::snprintf(loss, sizeof(loss), "%.3f", t["loss"].get<double>());
    md += cat("| ", task, " | ", s.count, " | ", percent(t["accuracy"]), " | ", cer, " | ", wer,
              " | ", loss, " |\n");
    report["tasks"][task] = t;
  }
  md += "\n| modality | loss/token | tokens |\n|---|---|---|\n";
  for (const auto& [name, sums] : modalities) {
    const double loss = sums.first / std::max<int64_t>(sums.second, 1);
    report["modalities"][name] = {{"loss", loss}, {"tokens", sums.second}};
    char text[32];
    std::snprintf(text, sizeof(text), "%.3f", loss);
    md += cat("| ", name, " | ", text, " | ", sums.second, " |\n");
  }
  if (!skipped.empty())
    md += cat("\n", skipped.size(), " samples skipped (see the JSON report).\n");
  return {report, md};
}

}  // namespace nuri
