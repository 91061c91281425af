#include "train/training_loop.h"

#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "kernels/autograd.h"
#include "kernels/error.h"
#include "kernels/file_io.h"
#include "kernels/log.h"
#include "kernels/ops/elementwise.h"
#include "kernels/ops/linear.h"
#include "kernels/profiler.h"
#include "train/checkpoint.h"
#include "train/data_parallel.h"
#include "train/metrics.h"
#include "train/optimizer.h"

namespace nuri {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// Writes one step's kernel times to `path` (JSON) and logs the costliest five.
void report_kernel_profile(const std::string& path, int64_t step, double step_ms,
                           const std::vector<KernelTime>& kernels) {
  const auto ms = [](double value) {
    char text[32];
    std::snprintf(text, sizeof(text), "%.1f ms", value);
    return std::string(text);
  };
  nlohmann::json rows = nlohmann::json::array();
  double in_kernels = 0;
  std::string top;
  for (const KernelTime& k : kernels) {
    rows.push_back(
        {{"kernel", k.kernel}, {"device", k.device.str()}, {"calls", k.calls}, {"ms", k.ms}});
    in_kernels += k.ms;
    if (rows.size() <= 5) top += cat(rows.size() > 1 ? ", " : "", k.kernel, " ", ms(k.ms));
  }
  const nlohmann::json report = {{"step", step},
                                 {"step_ms", step_ms},
                                 {"outside_kernels_ms", step_ms - in_kernels},
                                 {"kernels", rows}};
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  write_file_atomic(path, report.dump(2) + "\n");
  log_info("step ", step, " took ", ms(step_ms), ", ", ms(in_kernels), " in kernels: ", top,
           " (all kernels in ", path, ")");
}

}  // namespace

void check_fresh_run(const TrainConfig& config, const TrainOptions& options) {
  NURI_CHECK(!options.resume.empty() || list_checkpoints(config.checkpoint.dir).empty(),
             "checkpoint.dir ", config.checkpoint.dir,
             " holds checkpoints of an earlier run: continue it with --resume ",
             config.checkpoint.dir, ", or choose another checkpoint.dir");
}

Tokenizer ensure_tokenizer(const TrainConfig& config, const std::vector<std::string>& texts) {
  const auto& t = config.tokenizer;
  if (fs::exists(t.path)) return Tokenizer::load(t.path);
  NURI_CHECK(t.train_if_missing, "tokenizer ", t.path,
             " does not exist (tokenizer.train_if_missing is false)");
  log_info("training a ", t.vocab_size, "-token tokenizer on ", texts.size(), " file(s)");
  TokenizerTrainOptions options;
  options.inputs = texts;
  options.vocab_size = t.vocab_size;
  options.progress = config.log.progress && ::isatty(STDERR_FILENO);
  Tokenizer tokenizer = train_tokenizer(options);
  const auto parent = fs::path(t.path).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  tokenizer.save(t.path);
  return tokenizer;
}

DecoderConfig decoder_config(const TrainConfig& config, const Tokenizer& tokenizer) {
  DecoderConfig model = config.model;
  if (model.vocab_size == 0) model.vocab_size = tokenizer.vocab_size();
  NURI_CHECK(model.vocab_size >= tokenizer.vocab_size(), "config: model.vocab_size ",
             model.vocab_size, " is smaller than the tokenizer's ", tokenizer.vocab_size(),
             " tokens");
  const std::optional<int32_t> end_of_text = tokenizer.token_to_id("<|endoftext|>");
  NURI_CHECK(end_of_text.has_value(), "tokenizer ", config.tokenizer.path,
             " has no <|endoftext|> token");
  model.eos_token_id = *end_of_text;
  model.validate();
  return model;
}

