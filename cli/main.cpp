// The `nuri` command.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "kernels/cpu/blas.h"
#include "kernels/device.h"
#include "kernels/error.h"

namespace {

// One line naming the version, what this build can run on and the CPU kernels it runs.
std::string version_line() {
  return nuri::cat("nuri ", NURI_VERSION_STRING,
                   " (cuda: ", nuri::cuda_compiled() ? "compiled" : "not compiled",
                   ", OpenBLAS kernels: ", nuri::cpu::blas_core(), ")");
}

}  // namespace

int main(int argc, char** argv) {
  nuri::cpu::reexec_for_blas_core(argv);
  CLI::App app{
      "nuri: an engine for omni multimodal foundation models (text, speech, images, video)",
      "nuri"};
  app.set_version_flag("--version", version_line());
  app.require_subcommand(0, 1);
  nuri::cli::add_tokenizer_command(app);
  nuri::cli::add_train_command(app);
  nuri::cli::add_generate_command(app);
  nuri::cli::add_logits_command(app);
  nuri::cli::add_eval_command(app);
  nuri::cli::add_media_command(app);
  nuri::cli::add_ask_command(app);
  nuri::cli::add_data_command(app);
  // Subcommands run inside parse(): a bad argument is a CLI11 ParseError, bad input a nuri::Error.
  try {
    app.parse(argc, argv);
    if (app.get_subcommands().empty()) {
      std::printf("%s", app.help().c_str());
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nuri: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
