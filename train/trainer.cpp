#include "train/trainer.h"

#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "decoder/model.h"
#include "encoders/tokenizer.h"
#include "kernels/autograd.h"
#include "kernels/error.h"
#include "kernels/file_io.h"
#include "kernels/log.h"
#include "kernels/ops/elementwise.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "train/optimizer.h"
#include "train/text_data.h"

namespace nuri {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

// The configured tokenizer, trained on the training text first when it does not exist yet.
Tokenizer ensure_tokenizer(const TrainConfig& config) {
  const auto& t = config.tokenizer;
  if (fs::exists(t.path)) return Tokenizer::load(t.path);
  NURI_CHECK(t.train_if_missing, "tokenizer ", t.path,
             " does not exist (tokenizer.train_if_missing is false)");
  log_info("training a ", t.vocab_size, "-token tokenizer on ", config.data.train.size(),
           " file(s)");
  TokenizerTrainOptions options;
  options.inputs = config.data.train;
  options.vocab_size = t.vocab_size;
  options.progress = config.log.progress && ::isatty(STDERR_FILENO);
  Tokenizer tokenizer = train_tokenizer(options);
  const auto parent = fs::path(t.path).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  tokenizer.save(t.path);
  return tokenizer;
}

// Mean held-out loss over the first `windows` windows, in micro-batches of `batch`.
double evaluate(const Decoder& model, const WindowLoader& loader, int64_t windows, int64_t batch) {
  NoGradScope no_grad;
  double total = 0;
  for (int64_t first = 0; first < windows; first += batch) {
    const int64_t count = std::min(batch, windows - first);
    const Batch b = loader.ordered_batch(first, count);
    total += static_cast<double>(model.loss(b.ids, b.targets).item()) * static_cast<double>(count);
  }
  return total / static_cast<double>(windows);
}

// The model's config with the vocabulary and end-of-text id taken from the tokenizer.
DecoderConfig model_config(const TrainConfig& config, const Tokenizer& tokenizer) {
  DecoderConfig model = config.model;
  if (model.vocab_size == 0) model.vocab_size = tokenizer.vocab_size();
  NURI_CHECK(model.vocab_size >= tokenizer.vocab_size(), "config: model.vocab_size ",
             model.vocab_size, " is smaller than the tokenizer's ", tokenizer.vocab_size(),
             " tokens");
  model.eos_token_id = *tokenizer.token_to_id("<|endoftext|>");
  model.validate();
  return model;
}

}  // namespace

