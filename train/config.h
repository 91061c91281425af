// The training config: one JSON file with the sections model, data, tokenizer, optim, schedule,
// train, parallel, checkpoint, eval and log. Every key has a default; an unknown key, or a value
// of the wrong type, is an error that names the key. `--set a.b=value` overrides one key.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "decoder/config.h"
#include "encoders/audio_encoder.h"
#include "encoders/vision_encoder.h"
#include "kernels/ops/adamw.h"

namespace nuri {

struct TrainConfig {
  nlohmann::json json;  // the whole resolved config, as saved next to checkpoints
  DecoderConfig model;
  bool omni = false;                        // model.type "omni": the decoder with encoders
  std::optional<AudioEncoderConfig> audio;  // model.audio, when enabled
  std::optional<VisionEncoderConfig> vision;

  struct Data {
    std::vector<std::string> train;  // UTF-8 text files, one document per blank-line block
    std::vector<std::string> valid;  // held-out text files
    std::string shard_dir;           // where tokenized shards are cached
    std::string train_manifest;      // omni: JSONL conversations
    std::string valid_manifest;
    std::string pack_dir;         // omni: packed shards; empty: <checkpoint.dir>/pack
    int64_t max_bad_samples = 0;  // samples that fail to decode and are skipped before aborting
    // omni: when set, training draws each task's samples in the share weight / sum of weights
    // (a task of the manifest not named weighs 1); when empty, every sample once per epoch.
    std::map<std::string, double> task_weights;
  } data;

  struct Tokenizer {
    std::string path;        // tokenizer.json
    int32_t vocab_size = 0;  // when training one because `path` does not exist yet
    bool train_if_missing = true;
  } tokenizer;

  struct Optim {
    AdamWOptions adamw;
    float grad_clip = 1.0f;  // max global L2 norm; 0 disables clipping
    // Learning-rate factor per module (fusion/omni_model.h kOmniModules); a text model is all
    // "decoder".
    std::map<std::string, double> lr_scale;
  } optim;

  struct Schedule {
    int64_t warmup_steps = 0;
    float min_lr_ratio = 0.1f;  // the cosine decays to lr * min_lr_ratio at decay_steps
    // The step where the cosine reaches its floor; 0: train.steps. Larger than train.steps, the
    // run stops part way down a longer schedule (Megatron's lr-decay-iters).
    int64_t decay_steps = 0;
  } schedule;

  struct Train {
    int64_t steps = 0;
    int64_t batch_size = 0;  // sequences per micro-batch
    int64_t seq_len = 0;     // tokens per sequence
    int64_t grad_accum = 1;  // micro-batches per optimizer step
    // "fp32", or "bf16": linear layers multiply in bf16 (kernels/ops/linear.h GemmPrecision)
    // with fp32 master weights, AdamW states and accumulation
    std::string precision;
    std::string device;  // "cpu", or "cuda": each rank on GPU local_rank % count
    uint64_t seed = 0;
    int threads = 0;                  // 0: the OpenMP default
    std::vector<std::string> freeze;  // modules not trained (fusion/omni_model.h kOmniModules)
    // A checkpoint (step-N or run directory) whose model weights start a fresh run: the optimizer
    // and the schedule begin anew, as for the next stage of a staged training. --resume wins.
    std::string init_from;
  } train;

  struct Parallel {
    int64_t dp = 0;          // data-parallel ranks: 0 means every rank of the job
    int64_t zero = 0;        // 1: AdamW states sharded over the ranks (ZeRO-1)
    double bucket_mb = 25;   // gradients are reduced in buckets of about this size
    double timeout_s = 300;  // a collective waiting longer stops the job (a rank died or hung)
  } parallel;

  struct Checkpoint {
    std::string dir;
    int64_t every = 0;  // steps between checkpoints; 0: only at the end
    int64_t keep = 3;   // the newest `keep` step-N directories stay
  } checkpoint;

  struct Eval {
    int64_t every = 0;    // steps between held-out evaluations; 0: only at the end
    int64_t batches = 0;  // held-out micro-batches per evaluation; 0: all of it
  } eval;

  struct Log {
    std::string metrics;       // JSONL path; empty: <checkpoint.dir>/metrics.jsonl
    int64_t every = 1;         // steps between metric lines
    bool progress = true;      // a progress bar when stderr is a terminal
    int64_t profile_step = 0;  // this step's kernel times go to kernel-profile.json; 0: none
  } log;
};

// Every key with its default value; the schema that configs are checked against. A list of
// integers whose default is empty (model.vision.stem_channels) stands as [null].
nlohmann::json default_train_config();

// Reads `path`, applies `overrides` ("a.b=value", value parsed as JSON or else taken as a string),
// checks every key and type, and fills the typed fields. Errors name the file and the key.
TrainConfig load_train_config(const std::string& path,
                              const std::vector<std::string>& overrides = {});

// The same from an already parsed document; `origin` names it in errors.
TrainConfig parse_train_config(nlohmann::json json, const std::vector<std::string>& overrides,
                               const std::string& origin);

}  // namespace nuri
