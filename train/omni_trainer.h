// The training run of the omni model: tokenizer, packed manifests, the model with its encoders,
// frozen modules, and the shared training loop, all from one TrainConfig (model.type "omni").
#pragma once
#include "encoders/tokenizer.h"
#include "fusion/omni_model.h"
#include "train/config.h"
#include "train/trainer.h"

namespace nuri {

// Trains until config.train.steps; resumable like train_text_model. Held-out evaluation reports
// the loss per token overall and per task.
TrainSummary train_omni_model(const TrainConfig& config, const TrainOptions& options = {});

// The omni config a TrainConfig describes, with the vocabulary taken from the tokenizer.
OmniConfig omni_config(const TrainConfig& config, const Tokenizer& tokenizer);

}  // namespace nuri
