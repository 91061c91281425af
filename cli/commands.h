// The subcommands of `nuri`. Each add_* registers one on the app; its callback does the work and
// throws nuri::Error on bad input, which main() prints.
#pragma once

#include <CLI/CLI.hpp>

namespace nuri::cli {

void add_tokenizer_command(CLI::App& app);  // nuri tokenizer train|encode|decode
void add_train_command(CLI::App& app);      // nuri train CONFIG.json
void add_generate_command(CLI::App& app);   // nuri generate --checkpoint DIR --prompt TEXT
void add_logits_command(CLI::App& app);     // nuri logits --checkpoint DIR --tokens ... --out F

}  // namespace nuri::cli
