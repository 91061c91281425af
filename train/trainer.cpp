#include "train/trainer.h"

#include <omp.h>

#include <cmath>
#include <filesystem>
#include <optional>

#include "decoder/model.h"
#include "encoders/tokenizer.h"
#include "kernels/autograd.h"
#include "kernels/error.h"
#include "kernels/log.h"
#include "train/checkpoint.h"
#include "train/text_data.h"
#include "train/training_loop.h"

namespace nuri {

namespace fs = std::filesystem;

namespace {

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

}  // namespace

TrainSummary train_text_model(const TrainConfig& config, const TrainOptions& options) {
  if (config.train.threads > 0) omp_set_num_threads(config.train.threads);
  const auto& tc = config.train;
  check_fresh_run(config, options);
  const Device device = training_device(config, options);
  const Tokenizer tokenizer =
      rank_zero_first(options, [&] { return ensure_tokenizer(config, config.data.train); });
  const DecoderConfig mc = decoder_config(config, tokenizer);
  const std::string shard_dir = config.data.shard_dir.empty()
                                    ? (fs::path(config.checkpoint.dir) / "shards").string()
                                    : config.data.shard_dir;
  // Rank 0 writes the token shards that are missing; the other ranks then read them.
  const bool has_valid = !config.data.valid.empty();
  const auto [train_stream, valid_stream] = rank_zero_first(options, [&] {
    return std::pair{load_token_stream(config.data.train, tokenizer, shard_dir, "train"),
                     has_valid ? load_token_stream(config.data.valid, tokenizer, shard_dir, "valid")
                               : TokenStream{}};
  });

  Decoder model(mc);
  if (options.resume.empty()) {  // on the CPU, so that every device starts from the same weights
    Generator generator{tc.seed, 0};
    model.init(generator);
  }
  model.to(device);
  const WindowLoader train_loader(train_stream, tc.seq_len, tc.seed);
  std::optional<WindowLoader> valid_loader;
  int64_t eval_windows = 0;
  double unigram = NAN;
  if (has_valid) {
    valid_loader.emplace(valid_stream, tc.seq_len, tc.seed);
    eval_windows = config.eval.batches > 0
                       ? std::min(valid_loader->windows(), config.eval.batches * tc.batch_size)
                       : valid_loader->windows();
    unigram = unigram_loss(train_stream, valid_stream, mc.vocab_size, tc.seq_len, eval_windows);
  }

  TrainingJob job;
  job.parameters = model.parameters();
  job.micro_batch = [&](int64_t first, int64_t count) {
    const Batch batch = train_loader.shuffled_batch(first, count);
    return MicroBatchLoss{model.loss(batch.ids, batch.targets), count * tc.seq_len, {}};
  };
  if (has_valid) {
    job.evaluate = [&] {
      const double loss = evaluate(model, *valid_loader, eval_windows, tc.batch_size);
      return nlohmann::json{
          {"eval_loss", loss}, {"eval_ppl", std::exp(loss)}, {"unigram_loss", unigram}};
    };
  }
  job.describe_eval = [](const nlohmann::json& m) {
    return cat("held-out loss ", m["eval_loss"].get<double>(), " (perplexity ",
               m["eval_ppl"].get<double>(), "), unigram baseline ",
               m["unigram_loss"].get<double>());
  };
  job.save_model = [&](const std::string& path) { model.save(path); };
  // The decoder loads every weight or fails, init_from included.
  job.load_model = [&](const std::string& path, std::vector<std::string>*) { model.load(path); };
  job.model_config = mc.to_json();
  job.read_model_config = [](const nlohmann::json& saved) {
    return DecoderConfig::from_json(saved).to_json();
  };
  job.description = cat("model: ", mc.parameter_count(), " parameters, ", mc.num_hidden_layers,
                        " layers, width ", mc.hidden_size, ", vocabulary ", mc.vocab_size);
  TrainSummary summary = run_training(config, options, job, tokenizer);
  summary.unigram_loss = unigram;
  return summary;
}

}  // namespace nuri