namespace {

// A checkpoint's weights fit this run only if they were made for the same model section.
// The keys (JSON pointers) where a checkpoint's model config differs from the job's, with both
// values; empty when they agree.
std::string model_config_changes(const std::string& dir, const TrainingJob& job) {
  const std::string path = (fs::path(dir) / "config.json").string();
  const auto saved = nlohmann::json::parse(read_file(path), nullptr, false);
  NURI_CHECK(!saved.is_discarded(), path, ": not valid JSON");
  nlohmann::json ours = saved;
  try {
    if (job.read_model_config) ours = job.read_model_config(saved);
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  std::string changes;
  for (const auto& change : nlohmann::json::diff(ours, job.model_config)) {
    const nlohmann::json::json_pointer key(change["path"].get<std::string>());
    changes += cat(changes.empty() ? "" : ", ", key.to_string(), " ",
                   ours.contains(key) ? ours[key].dump() : "(none)", " -> ",
                   job.model_config.contains(key) ? job.model_config[key].dump() : "(none)");
  }
  return changes;
}

}  // namespace

Device training_device(const TrainConfig& config, const TrainOptions& options) {
  if (config.train.device == "cpu") return Device::cpu();
  NURI_CHECK(cuda_compiled(),
             "config: train.device is \"cuda\" but this build has no CUDA backend (configure with "
             "-DNURI_CUDA=ON)");
  const int devices = cuda_device_count();
  NURI_CHECK(devices > 0, "config: train.device is \"cuda\" but no GPU is visible");
  const int local_rank = options.communicator ? options.communicator->local_rank() : 0;
  return Device::cuda(local_rank % devices);
}

TrainSummary run_training(const TrainConfig& config, const TrainOptions& options, TrainingJob& job,
                          const Tokenizer& tokenizer) {
  const auto& tc = config.train;
  const GemmPrecisionScope precision(tc.precision == "bf16" ? GemmPrecision::bf16
                                                            : GemmPrecision::f32);
  const std::unique_ptr<Communicator> alone =
      options.communicator ? nullptr : make_single_communicator();
  Communicator& communicator = options.communicator ? *options.communicator : *alone;
  const int ranks = communicator.size(), rank = communicator.rank();
  NURI_CHECK(config.parallel.dp == 0 || config.parallel.dp == ranks,
             "config: key 'parallel.dp' is ", config.parallel.dp, " but the job has ", ranks,
             " rank(s); every rank is data-parallel (set 0 or the number of ranks)");
  std::vector<float> lr_scales;
  for (const NamedParameter& p : job.parameters)
    lr_scales.push_back(static_cast<float>(
        config.optim.lr_scale.at(job.module_of ? job.module_of(p.name) : "decoder")));
  const DataParallelOptions parallel{
      .zero = static_cast<int>(config.parallel.zero),
      .bucket_elements = std::max<int64_t>(
          1, static_cast<int64_t>(config.parallel.bucket_mb * (1 << 20) / sizeof(float)))};
  DataParallel optimizer(communicator, job.parameters, parallel, config.optim.adamw,
                         config.optim.grad_clip, lr_scales);
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
    const std::string changes = model_config_changes(dir, job);
    NURI_CHECK(changes.empty(), dir,
               ": the checkpoint's model config differs from this config's model section at ",
               changes);
    job.load_model((fs::path(dir) / "model.safetensors").string(), nullptr);
    optimizer.load_optimizer(dir);
    optimizer.set_steps_taken(state.step - state.skipped_steps);
    log_info("resuming from ", dir, " at step ", state.step);
  } else if (!tc.init_from.empty()) {
    const std::string dir = resolve_checkpoint(tc.init_from);
    // A new stage may change what shapes no weight (a video budget, a frame rate) and add
    // modules; every weight the checkpoint has must fit by name and shape.
    const std::string changes = model_config_changes(dir, job);
    if (!changes.empty()) log_warn("the model config differs from ", dir, "'s at ", changes);
    const std::string weights = (fs::path(dir) / "model.safetensors").string();
    std::vector<std::string> missing;
    job.load_model(weights, &missing);
    std::string fresh;
    for (const std::string& name : missing) fresh += (fresh.empty() ? "" : ", ") + name;
    if (!fresh.empty())
      log_warn(weights, " lacks these parameters, which start as initialised: ", fresh);
    log_info("starting from the weights of ", dir, " with a fresh optimizer and schedule");
  }
  const Device device = job.parameters.empty() ? Device::cpu() : job.parameters[0].tensor.device();
  log_info(job.description, "; ",
           device.is_cpu() ? cat(omp_get_max_threads(), " threads") : cat("on ", device),
           tc.precision == "bf16" ? ", bf16 GEMMs" : "",
           ranks > 1 ? cat(" on each of ", ranks, " data-parallel ranks (ZeRO-",
                           config.parallel.zero, ")")
                     : std::string());

  TrainSummary summary;
  const std::string metrics_path =
      config.log.metrics.empty() ? (fs::path(config.checkpoint.dir) / "metrics.jsonl").string()
                                 : config.log.metrics;
  const std::string plot_path = (fs::path(config.checkpoint.dir) / "loss.png").string();
  const bool lead = rank == 0;  // the rank that logs and writes metrics
  std::optional<MetricsLog> metrics;
  if (lead) metrics.emplace(metrics_path, options.resume.empty() ? -1 : state.step);
  ProgressBar bar(tc.steps, state.step, config.log.progress && lead);
  const bool print_lines = !bar.active() && lead;

  auto checkpoint = [&] {
    const auto save_optimizer = [&](const std::string& dir) { optimizer.save_optimizer(dir); };
    summary.checkpoint = save_checkpoint(
        config.checkpoint.dir,
        {job.save_model, job.model_config, save_optimizer, tokenizer, state, config.json},
        config.checkpoint.keep, communicator);
    if (lead && !plot_loss_curve(metrics_path, plot_path))
      log_warn("built without OpenCV: no loss plot");
  };
  auto run_eval = [&] {
    nlohmann::json result = job.evaluate();
    summary.eval_loss = result.at("eval_loss").get<double>();
    result["step"] = state.step;
    summary.eval = result;
    if (metrics) metrics->write(result);
    if (print_lines) log_info("step ", state.step, ": ", job.describe_eval(result));
  };

