// The training loop for the text model: tokenizer, data, model, AdamW, evaluation, metrics and
// checkpoints, all from one TrainConfig.
#pragma once

#include <atomic>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "train/config.h"

namespace nuri {

class Communicator;

struct TrainOptions {
  std::string resume;                       // a step or run directory to continue from
  const std::atomic<bool>* stop = nullptr;  // set (e.g. by SIGINT) to checkpoint and return
  Communicator* communicator = nullptr;     // the data-parallel ranks; null: this process alone
};

// How a run ended.
struct TrainSummary {
  int64_t step = 0;
  int64_t skipped_steps = 0;
  double eval_loss = NAN;     // the last held-out loss, NaN without held-out data
  double unigram_loss = NAN;  // the unigram baseline on the same held-out tokens
  nlohmann::json eval;        // the last evaluation's metrics
  double elapsed_s = 0;       // training wall time (across resumes)
  std::string checkpoint;     // the last step directory written
  bool interrupted = false;   // stopped early through options.stop
};

// Trains until config.train.steps. With options.resume it continues from that checkpoint and
// gives, on the CPU, the same losses bit for bit as an uninterrupted run.
TrainSummary train_text_model(const TrainConfig& config, const TrainOptions& options = {});

}  // namespace nuri
