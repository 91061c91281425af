// nuri train CONFIG.json [--set key=value ...] [--resume DIR]
#include <csignal>

#include "cli/commands.h"
#include "kernels/comm/communicator.h"
#include "kernels/comm/nccl_communicator.h"
#include "kernels/log.h"
#include "train/omni_trainer.h"
#include "train/trainer.h"

namespace nuri::cli {

namespace {

// Set by the first SIGINT or SIGTERM: the run checkpoints and returns. A second one kills it.
std::atomic<bool> stop_requested{false};

extern "C" void request_stop(int signal) {
  stop_requested.store(true);
  std::signal(signal, SIG_DFL);
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto* command = app.add_subcommand("train", "Train a model from a JSON config");
  struct Args {
    std::string config, resume;
    std::vector<std::string> overrides;
  };
  auto args = std::make_shared<Args>();
  command->add_option("config", args->config, "the config file (configs/*.json)")->required();
  command->add_option("--set", args->overrides, "override one key: section.key=value (repeatable)");
  command->add_option("--resume", args->resume, "continue from a step-N or run directory");
  command->callback([args] {
    const TrainConfig config = load_train_config(args->config, args->overrides);
    // Under mpirun or srun this process is one rank of a data-parallel job.
    const std::unique_ptr<Communicator> world =
        make_world_communicator({.timeout_s = config.parallel.timeout_s});
    if (world->rank() > 0 && log_level() == LogLevel::info) set_log_level(LogLevel::warn);
    // GPU ranks reduce over NCCL, bootstrapped by the MPI world.
    const std::unique_ptr<Communicator> nccl =
        config.train.device == "cuda" && world->size() > 1
            ? make_nccl_communicator(*world, {.timeout_s = config.parallel.timeout_s})
            : nullptr;
    std::signal(SIGINT, request_stop);
    std::signal(SIGTERM, request_stop);
    const TrainOptions options{args->resume, &stop_requested, nccl ? nccl.get() : world.get()};
    TrainSummary summary;
    try {
      summary = config.omni ? train_omni_model(config, options) : train_text_model(config, options);
    } catch (const std::exception& e) {
      if (world->size() == 1) throw;
      // The other ranks would wait for this one until their timeout: stop the job now.
      log_line(LogLevel::error, e.what());
      world->abort(1);
    }
    if (config.omni && !summary.eval.is_null()) {
      log_info("held-out loss per token: ", summary.eval.dump());
    } else if (!std::isnan(summary.eval_loss)) {
      log_info("held-out loss ", summary.eval_loss, " nats/token against a unigram baseline of ",
               summary.unigram_loss);
    }
    log_info(summary.interrupted ? "interrupted" : "finished", " at step ", summary.step, " (",
             summary.skipped_steps, " skipped); checkpoint ", summary.checkpoint);
    if (summary.interrupted) throw CLI::RuntimeError(130);
  });
}

}  // namespace nuri::cli
