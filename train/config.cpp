#include "train/config.h"

#include <fstream>

#include "fusion/omni_model.h"
#include "kernels/error.h"

namespace nuri {

namespace {

// Stands in the schema for a list of integers whose default is empty.
const nlohmann::json kEmptyIntegerList = nlohmann::json::array({nullptr});

// A JSON type name for messages.
std::string kind(const nlohmann::json& value) {
  if (value.is_number_integer()) return "an integer";
  if (value.is_number()) return "a number";
  if (value.is_boolean()) return "true or false";
  if (value.is_string()) return "a string";
  if (value.is_array()) return "a list";
  if (value.is_object()) return "an object";
  return "null";
}

// True when `value` may stand where the schema holds `expected`.
bool same_kind(const nlohmann::json& expected, const nlohmann::json& value) {
  if (expected.is_number_integer()) return value.is_number_integer();
  if (expected.is_number()) return value.is_number();
  if (expected.is_array()) {
    // A list holds items of its default's first item's kind; an empty default means strings, and
    // [null] (kEmptyIntegerList) integers.
    if (!value.is_array()) return false;
    const nlohmann::json item_kind = expected.empty()        ? nlohmann::json("")
                                     : expected[0].is_null() ? nlohmann::json(0)
                                                             : expected[0];
    for (const auto& item : value) {
      if (!same_kind(item_kind, item)) return false;
    }
    return true;
  }
  return expected.type() == value.type();
}

// Checks `config` against `schema` key by key, filling in the defaults it leaves out.
void merge_checked(const nlohmann::json& schema, nlohmann::json& config, const std::string& where,
                   const std::string& origin) {
  NURI_CHECK(config.is_object(), origin, ": '", where, "' must be an object, got ", kind(config));
  for (const auto& [key, value] : config.items()) {
    const std::string name = where.empty() ? key : where + "." + key;
    NURI_CHECK(schema.contains(key), origin, ": unknown key '", name, "'");
    const auto& expected = schema.at(key);
    if (expected.is_object() && expected.empty()) {
      // An empty object in the schema: any keys, each a number.
      NURI_CHECK(value.is_object(), origin, ": key '", name, "' must be an object, got ",
                 kind(value));
      for (const auto& [entry, number] : value.items())
        NURI_CHECK(number.is_number(), origin, ": key '", name, ".", entry,
                   "' must be a number, got ", number.dump());
    } else if (expected.is_object()) {
      merge_checked(expected, value, name, origin);
    } else if (!expected.is_null()) {
      NURI_CHECK(same_kind(expected, value), origin, ": key '", name, "' must be ", kind(expected),
                 ", got ", value.dump());
    } else {
      NURI_CHECK(value.is_null() || value.is_number_integer(), origin, ": key '", name,
                 "' must be an integer or null, got ", value.dump());
    }
  }
  for (const auto& [key, value] : schema.items()) {
    if (!config.contains(key))
      config[key] = value == kEmptyIntegerList ? nlohmann::json::array() : value;
  }
}

// Applies "a.b=value": the value is parsed as JSON when it can be, else taken as a string.
void apply_override(nlohmann::json& config, const std::string& assignment,
                    const std::string& origin) {
  const auto equals = assignment.find('=');
  NURI_CHECK(equals != std::string::npos && equals > 0, origin, ": --set '", assignment,
             "' is not of the form key=value");
  const std::string key = assignment.substr(0, equals), text = assignment.substr(equals + 1);
  nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
  if (value.is_discarded()) value = text;
  nlohmann::json* node = &config;
  size_t start = 0;
  while (true) {
    const auto dot = key.find('.', start);
    const std::string part = key.substr(start, dot == std::string::npos ? dot : dot - start);
    NURI_CHECK(!part.empty(), origin, ": --set key '", key, "' has an empty part");
    if (dot == std::string::npos) {
      (*node)[part] = value;
      return;
    }
    nlohmann::json& child = (*node)[part];
    if (child.is_null()) child = nlohmann::json::object();
    NURI_CHECK(child.is_object(), origin, ": --set '", key, "': '", part, "' is not a section");
    node = &child;
    start = dot + 1;
  }
}

// Every module's learning-rate factor, 1 by default.
nlohmann::json module_lr_scales() {
  nlohmann::json scales = nlohmann::json::object();
  for (const char* module : kOmniModules) scales[module] = 1.0;
  return scales;
}

// An encoder's section of the model schema: its config keys except the output width (the
// decoder's hidden size), and whether the model has it.
nlohmann::json encoder_schema(nlohmann::json keys) {
  keys.erase("output_size");
  for (auto& [key, value] : keys.items()) {
    if (value.is_array() && value.empty()) value = kEmptyIntegerList;  // stem_channels
  }
  keys["enabled"] = false;
  return keys;
}

// An enabled encoder section as the encoder's own config JSON.
nlohmann::json encoder_config(nlohmann::json section, int64_t output_size) {
  section.erase("enabled");
  section["output_size"] = output_size;
  return section;
}

}  // namespace

nlohmann::json default_train_config() {
  const DecoderConfig model;
  return {
      {"model",
       {{"vocab_size", 0},  // 0: the tokenizer's vocabulary size
        {"hidden_size", model.hidden_size},
        {"intermediate_size", model.intermediate_size},
        {"num_hidden_layers", model.num_hidden_layers},
        {"num_attention_heads", model.num_attention_heads},
        {"num_key_value_heads", model.num_key_value_heads},
        {"head_dim", model.head_dim},
        {"max_position_embeddings", model.max_position_embeddings},
        {"rms_norm_eps", model.rms_norm_eps},
        {"rope_theta", model.rope_theta},
        {"initializer_range", model.initializer_range},
        {"tie_word_embeddings", model.tie_word_embeddings},
        {"type", "text"},  // "text": the decoder alone; "omni": with the encoders below
        {"mrope_section", {0, 0, 0}},
        {"audio", encoder_schema(AudioEncoderConfig().to_json())},
        {"vision", encoder_schema(VisionEncoderConfig().to_json())}}},
      {"data",
       {{"train", nlohmann::json::array()},
        {"valid", nlohmann::json::array()},
        {"shard_dir", ""},
        {"train_manifest", ""},  // omni: JSONL conversations
        {"valid_manifest", ""},
        {"pack_dir", ""},  // omni: where packed shards go; empty: <checkpoint.dir>/pack
        {"max_bad_samples", 0},
        {"task_weights", nlohmann::json::object()}}},  // omni: task -> weight (any tasks)
      {"tokenizer", {{"path", ""}, {"vocab_size", 8192}, {"train_if_missing", true}}},
      {"optim",
       {{"lr", 1e-3},
        {"beta1", 0.9},
        {"beta2", 0.95},
        {"eps", 1e-8},
        {"weight_decay", 0.1},
        {"grad_clip", 1.0},
        {"lr_scale", module_lr_scales()}}},
      {"schedule", {{"warmup_steps", 0}, {"min_lr_ratio", 0.1}, {"decay_steps", 0}}},
      {"train",
       {{"steps", 100},
        {"batch_size", 8},
        {"seq_len", 128},
        {"grad_accum", 1},
        {"precision", "fp32"},
        {"device", "cpu"},
        {"seed", 0},
        {"threads", 0},
        {"freeze", nlohmann::json::array()},
        {"init_from", ""}}},
      {"parallel", {{"dp", 0}, {"zero", 0}, {"bucket_mb", 25.0}, {"timeout_s", 300.0}}},
      {"checkpoint", {{"dir", "runs/run"}, {"every", 0}, {"keep", 3}}},
      {"eval", {{"every", 0}, {"batches", 0}}},
      {"log", {{"metrics", ""}, {"every", 1}, {"progress", true}, {"profile_step", 0}}},
  };
}

TrainConfig parse_train_config(nlohmann::json json, const std::vector<std::string>& overrides,
                               const std::string& origin) {
  NURI_CHECK(json.is_object(), origin, ": a config must be a JSON object, got ", kind(json));
  for (const auto& assignment : overrides) apply_override(json, assignment, origin);
  merge_checked(default_train_config(), json, "", origin);

  TrainConfig c;
  c.json = json;
  const auto& m = json["model"];
  nlohmann::json model = m;
  const bool vocab_from_tokenizer = m["vocab_size"].get<int64_t>() == 0;
  if (vocab_from_tokenizer) model["vocab_size"] = 1;  // settled once the tokenizer is known
  const std::string type = m["type"];
  NURI_CHECK(type == "text" || type == "omni", origin,
             ": key 'model.type' must be \"text\" or \"omni\", got \"", type, "\"");
  c.omni = type == "omni";
  try {
    model.erase("type");
    model.erase("audio");
    model.erase("vision");
    const auto section = model["mrope_section"];
    model.erase("mrope_section");
    if (section != nlohmann::json({0, 0, 0}))
      model["rope_scaling"] = {{"type", "mrope"}, {"mrope_section", section}};
    c.model = DecoderConfig::from_json(model);
    if (vocab_from_tokenizer) c.model.vocab_size = 0;
    for (const char* name : {"audio", "vision"}) {
      if (!m[name]["enabled"].get<bool>()) continue;
      NURI_CHECK(c.omni, name, ".enabled is true but model.type is \"text\"");
      const nlohmann::json section = encoder_config(m[name], c.model.hidden_size);
      try {
        if (name == std::string("audio"))
          c.audio = AudioEncoderConfig::from_json(section);
        else
          c.vision = VisionEncoderConfig::from_json(section);
      } catch (const Error& e) {
        fail(name, ": ", e.what());
      }
    }
  } catch (const Error& e) {
    fail(origin, ": model: ", e.what());
  }

  const auto& d = json["data"];
  c.data.train = d["train"].get<std::vector<std::string>>();
  c.data.valid = d["valid"].get<std::vector<std::string>>();
  c.data.shard_dir = d["shard_dir"];
  c.data.train_manifest = d["train_manifest"];
  c.data.valid_manifest = d["valid_manifest"];
  c.data.pack_dir = d["pack_dir"];
  c.data.max_bad_samples = d["max_bad_samples"];
  for (const auto& [task, weight] : d["task_weights"].items()) {
    NURI_CHECK(weight.get<double>() >= 0, origin, ": key 'data.task_weights.", task,
               "' must be zero (the task is left out) or positive, got ", weight.dump());
    c.data.task_weights[task] = weight;
  }
  const auto& t = json["tokenizer"];
  c.tokenizer.path = t["path"];
  c.tokenizer.vocab_size = t["vocab_size"];
  c.tokenizer.train_if_missing = t["train_if_missing"];
  const auto& o = json["optim"];
  c.optim.adamw = {o["lr"], o["beta1"], o["beta2"], o["eps"], o["weight_decay"]};
  c.optim.grad_clip = o["grad_clip"];
  for (const auto& [module, factor] : o["lr_scale"].items()) {
    NURI_CHECK(factor.get<double>() > 0, origin, ": key 'optim.lr_scale.", module,
               "' must be positive, got ", factor.dump());
    c.optim.lr_scale[module] = factor;
  }
  const auto& s = json["schedule"];
  c.schedule.warmup_steps = s["warmup_steps"];
  c.schedule.min_lr_ratio = s["min_lr_ratio"];
  c.schedule.decay_steps = s["decay_steps"];
  const auto& tr = json["train"];
  c.train.steps = tr["steps"];
  c.train.batch_size = tr["batch_size"];
  c.train.seq_len = tr["seq_len"];
  c.train.grad_accum = tr["grad_accum"];
  c.train.precision = tr["precision"];
  c.train.device = tr["device"];
  c.train.seed = tr["seed"];
  c.train.threads = tr["threads"];
  c.train.freeze = tr["freeze"].get<std::vector<std::string>>();
  c.train.init_from = tr["init_from"];
  const auto& p = json["parallel"];
  c.parallel.dp = p["dp"];
  c.parallel.zero = p["zero"];
  c.parallel.bucket_mb = p["bucket_mb"];
  c.parallel.timeout_s = p["timeout_s"];
  const auto& ck = json["checkpoint"];
  c.checkpoint.dir = ck["dir"];
  c.checkpoint.every = ck["every"];
  c.checkpoint.keep = ck["keep"];
  const auto& e = json["eval"];
  c.eval.every = e["every"];
  c.eval.batches = e["batches"];
  const auto& l = json["log"];
  c.log.metrics = l["metrics"];
  c.log.every = l["every"];
  c.log.progress = l["progress"];
  c.log.profile_step = l["profile_step"];

  auto positive = [&](const char* key, int64_t value) {
    NURI_CHECK(value > 0, origin, ": key '", key, "' must be positive, got ", value);
  };
  auto non_negative = [&](const char* key, int64_t value) {
    NURI_CHECK(value >= 0, origin, ": key '", key, "' must not be negative, got ", value);
  };
  positive("train.steps", c.train.steps);
  positive("train.batch_size", c.train.batch_size);
  positive("train.seq_len", c.train.seq_len);
  positive("train.grad_accum", c.train.grad_accum);
  non_negative("train.threads", c.train.threads);
  positive("checkpoint.keep", c.checkpoint.keep);
  non_negative("checkpoint.every", c.checkpoint.every);
  non_negative("eval.every", c.eval.every);
  non_negative("eval.batches", c.eval.batches);
  positive("log.every", c.log.every);
  non_negative("log.profile_step", c.log.profile_step);
  NURI_CHECK(c.log.profile_step <= c.train.steps, origin, ": key 'log.profile_step' is ",
             c.log.profile_step, ", beyond train.steps ", c.train.steps);
  non_negative("schedule.warmup_steps", c.schedule.warmup_steps);
  non_negative("schedule.decay_steps", c.schedule.decay_steps);
  NURI_CHECK(c.train.precision == "fp32" || c.train.precision == "bf16", origin,
             ": key 'train.precision' must be \"fp32\" or \"bf16\", got \"", c.train.precision,
             "\"");
  NURI_CHECK(c.train.device == "cpu" || c.train.device == "cuda", origin,
             ": key 'train.device' must be \"cpu\" or \"cuda\", got \"", c.train.device, "\"");
  non_negative("parallel.dp", c.parallel.dp);
  NURI_CHECK(c.parallel.zero == 0 || c.parallel.zero == 1, origin,
             ": key 'parallel.zero' must be 0 or 1, got ", c.parallel.zero);
  NURI_CHECK(c.parallel.bucket_mb > 0, origin, ": key 'parallel.bucket_mb' must be positive");
  NURI_CHECK(c.parallel.timeout_s > 0, origin, ": key 'parallel.timeout_s' must be positive");
  NURI_CHECK(c.optim.adamw.lr > 0, origin, ": key 'optim.lr' must be positive");
  NURI_CHECK(c.optim.grad_clip >= 0, origin, ": key 'optim.grad_clip' must not be negative");
  NURI_CHECK(c.schedule.min_lr_ratio >= 0 && c.schedule.min_lr_ratio <= 1, origin,
             ": key 'schedule.min_lr_ratio' must lie in [0, 1]");
  if (c.omni) {
    NURI_CHECK(!c.data.train_manifest.empty(), origin,
               ": key 'data.train_manifest' is empty (an omni model trains on a manifest)");
    NURI_CHECK(c.model.uses_mrope(), origin,
               ": key 'model.mrope_section' must split head_dim / 2 for an omni model");
    non_negative("data.max_bad_samples", c.data.max_bad_samples);
  } else {
    NURI_CHECK(!c.data.train.empty(), origin, ": key 'data.train' names no text files");
  }
  NURI_CHECK(!c.tokenizer.path.empty(), origin, ": key 'tokenizer.path' is empty");
  NURI_CHECK(!c.checkpoint.dir.empty(), origin, ": key 'checkpoint.dir' is empty");
  NURI_CHECK(c.train.seq_len < c.model.max_position_embeddings, origin, ": key 'train.seq_len' (",
             c.train.seq_len, ") must be below model.max_position_embeddings (",
             c.model.max_position_embeddings, ")");
  return c;
}

TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  NURI_CHECK(in, "config ", path, ": cannot open it");
  nlohmann::json json = nlohmann::json::parse(in, nullptr, false);
  NURI_CHECK(!json.is_discarded(), "config ", path, ": not valid JSON");
  return parse_train_config(std::move(json), overrides, "config " + path);
}

}  // namespace nuri
