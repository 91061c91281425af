// nuri eval --checkpoint DIR --data MANIFEST [--out PREFIX] [--max-samples N]
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "kernels/file_io.h"
#include "kernels/log.h"
#include "train/checkpoint.h"
#include "train/evaluation.h"

namespace nuri::cli {

void add_eval_command(CLI::App& app) {
  auto* command = app.add_subcommand(
      "eval", "Score an omni checkpoint on a manifest: CER/WER, accuracy per task, loss");
  auto options = std::make_shared<EvalOptions>();
  auto out = std::make_shared<std::string>();
  command->add_option("--checkpoint", options->checkpoint, "a step-N or run directory")->required();
  command->add_option("--data", options->manifest, "a JSONL manifest")->required();
  command->add_option("--out", *out,
                      "write PREFIX.json and PREFIX.md (default: eval-<manifest> in the "
                      "checkpoint's directory)");
  command->add_option("--max-samples", options->max_samples, "score only the first N");
  command->add_option("--max-new-tokens", options->max_new_tokens, "longest reply");
  command->add_option("--device", options->device, "where the model runs: cpu, cuda or cuda:N")
      ->capture_default_str();
  command->callback([options, out] {
    const EvalReport report = evaluate_checkpoint(*options);
    const std::string prefix =
        !out->empty() ? *out
                      : (std::filesystem::path(report.json["checkpoint"].get<std::string>()) /
                         ("eval-" + std::filesystem::path(options->manifest).stem().string()))
                            .string();
    write_file_atomic(
        prefix + ".json",
        report.json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    write_file_atomic(prefix + ".md", report.markdown);
    std::cout << report.markdown << std::flush;
    log_info("wrote ", prefix, ".json and ", prefix, ".md");
  });
}

}  // namespace nuri::cli
