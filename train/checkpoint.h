// Checkpoints: DIR/step-N/ holds model.safetensors, the optimizer state (optimizer.safetensors,
// or one optimizer-rank-R-of-N.safetensors shard per rank under ZeRO-1), trainer_state.json,
// config.json (the model's, Hugging Face keys), train_config.json, tokenizer.json and
// complete.json. A step directory is filled under a temporary name; once every rank has written
// its part, complete.json is written and the directory renamed into place, so a step-N that
// exists is complete. Only the newest `keep` survive.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "decoder/model.h"
#include "encoders/tokenizer.h"
#include "fusion/omni_model.h"
#include "kernels/comm/communicator.h"
#include "train/optimizer.h"

namespace nuri {

// Where a run stands: enough to continue it bit for bit.
struct TrainerState {
  int64_t step = 0;           // optimizer steps taken (including skipped ones)
  int64_t samples = 0;        // training windows consumed (the data position)
  int64_t skipped_steps = 0;  // steps dropped for non-finite gradients
  int64_t tokens = 0;         // training tokens consumed
  double elapsed_s = 0;       // training wall time so far
  uint64_t seed = 0;          // the data-order seed (the loader's only randomness)

  nlohmann::json to_json() const;
  // Errors name `origin` and the missing or ill-typed key.
  static TrainerState from_json(const nlohmann::json& json, const std::string& origin);
};

// How long the other ranks wait for rank 0 while it alone prepares data or writes a checkpoint,
// which may take long on a slow filesystem: a rank that dies meanwhile is reported by the launcher.
inline constexpr double kWaitForRankZero = 7 * 24 * 3600.0;

// Everything a checkpoint holds besides the run's position.
struct CheckpointContents {
  std::function<void(const std::string& path)> save_model;  // writes model.safetensors
  const nlohmann::json& model_config;                       // config.json
  // Writes this rank's optimizer state into the step directory (every rank calls it).
  std::function<void(const std::string& dir)> save_optimizer;
  const Tokenizer& tokenizer;
  const TrainerState& state;
  const nlohmann::json& train_config;
};

// Writes run_dir/step-<state.step>/ atomically, then removes all but the newest `keep` steps.
// Every rank of `communicator` calls it; rank 0 writes all but the optimizer state. A rank that
// throws leaves the others waiting at a barrier: its caller must stop the job (nuri train calls
// Communicator::abort). Returns the step directory.
std::string save_checkpoint(const std::string& run_dir, const CheckpointContents& contents,
                            int64_t keep, Communicator& communicator);

// Complete step numbers under run_dir, ascending (temporary directories are ignored).
std::vector<int64_t> list_checkpoints(const std::string& run_dir);

// A step directory as given, or the newest step under a run directory; errors say which.
std::string resolve_checkpoint(const std::string& path);

// The decoder of a checkpoint (config.json and model.safetensors) from a step or run directory,
// or from any directory holding those two files in the Hugging Face layout.
Decoder load_decoder(const std::string& checkpoint);

// A model ready to use: config, weights and tokenizer read from a step directory.
struct LoadedModel {
  Decoder model;
  Tokenizer tokenizer;
};
LoadedModel load_model(const std::string& checkpoint);
// The omni model of a checkpoint (config.json with its encoder sections, model.safetensors) from a
// step or run directory.
OmniModel load_omni_model(const std::string& checkpoint);

}  // namespace nuri
