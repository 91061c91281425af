// nuri data synth --out DIR [options]: generate the synthetic multimodal corpus.
// nuri data pack CONFIG.json [--set k=v]: pack the config's manifests for training.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "kernels/error.h"
#include "kernels/log.h"
#include "train/omni_trainer.h"
#include "train/synth.h"

namespace nuri::cli {

void add_data_command(CLI::App& app) {
  CLI::App* data = app.add_subcommand("data", "Build training data");
  data->require_subcommand(1);

  auto options = std::make_shared<SynthOptions>();
  CLI::App* synth = data->add_subcommand(
      "synth", "Generate a synthetic corpus of speech, images and video with questions about them");
  synth->add_option("--out", options->out, "corpus directory to create")->required();
  synth->add_option("--train", options->train, "samples per task in the train split")
      ->capture_default_str();
  synth->add_option("--valid", options->valid, "samples per task in the valid split")
      ->capture_default_str();
  synth->add_option("--test", options->test, "samples per task in the test split")
      ->capture_default_str();
  auto train_of = std::make_shared<std::vector<std::string>>();
  synth->add_option("--train-of", *train_of,
                    "train samples of one task instead of --train, as TASK=N (repeatable)");
  synth->add_option("--tasks", options->tasks, "tasks to generate, comma separated (default: all)")
      ->delimiter(',');
  synth->add_option("--seed", options->seed, "random seed (same seed, same corpus)")
      ->capture_default_str();
  synth->add_option("--image-size", options->image_size, "image side in pixels")
      ->capture_default_str();
  synth->add_option("--video-size", options->video_size, "video frame side in pixels (even)")
      ->capture_default_str();
  synth->add_option("--fps", options->video_fps, "video frames per second")->capture_default_str();
  synth->add_option("--threads", options->threads, "worker threads (0: all cores)")
      ->capture_default_str();
  synth->add_option("--font", options->font, "TrueType font with Hangul (default: NanumGothic)");
  synth->add_flag("--force", options->force, "replace a non-empty --out");
  synth->callback([options, train_of] {
    for (const std::string& assignment : *train_of) {
      const auto equals = assignment.find('=');
      const auto count =
          equals == std::string::npos ? std::nullopt : parse_integer(assignment.substr(equals + 1));
      NURI_CHECK(count, "synth: --train-of '", assignment, "' is not of the form TASK=N");
      options->train_of[assignment.substr(0, equals)] = *count;
    }
    options->progress = true;
    const SynthSummary summary = synthesize_corpus(*options);
    std::fprintf(stderr, "synth: wrote %s in %.1f s: %lld media files, %.1f MiB\n",
                 options->out.c_str(), summary.seconds, static_cast<long long>(summary.files),
                 static_cast<double>(summary.bytes) / (1 << 20));
    std::fprintf(stderr, "  %-22s", "task");
    for (const char* split : kSynthSplits) std::fprintf(stderr, " %6s", split);
    std::fprintf(stderr, "\n");
    for (size_t task = 0; task < kSynthTasks.size(); ++task) {
      std::fprintf(stderr, "  %-22s", kSynthTasks[task]);
      for (size_t split = 0; split < kSynthSplits.size(); ++split) {
        std::fprintf(stderr, " %6lld", static_cast<long long>(summary.counts[split][task]));
      }
      std::fprintf(stderr, "\n");
    }
  });

  struct PackArgs {
    std::string config;
    std::vector<std::string> overrides;
  };
  auto pack_args = std::make_shared<PackArgs>();
  CLI::App* pack = data->add_subcommand(
      "pack",
      "Pre-compute tokens, log-mels and resized pixels of an omni config's manifests into shards");
  pack->add_option("config", pack_args->config, "an omni training config")->required();
  pack->add_option("--set", pack_args->overrides, "override one key: section.key=value");
  pack->callback([pack_args] {
    const TrainConfig config = load_train_config(pack_args->config, pack_args->overrides);
    NURI_CHECK(config.omni, pack_args->config, ": model.type is not \"omni\"; nothing to pack");
    const Tokenizer tokenizer = omni_tokenizer(config);
    const ChatTemplate chat(tokenizer);
    const OmniModel model(omni_config(config, tokenizer));
    for (const std::string split : {"train", "valid"}) {
      if (split == "valid" && config.data.valid_manifest.empty()) continue;
      const PackedDataset packed = ensure_pack(config, split, model, chat);
      log_info(split, ": ", packed.size(), " samples (", packed.skipped(), " skipped) in ",
               omni_pack_dir(config, split));
    }
  });
}

}  // namespace nuri::cli
