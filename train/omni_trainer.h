// The training run of the omni model: tokenizer, packed manifests, the model with its encoders,
// frozen modules, and the shared training loop, all from one TrainConfig (model.type "omni").
#pragma once
#include "encoders/tokenizer.h"
#include "fusion/omni_model.h"
#include "train/config.h"
#include "train/omni_data.h"
#include "train/trainer.h"

namespace nuri {

// Trains until config.train.steps; resumable like train_text_model. Held-out evaluation reports
// the loss per token overall and per task.
TrainSummary train_omni_model(const TrainConfig& config, const TrainOptions& options = {});

// The configured tokenizer; when it does not exist yet, it is trained on the text of
// data.train_manifest (and any data.train files).
Tokenizer omni_tokenizer(const TrainConfig& config);

// Where a split ("train" or "valid") is packed: data.pack_dir/SPLIT, or checkpoint.dir/pack/SPLIT.
std::string omni_pack_dir(const TrainConfig& config, const std::string& split);

// The packed data of a split's manifest, packed first unless an up-to-date pack (same encoder
// configs and tokenizer) is there.
PackedDataset ensure_pack(const TrainConfig& config, const std::string& split,
                          const OmniModel& model, const ChatTemplate& chat);

// The omni config a TrainConfig describes, with the vocabulary taken from the tokenizer.
OmniConfig omni_config(const TrainConfig& config, const Tokenizer& tokenizer);

}  // namespace nuri