  auto interval_start = Clock::now();
  int64_t interval_tokens = 0;
  double interval_loss = 0, interval_aux = 0;
  int64_t interval_steps = 0;
  int64_t last_saved = options.resume.empty() ? -1 : state.step;
  const int64_t decay_steps =
      config.schedule.decay_steps > 0 ? config.schedule.decay_steps : tc.steps;
  while (state.step < tc.steps) {
    double stop = options.stop && options.stop->load() ? 1 : 0;
    if (ranks > 1) communicator.sum_doubles({&stop, 1});  // all ranks stop at the same step
    if (stop > 0) {
      summary.interrupted = true;
      break;
    }
    const auto step_start = Clock::now();
    std::optional<KernelProfileRun> profile;
    if (config.log.profile_step == state.step + 1) profile.emplace();
    double step_loss = 0, step_aux = 0;
    int64_t step_tokens = 0;
    for (int64_t micro = 0; micro < tc.grad_accum; ++micro) {
      Tape tape;
      Tensor scaled_loss;
      {
        TapeScope scope(tape);
        const int64_t first = state.samples + static_cast<int64_t>(rank) * tc.batch_size;
        const MicroBatchLoss batch = job.micro_batch(first, tc.batch_size);
        step_loss += static_cast<double>(batch.loss.item()) / static_cast<double>(tc.grad_accum);
        step_tokens += batch.tokens;
        Tensor objective = batch.loss;
        if (batch.auxiliary.defined()) {
          step_aux +=
              static_cast<double>(batch.auxiliary.item()) / static_cast<double>(tc.grad_accum);
          objective = add(objective, batch.auxiliary);
        }
        scaled_loss = scale(objective, 1.0f / static_cast<float>(tc.grad_accum));
      }
      state.samples += tc.batch_size * ranks;
      // The last micro-batch's backward completes the gradients: reducing them starts at once.
      tape.backward(scaled_loss,
                    micro + 1 == tc.grad_accum ? optimizer.gradient_ready() : GradientReady{});
    }
    optimizer.finish_backward();  // every rank has started every bucket before the next collective
    if (ranks > 1) {              // the step's losses and tokens over every rank
      double totals[3] = {step_loss, step_aux, static_cast<double>(step_tokens)};
      communicator.sum_doubles(totals);
      step_loss = totals[0] / ranks;
      step_aux = totals[1] / ranks;
      step_tokens = static_cast<int64_t>(totals[2]);
    }
    const double lr = warmup_cosine_lr(state.step + 1, decay_steps, config.schedule.warmup_steps,
                                       config.optim.adamw.lr, config.schedule.min_lr_ratio);
    const StepResult result = optimizer.step(lr);
    ++state.step;
    state.tokens += step_tokens;
    if (result.skipped) {
      ++state.skipped_steps;
      log_warn("step ", state.step, ": non-finite gradients (norm ", result.grad_norm,
               "); step skipped");
    }
    if (profile) {  // finishing waits for the step's GPU work
      const std::vector<KernelTime> kernels = profile->finish();
      const double step_ms =
          std::chrono::duration<double, std::milli>(Clock::now() - step_start).count();
      if (lead) {
        report_kernel_profile((fs::path(config.checkpoint.dir) / "kernel-profile.json").string(),
                              state.step, step_ms, kernels);
      }
    }
    state.elapsed_s += std::chrono::duration<double>(Clock::now() - step_start).count();
    interval_tokens += step_tokens;
    interval_loss += step_loss;
    interval_aux += step_aux;
    ++interval_steps;

    const bool last = state.step == tc.steps;
    if (state.step % config.log.every == 0 || last) {
      const double seconds = std::chrono::duration<double>(Clock::now() - interval_start).count();
      const double tokens_per_s = interval_tokens / std::max(seconds, 1e-9);
      const double mean_loss = interval_loss / static_cast<double>(interval_steps);
      if (metrics) {
        nlohmann::json line = {{"step", state.step},
                               {"loss", step_loss},
                               {"lr", lr},
                               {"grad_norm", result.grad_norm},
                               {"tokens_per_s", tokens_per_s},
                               {"elapsed_s", state.elapsed_s},
                               {"tokens", state.tokens},
                               {"skipped_steps", state.skipped_steps}};
        if (step_aux != 0) line["aux_loss"] = step_aux;
        metrics->write(line);
      }
      const double mean_aux = interval_aux / static_cast<double>(interval_steps);
      char aux[48] = "";
      if (mean_aux != 0) std::snprintf(aux, sizeof(aux), " (aux %.4f)", mean_aux);
      char status[160];
      std::snprintf(status, sizeof(status), "loss %.4f%s lr %.2e %.0f tok/s", mean_loss, aux, lr,
                    tokens_per_s);
      bar.update(state.step, status);
      if (print_lines) log_info("step ", state.step, "/", tc.steps, ": ", status);
      interval_start = Clock::now();
      interval_tokens = 0;
      interval_loss = 0;
      interval_aux = 0;
      interval_steps = 0;
    }
    if (job.evaluate && ((config.eval.every > 0 && state.step % config.eval.every == 0) || last))
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
  summary.elapsed_s = state.elapsed_s;
  if (summary.checkpoint.empty() && state.step == last_saved)
    summary.checkpoint = resolve_checkpoint(config.checkpoint.dir);
  return summary;
}

}  // namespace nuri