TrainSummary train_text_model(const TrainConfig& config, const TrainOptions& options) {
  if (config.train.threads > 0) omp_set_num_threads(config.train.threads);
  const auto& tc = config.train;
  // A new run never mixes its checkpoints with an earlier run's (the newest step would win).
  NURI_CHECK(!options.resume.empty() || list_checkpoints(config.checkpoint.dir).empty(),
             "checkpoint.dir ", config.checkpoint.dir,
             " holds checkpoints of an earlier run: continue it with --resume ",
             config.checkpoint.dir, ", or choose another checkpoint.dir");
  const Tokenizer tokenizer = ensure_tokenizer(config);
  NURI_CHECK(tokenizer.token_to_id("<|endoftext|>"), "tokenizer ", config.tokenizer.path,
             " has no <|endoftext|> token");
  const DecoderConfig mc = model_config(config, tokenizer);
  const std::string shard_dir = config.data.shard_dir.empty()
                                    ? (fs::path(config.checkpoint.dir) / "shards").string()
                                    : config.data.shard_dir;
  const TokenStream train_stream =
      load_token_stream(config.data.train, tokenizer, shard_dir, "train");
  const bool has_valid = !config.data.valid.empty();
  const TokenStream valid_stream =
      has_valid ? load_token_stream(config.data.valid, tokenizer, shard_dir, "valid")
                : TokenStream{};

  Decoder model(mc);
  AdamW optimizer(model.parameters(), config.optim.adamw, config.optim.grad_clip);
  TrainerState state;
  state.seed = tc.seed;
  if (!options.resume.empty()) {
    const std::string dir = resolve_checkpoint(options.resume);
    const std::string state_path = (fs::path(dir) / "trainer_state.json").string();
    const auto state_json = nlohmann::json::parse(read_file(state_path), nullptr, false);
    NURI_CHECK(!state_json.is_discarded(), state_path, ": not valid JSON");
    state = TrainerState::from_json(state_json, state_path);
    NURI_CHECK(state.seed == tc.seed, state_path, ": the run used train.seed ", state.seed,
               ", the config says ", tc.seed);
    const auto saved =
        nlohmann::json::parse(read_file((fs::path(dir) / "config.json").string()), nullptr, false);
    NURI_CHECK(!saved.is_discarded() && DecoderConfig::from_json(saved).to_json() == mc.to_json(),
               dir, ": the checkpoint's model config differs from this config's model section");
    model.load((fs::path(dir) / "model.safetensors").string());
    optimizer.load_state((fs::path(dir) / "optimizer.safetensors").string());
    optimizer.set_steps_taken(state.step - state.skipped_steps);
    log_info("resuming from ", dir, " at step ", state.step);
  } else {
    Generator generator{tc.seed, 0};
    model.init(generator);
  }
  log_info("model: ", mc.parameter_count(), " parameters, ", mc.num_hidden_layers,
           " layers, width ", mc.hidden_size, ", vocabulary ", mc.vocab_size, "; ",
           omp_get_max_threads(), " threads");

  const WindowLoader train_loader(train_stream, tc.seq_len, tc.seed);
  TrainSummary summary;
  std::optional<WindowLoader> valid_loader;
  int64_t eval_windows = 0;
  if (has_valid) {
    valid_loader.emplace(valid_stream, tc.seq_len, tc.seed);
    eval_windows = config.eval.batches > 0
                       ? std::min(valid_loader->windows(), config.eval.batches * tc.batch_size)
                       : valid_loader->windows();
    summary.unigram_loss =
        unigram_loss(train_stream, valid_stream, mc.vocab_size, tc.seq_len, eval_windows);
  }

  const std::string metrics_path =
      config.log.metrics.empty() ? (fs::path(config.checkpoint.dir) / "metrics.jsonl").string()
                                 : config.log.metrics;
  const std::string plot_path = (fs::path(config.checkpoint.dir) / "loss.png").string();
  MetricsLog metrics(metrics_path, options.resume.empty() ? -1 : state.step);
  ProgressBar bar(tc.steps, state.step, config.log.progress);
  const bool print_lines = !bar.active();

  auto checkpoint = [&] {
    summary.checkpoint =
        save_checkpoint(config.checkpoint.dir, {model, optimizer, tokenizer, state, config.json},
                        config.checkpoint.keep);
    if (!plot_loss_curve(metrics_path, plot_path)) log_warn("built without OpenCV: no loss plot");
  };
  auto run_eval = [&] {
    summary.eval_loss = evaluate(model, *valid_loader, eval_windows, tc.batch_size);
    metrics.write({{"step", state.step},
                   {"eval_loss", summary.eval_loss},
                   {"eval_ppl", std::exp(summary.eval_loss)},
                   {"unigram_loss", summary.unigram_loss}});
    if (print_lines) {
      log_info("step ", state.step, ": held-out loss ", summary.eval_loss, " (perplexity ",
               std::exp(summary.eval_loss), "), unigram baseline ", summary.unigram_loss);
    }
  };

  const int64_t tokens_per_step = tc.batch_size * tc.seq_len * tc.grad_accum;
  auto interval_start = Clock::now();
  int64_t interval_tokens = 0;
  double interval_loss = 0;
  int64_t interval_steps = 0;
  int64_t last_saved = options.resume.empty() ? -1 : state.step;
  while (state.step < tc.steps) {
    if (options.stop && options.stop->load()) {
      summary.interrupted = true;
      break;
    }
    const auto step_start = Clock::now();
    double step_loss = 0;
    for (int64_t micro = 0; micro < tc.grad_accum; ++micro) {
      const Batch batch = train_loader.shuffled_batch(state.samples, tc.batch_size);
      state.samples += tc.batch_size;
      Tape tape;
      Tensor scaled_loss;
      {
        TapeScope scope(tape);
        const Tensor loss = model.loss(batch.ids, batch.targets);
        step_loss += static_cast<double>(loss.item()) / static_cast<double>(tc.grad_accum);
        scaled_loss = scale(loss, 1.0f / static_cast<float>(tc.grad_accum));
      }
      tape.backward(scaled_loss);
    }
    const double lr = warmup_cosine_lr(state.step + 1, tc.steps, config.schedule.warmup_steps,
                                       config.optim.adamw.lr, config.schedule.min_lr_ratio);
    const StepResult result = optimizer.step(lr);
    ++state.step;
    state.tokens += tokens_per_step;
    if (result.skipped) {
      ++state.skipped_steps;
      log_warn("step ", state.step, ": non-finite gradients (norm ", result.grad_norm,
               "); step skipped");
    }
    state.elapsed_s += std::chrono::duration<double>(Clock::now() - step_start).count();
    interval_tokens += tokens_per_step;
    interval_loss += step_loss;
    ++interval_steps;

    const bool last = state.step == tc.steps;
    if (state.step % config.log.every == 0 || last) {
      const double seconds = std::chrono::duration<double>(Clock::now() - interval_start).count();
      const double tokens_per_s = interval_tokens / std::max(seconds, 1e-9);
      const double mean_loss = interval_loss / static_cast<double>(interval_steps);
      metrics.write({{"step", state.step},
                     {"loss", step_loss},
                     {"lr", lr},
                     {"grad_norm", result.grad_norm},
                     {"tokens_per_s", tokens_per_s},
                     {"elapsed_s", state.elapsed_s},
                     {"tokens", state.tokens},
                     {"skipped_steps", state.skipped_steps}});
      char status[128];
      std::snprintf(status, sizeof(status), "loss %.4f lr %.2e %.0f tok/s", mean_loss, lr,
                    tokens_per_s);
      bar.update(state.step, status);
      if (print_lines) log_info("step ", state.step, "/", tc.steps, ": ", status);
      interval_start = Clock::now();
      interval_tokens = 0;
      interval_loss = 0;
      interval_steps = 0;
    }
    if (has_valid && ((config.eval.every > 0 && state.step % config.eval.every == 0) || last))
      run_eval();
    if ((config.checkpoint.every > 0 && state.step % config.checkpoint.every == 0) || last) {
      checkpoint();
      last_saved = state.step;
    }
  }
  bar.finish();
  if (summary.interrupted && state.step != last_saved) {
    log_info("stopping at step ", state.step, ": writing a checkpoint");
    checkpoint();
  }
  summary.step = state.step;
  summary.skipped_steps = state.skipped_steps;
  if (summary.checkpoint.empty() && state.step == last_saved)
    summary.checkpoint = resolve_checkpoint(config.checkpoint.dir);
  return summary;
}

}  // namespace nuri
