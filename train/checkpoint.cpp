#include "train/checkpoint.h"

#include <algorithm>
#include <filesystem>

#include "kernels/error.h"
#include "kernels/file_io.h"
#include "kernels/log.h"
#include "kernels/safetensors.h"

namespace nuri {

namespace fs = std::filesystem;

namespace {

constexpr const char* kStepPrefix = "step-";
// Written last into a step directory, after every rank has written its part.
constexpr const char* kCompleteMarker = "complete.json";

// The step number of a directory named step-N, if it is one.
std::optional<int64_t> step_of(const std::string& name) {
  if (name.rfind(kStepPrefix, 0) != 0 || name.size() == 5) return std::nullopt;
  const std::string digits = name.substr(5);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return std::stoll(digits);
}

template <class T>
T field(const nlohmann::json& json, const char* key, const std::string& origin) {
  NURI_CHECK(json.contains(key), origin, ": key '", key, "' is missing");
  const auto& value = json.at(key);
  if constexpr (std::is_floating_point_v<T>) {
    NURI_CHECK(value.is_number(), origin, ": key '", key, "' must be a number, got ", value.dump());
  } else {
    NURI_CHECK(value.is_number_integer(), origin, ": key '", key, "' must be an integer, got ",
               value.dump());
  }
  return value.get<T>();
}

}  // namespace

nlohmann::json TrainerState::to_json() const {
  return {{"step", step},     {"samples", samples},     {"skipped_steps", skipped_steps},
          {"tokens", tokens}, {"elapsed_s", elapsed_s}, {"seed", seed}};
}

TrainerState TrainerState::from_json(const nlohmann::json& json, const std::string& origin) {
  NURI_CHECK(json.is_object(), origin, ": expected a JSON object");
  TrainerState s;
  s.step = field<int64_t>(json, "step", origin);
  s.samples = field<int64_t>(json, "samples", origin);
  s.skipped_steps = field<int64_t>(json, "skipped_steps", origin);
  s.tokens = field<int64_t>(json, "tokens", origin);
  s.elapsed_s = field<double>(json, "elapsed_s", origin);
  s.seed = field<uint64_t>(json, "seed", origin);
  NURI_CHECK(s.step >= 0 && s.samples >= 0 && s.skipped_steps >= 0 && s.tokens >= 0, origin,
             ": counters must not be negative");
  return s;
}

std::string save_checkpoint(const std::string& run_dir, const CheckpointContents& c, int64_t keep,
                            Communicator& communicator) {
  const bool lead = communicator.rank() == 0;
  const fs::path final_dir = fs::path(run_dir) / cat(kStepPrefix, c.state.step);
  const fs::path temp_dir = fs::path(run_dir) / cat(".", kStepPrefix, c.state.step, ".tmp");
  if (lead) {
    fs::create_directories(run_dir);
    // Leftovers of a run killed while saving are incomplete by construction.
    for (const auto& entry : fs::directory_iterator(run_dir)) {
      if (entry.path().filename().string().rfind(cat(".", kStepPrefix), 0) == 0)
        fs::remove_all(entry.path());
    }
    fs::create_directory(temp_dir);
  }
  communicator.barrier(kWaitForRankZero);
  try {
    c.save_optimizer(temp_dir.string());
    communicator.barrier(kWaitForRankZero);  // every rank's optimizer state is in place
    if (lead) {
      c.save_model((temp_dir / "model.safetensors").string());
      write_file_atomic((temp_dir / "trainer_state.json").string(),
                        c.state.to_json().dump(2) + "\n");
      write_file_atomic((temp_dir / "config.json").string(), c.model_config.dump(2) + "\n");
      write_file_atomic((temp_dir / "train_config.json").string(), c.train_config.dump(2) + "\n");
      c.tokenizer.save((temp_dir / "tokenizer.json").string());
      const nlohmann::json marker = {{"step", c.state.step}, {"ranks", communicator.size()}};
      write_file_atomic((temp_dir / kCompleteMarker).string(), marker.dump() + "\n");
      // A step saved before (a resumed run passing it again) is replaced, never merged.
      if (fs::exists(final_dir)) {
        const fs::path old_dir = fs::path(run_dir) / cat(".", kStepPrefix, c.state.step, ".old");
        fs::rename(final_dir, old_dir);
        fs::rename(temp_dir, final_dir);
        fs::remove_all(old_dir);
      } else {
        fs::rename(temp_dir, final_dir);
      }
      sync_directory(run_dir);
      auto steps = list_checkpoints(run_dir);
      for (size_t i = 0; i + keep < steps.size(); ++i) {
        fs::remove_all(fs::path(run_dir) / cat(kStepPrefix, steps[i]));
      }
    }
  } catch (...) {
    std::error_code ignored;
    if (lead) fs::remove_all(temp_dir, ignored);
    throw;
  }
  communicator.barrier(kWaitForRankZero);  // no rank goes on before the step is in place
  return final_dir.string();
}

std::vector<int64_t> list_checkpoints(const std::string& run_dir) {
  std::vector<int64_t> steps;
  if (!fs::is_directory(run_dir)) return steps;
  for (const auto& entry : fs::directory_iterator(run_dir)) {
    // complete.json marks a step every rank finished; trainer_state.json alone, one written
    // before the marker existed (a step-N directory is only ever renamed into place whole).
    if (!entry.is_directory() || !(fs::exists(entry.path() / kCompleteMarker) ||
                                   fs::exists(entry.path() / "trainer_state.json")))
      continue;
    if (auto step = step_of(entry.path().filename().string())) steps.push_back(*step);
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

std::string resolve_checkpoint(const std::string& path) {
  NURI_CHECK(fs::is_directory(path), "checkpoint ", path, ": not a directory");
  if (fs::exists(fs::path(path) / "trainer_state.json") ||
      fs::exists(fs::path(path) / "model.safetensors")) {
    return path;
  }
  const auto steps = list_checkpoints(path);
  NURI_CHECK(!steps.empty(), "checkpoint ", path, ": holds no step-N directory");
  return (fs::path(path) / cat(kStepPrefix, steps.back())).string();
}

namespace {

// A checkpoint's config.json parsed by `parse`, errors naming the file.
template <class Config, class Parse>
Config read_config(const std::string& dir, Parse parse) {
  const std::string config_path = (fs::path(dir) / "config.json").string();
  const auto json = nlohmann::json::parse(read_file(config_path), nullptr, false);
  NURI_CHECK(!json.is_discarded(), config_path, ": not valid JSON");
  try {
    return parse(json);
  } catch (const Error& e) {
    fail(config_path, ": ", e.what());
  }
}

}  // namespace

Decoder load_decoder(const std::string& checkpoint) {
  const std::string dir = resolve_checkpoint(checkpoint);
  Decoder model(read_config<DecoderConfig>(dir, DecoderConfig::from_json));
  model.load((fs::path(dir) / "model.safetensors").string());
  return model;
}

OmniModel load_omni_model(const std::string& checkpoint) {
  const std::string dir = resolve_checkpoint(checkpoint);
  OmniModel model(read_config<OmniConfig>(dir, OmniConfig::from_json));
  model.load((fs::path(dir) / "model.safetensors").string());
  return model;
}

LoadedModel load_model(const std::string& checkpoint) {
  const std::string dir = resolve_checkpoint(checkpoint);
  LoadedModel loaded{load_decoder(dir),
                     Tokenizer::load((fs::path(dir) / "tokenizer.json").string())};
  NURI_CHECK(loaded.tokenizer.vocab_size() <= loaded.model.config().vocab_size, dir,
             ": the tokenizer has ", loaded.tokenizer.vocab_size(), " tokens but the model only ",
             loaded.model.config().vocab_size);
  return loaded;
}

}  // namespace nuri
