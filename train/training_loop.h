// The training loop every model shares: gradient accumulation, AdamW with warmup-cosine, clipping
// and non-finite step skipping, held-out evaluation, metrics, a progress bar, checkpoints, and
// resuming bit for bit. A TrainingJob says what is trained and how a micro-batch's loss is made.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "encoders/tokenizer.h"
#include "kernels/comm/communicator.h"
#include "kernels/parameter.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/trainer.h"

namespace nuri {

// The loss of one micro-batch and how many target tokens it covered.
struct MicroBatchLoss {
  Tensor loss;  // scalar, recorded on the active tape
  int64_t tokens = 0;
  // Optional scalar added to loss for the gradient and logged apart as "aux_loss" (the omni
  // model's weighted CTC term), so that "loss" stays comparable from step to step.
  Tensor auxiliary;
};

struct TrainingJob {
  std::vector<NamedParameter> parameters;  // the trainable ones
  // Samples [first, first + count) of the run's shuffled data order; called with a tape active.
  std::function<MicroBatchLoss(int64_t first, int64_t count)> micro_batch;
  // Held-out metrics with "eval_loss" (no tape active); empty when there is no held-out data.
  std::function<nlohmann::json()> evaluate;
  // A line that explains an evaluation's metrics on a terminal-less log.
  std::function<std::string(const nlohmann::json&)> describe_eval;
  std::function<void(const std::string& path)> save_model;  // model.safetensors
  // Loads model.safetensors. With `missing` (train.init_from), a model that can start from part
  // of its weights keeps the parameters the file lacks as initialised and lists them there;
  // otherwise every parameter must be in the file.
  std::function<void(const std::string& path, std::vector<std::string>* missing)> load_model;
  // The module (optim.lr_scale's key) a parameter belongs to; empty: every one is "decoder".
  std::function<std::string(const std::string& name)> module_of;
  nlohmann::json model_config;  // config.json; a resumed checkpoint's must be equal
  // A checkpoint's config.json read into model_config's form, keys it lacks taking their defaults
  // (so that a checkpoint from before a key existed compares equal).
  std::function<nlohmann::json(const nlohmann::json&)> read_model_config;
  std::string description;  // logged once: parameters, layers, ...
};

// A new run never mixes its checkpoints with an earlier run's (the newest step would win): without
// options.resume, checkpoint.dir must hold no step yet.
void check_fresh_run(const TrainConfig& config, const TrainOptions& options);

// The configured tokenizer, trained on `texts` (UTF-8 files) first when it does not exist yet.
Tokenizer ensure_tokenizer(const TrainConfig& config, const std::vector<std::string>& texts);

// The decoder config with the vocabulary and end-of-text id taken from the tokenizer.
DecoderConfig decoder_config(const TrainConfig& config, const Tokenizer& tokenizer);

// The device this rank trains on: the CPU, or for train.device "cuda" GPU local_rank % count. A
// build without CUDA or a machine without a GPU is an error that says so.
Device training_device(const TrainConfig& config, const TrainOptions& options);
// Runs `prepare` on rank 0 first, then on the other ranks: what rank 0 writes (a tokenizer, token
// shards, packs) the others find in place instead of writing it at the same time.
template <class Prepare>
auto rank_zero_first(const TrainOptions& options, Prepare&& prepare) {
  Communicator* communicator = options.communicator;
  if (communicator == nullptr || communicator->size() == 1) return prepare();
  if (communicator->rank() != 0) communicator->barrier(kWaitForRankZero);
  auto prepared = prepare();
  if (communicator->rank() == 0) communicator->barrier(kWaitForRankZero);
  communicator->barrier(kWaitForRankZero);  // until the other ranks have read what rank 0 wrote
  return prepared;
}

// Trains `job` until config.train.steps, writing checkpoints (with `tokenizer`) and metrics under
// config.checkpoint.dir. With options.resume it continues from that checkpoint. Over several
// ranks (options.communicator) each micro-batch of a step goes to one rank, rank r taking every
// ranks-th one from r, so that N ranks with grad_accum A follow the run of one rank with N x A;
// rank 0 alone logs, writes metrics and writes all but the optimizer shards of a checkpoint.
TrainSummary run_training(const TrainConfig& config, const TrainOptions& options, TrainingJob& job,
                          const Tokenizer& tokenizer);

}  // namespace nuri
