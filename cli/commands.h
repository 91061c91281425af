// The subcommands of `nuri`. Each add_* registers one on the app; its callback does the work and
// throws nuri::Error on bad input, which main() prints.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

namespace nuri::cli {

void add_tokenizer_command(CLI::App& app);  // nuri tokenizer train|encode|decode
void add_train_command(CLI::App& app);      // nuri train CONFIG.json
void add_generate_command(CLI::App& app);   // nuri generate --checkpoint DIR --prompt TEXT
void add_logits_command(CLI::App& app);     // nuri logits --checkpoint DIR --tokens ... --out F
void add_eval_command(CLI::App& app);       // nuri eval --checkpoint DIR --data MANIFEST
void add_media_command(CLI::App& app);      // nuri media mel IN --out FILE
void add_ask_command(CLI::App& app);        // nuri ask --checkpoint DIR --audio F --image F ...
void add_data_command(CLI::App& app);       // nuri data synth --out DIR

// The value of `word` when all of it is a decimal integer (token ids on the command line and on
// stdin), else nothing.
inline std::optional<long long> parse_integer(const std::string& word) {
  size_t used = 0;
  try {
    const long long value = std::stoll(word, &used);
    if (used == word.size()) return value;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

}  // namespace nuri::cli
