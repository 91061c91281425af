// `nuri eval`: scores an omni checkpoint on a manifest. Every conversation's last assistant turn is
// both scored as loss (per task and per modality) and regenerated greedily from the turns before
// it: transcription tasks get a character and a word error rate, the other tasks exact-match
// accuracy (case, surrounding punctuation and repeated spaces ignored).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/omni_data.h"

namespace nuri {

struct EvalOptions {
  std::string checkpoint;  // a step or run directory
  std::string manifest;
  int64_t max_samples = 0;  // 0: all
  int64_t max_new_tokens = 48;
  MediaDecodeOptions media;
  bool progress = true;
  std::string device = "cpu";  // where the model runs: cpu, cuda or cuda:N
};

struct EvalReport {
  nlohmann::json json;
  std::string markdown;
};

EvalReport evaluate_checkpoint(const EvalOptions& options);

// Levenshtein distance between two sequences (characters or words).
int64_t edit_distance(const std::vector<std::u32string>& a, const std::vector<std::u32string>& b);
// The text as scored: lower-case ASCII, punctuation dropped, whitespace runs made one space.
std::string normalize_answer(const std::string& text);
// Unicode characters (invalid UTF-8 bytes count one each) and whitespace-separated words.
std::vector<std::u32string> characters(const std::string& text);
std::vector<std::u32string> words(const std::string& text);

}  // namespace nuri
