#include "train/omni_trainer.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>

#include "fusion/omni_model.h"
#include "kernels/autograd.h"
#include "kernels/error.h"
#include "kernels/log.h"
#include "train/files.h"
#include "train/omni_data.h"
#include "train/shuffled_order.h"
#include "train/training_loop.h"

namespace nuri {

namespace fs = std::filesystem;

namespace {

// Writes every text part of a manifest to `path`, one per line: what a new tokenizer learns from.
void write_manifest_text(const std::string& manifest, const std::string& path) {
  std::string text;
  for (const ManifestEntry& entry : load_manifest(manifest))
    for (const Message& message : entry.conversation.messages)
      for (const ContentPart& part : message.content)
        if (part.kind == PartKind::text) text += part.text + "\n";
  fs::create_directories(fs::path(path).parent_path());
  write_file_atomic(path, text);
}

int64_t target_count(const SequenceLayout& layout) {
  return std::count_if(layout.targets.begin(), layout.targets.end(),
                       [](int32_t t) { return t >= 0; });
}

// The position -> sample order of training: every sample once per epoch, in a fresh permutation;
// or, with data.task_weights, the manifest's tasks blended in those shares (BlendedOrder).
std::function<int64_t(int64_t)> training_order(const PackedDataset& train,
                                               const TrainConfig& config) {
  const uint64_t seed = config.train.seed;
  if (config.data.task_weights.empty()) {
    auto order = std::make_shared<ShuffledOrder>(train.size(), seed);
    return [order](int64_t position) { return order->at(position); };
  }
  std::map<std::string, std::vector<int64_t>> by_task;
  for (int64_t i = 0; i < train.size(); ++i) by_task[train.task(i)].push_back(i);
  for (const auto& [task, weight] : config.data.task_weights) {
    if (by_task.count(task)) continue;
    std::string known;
    for (const auto& [name, items] : by_task) known += cat(known.empty() ? "" : ", ", name);
    fail("config: data.task_weights names '", task,
         "', which no training sample has (tasks: ", known, ")");
  }
  // The tasks that weigh something (a weight of 0 leaves a task out), with their shares.
  std::vector<std::vector<int64_t>> groups;
  std::vector<double> weights;
  std::vector<std::string> names;
  for (auto& [task, items] : by_task) {
    const auto named = config.data.task_weights.find(task);
    const double weight = named != config.data.task_weights.end() ? named->second : 1.0;
    if (weight == 0) continue;
    weights.push_back(weight);
    groups.push_back(std::move(items));
    names.push_back(task.empty() ? "(no task)" : task);
  }
  NURI_CHECK(!groups.empty(), "config: data.task_weights leaves out every task");
  const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  std::string shares;
  for (size_t g = 0; g < groups.size(); ++g) {
    shares += cat(shares.empty() ? "" : ", ", names[g], " ",
                  static_cast<int>(std::lround(100 * weights[g] / total)), "%");
  }
  log_info("training draws the tasks in the shares ", shares);
  auto order = std::make_shared<BlendedOrder>(std::move(groups), weights, seed);
  return [order](int64_t position) { return order->at(position); };
}

}  // namespace

OmniConfig omni_config(const TrainConfig& config, const Tokenizer& tokenizer) {
  OmniConfig omni;
  omni.decoder = decoder_config(config, tokenizer);
  omni.audio = config.audio;
  omni.vision = config.vision;
  omni.validate();
  return omni;
}

std::string omni_pack_dir(const TrainConfig& config, const std::string& split) {
  const fs::path root = config.data.pack_dir.empty() ? fs::path(config.checkpoint.dir) / "pack"
                                                     : fs::path(config.data.pack_dir);
  return (root / split).string();
}

Tokenizer omni_tokenizer(const TrainConfig& config) {
  std::vector<std::string> texts = config.data.train;
  if (!fs::exists(config.tokenizer.path)) {
    const std::string manifest_text =
        (fs::path(config.checkpoint.dir) / "tokenizer-text.txt").string();
    write_manifest_text(config.data.train_manifest, manifest_text);
    texts.push_back(manifest_text);
  }
  return ensure_tokenizer(config, texts);
}

PackedDataset ensure_pack(const TrainConfig& config, const std::string& split,
                          const OmniModel& model, const ChatTemplate& chat) {
  const std::string manifest =
      split == "train" ? config.data.train_manifest : config.data.valid_manifest;
  const std::string dir = omni_pack_dir(config, split);
  const std::string fingerprint = fnv1a_hex(chat.tokenizer().to_json());
  if (fs::exists(fs::path(dir) / "index.json")) {
    try {
      return PackedDataset(dir, model.config(), fingerprint);
    } catch (const Error& e) {
      log_info("re-packing ", manifest, ": ", e.what());
    }
  }
  PackOptions options;
  options.manifest = manifest;
  options.out_dir = dir;
  options.max_bad_samples = config.data.max_bad_samples;
  options.progress = config.log.progress;
  const PackSummary summary = pack_manifest(options, model, chat);
  log_info("packed ", manifest, ": ", summary.samples, " samples (", summary.skipped,
           " skipped) in ", summary.shards, " shards, ", summary.bytes >> 20, " MiB");
  return PackedDataset(dir, model.config(), fingerprint);
}

TrainSummary train_omni_model(const TrainConfig& config, const TrainOptions& options) {
  NURI_CHECK(config.omni, "train_omni_model: the config's model.type is not \"omni\"");
  if (config.train.threads > 0) omp_set_num_threads(config.train.threads);
  const auto& tc = config.train;
  check_fresh_run(config, options);
  const Device device = training_device(config, options);
  const Tokenizer tokenizer = rank_zero_first(options, [&] { return omni_tokenizer(config); });
  const ChatTemplate chat(tokenizer);
  const OmniConfig oc = omni_config(config, tokenizer);
  OmniModel model(oc);
  if (options.resume.empty()) {  // on the CPU, so that every device starts from the same weights
    Generator generator{tc.seed, 0};
    model.init(generator);
  }
  model.to(device);
  for (const std::string& module : tc.freeze) model.freeze(module);

  // Rank 0 packs what is missing; the other ranks then read its packs.
  const PackedDataset train =
      rank_zero_first(options, [&] { return ensure_pack(config, "train", model, chat); });
  std::optional<PackedDataset> valid;
  if (!config.data.valid_manifest.empty()) {
    valid.emplace(
        rank_zero_first(options, [&] { return ensure_pack(config, "valid", model, chat); }));
  }
  const std::function<int64_t(int64_t)> order = training_order(train, config);

  TrainingJob job;
  job.parameters = model.trainable_parameters();
  // Encoders and projectors first: forward uses them before the decoder, so backward completes
  // their gradients last, and data parallelism buckets from the end of this list.
  std::stable_partition(job.parameters.begin(), job.parameters.end(), [](const NamedParameter& p) {
    return OmniModel::module_of(p.name) != "decoder";
  });
  NURI_CHECK(!job.parameters.empty(), "config: train.freeze leaves nothing to train");
  job.micro_batch = [&](int64_t first, int64_t count) {
    std::vector<OmniSample> samples;
    for (int64_t k = 0; k < count; ++k) samples.push_back(train.sample(order(first + k)));
    std::vector<const SequenceLayout*> layouts;
    std::vector<const std::vector<MediaInput>*> inputs;
    int64_t tokens = 0;
    for (const OmniSample& s : samples) {
      layouts.push_back(&s.layout);
      inputs.push_back(&s.media);
      tokens += s.layout.size();
    }
    const OmniModel::Losses losses = model.losses(layouts, inputs);
    return MicroBatchLoss{losses.decoder, tokens, losses.ctc};
  };
  if (valid) {
    const int64_t limit = config.eval.batches > 0
                              ? std::min(valid->size(), config.eval.batches * tc.batch_size)
                              : valid->size();
    job.evaluate = [&, limit] {
      NoGradScope no_grad;
      std::map<std::string, std::pair<double, int64_t>> by_task;  // loss sum, tokens
      double total = 0;
      int64_t tokens = 0;
      for (int64_t i = 0; i < limit; ++i) {
        const OmniSample s = valid->sample(i);
        const int64_t n = target_count(s.layout);
        // The decoder's loss alone: a held-out loss per answer token, without the CTC term.
        const double loss =
            model.decoder_loss({&s.layout}, {&s.media}).item() * static_cast<double>(n);
        total += loss;
        tokens += n;
        auto& [task_loss, task_tokens] = by_task[s.task.empty() ? "other" : s.task];
        task_loss += loss;
        task_tokens += n;
      }
      nlohmann::json result = {{"eval_loss", total / std::max<int64_t>(tokens, 1)}};
      for (const auto& [task, sums] : by_task)
        result["eval_loss_" + task] = sums.first / std::max<int64_t>(sums.second, 1);
      return result;
    };
  }
  job.describe_eval = [](const nlohmann::json& m) {
    std::string line = cat("held-out loss ", m["eval_loss"].get<double>());
    for (const auto& [key, value] : m.items())
      if (key.rfind("eval_loss_", 0) == 0)
        line += cat(", ", key.substr(10), " ", value.get<double>());
    return line;
  };
  job.save_model = [&](const std::string& path) { model.save(path); };
  job.load_model = [&](const std::string& path, std::vector<std::string>* missing) {
    model.load(path, missing);
  };
  job.module_of = OmniModel::module_of;
  job.model_config = oc.to_json();
  job.read_model_config = [](const nlohmann::json& saved) {
    return OmniConfig::from_json(saved).to_json();
  };
  int64_t parameters = 0, trainable = 0;
  for (const NamedParameter& p : model.parameters()) {
    parameters += p.tensor.numel();
    if (p.tensor.requires_grad()) trainable += p.tensor.numel();
  }
  job.description = cat("omni model: ", parameters, " parameters (", trainable, " trained), ",
                        train.size(), " training samples (", train.skipped(), " skipped)");
  return run_training(config, options, job, tokenizer);
}

}  // namespace nuri
