// nuri-bench-decoder: the decoder backbone on the CPU. For each model size it measures training
// (forward, backward and an AdamW step over every parameter) in tokens/s with the time of each
// phase, the peak resident memory of that run, and generation at batch 1 (prefill and decode
// tokens/s through generate()). --json writes the figures and the exact model configs, which
// bench/decoder_vs_torch.py reads to build the same models in PyTorch.
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/timing.h"
#include "decoder/model.h"
#include "decoder/sampling.h"
#include "kernels/autograd.h"
#include "kernels/ops/activation.h"
#include "kernels/ops/adamw.h"
#include "kernels/ops/attention.h"
#include "kernels/ops/cross_entropy.h"
#include "kernels/ops/elementwise.h"
#include "kernels/ops/linear.h"
#include "kernels/ops/norm.h"
#include "kernels/ops/rope.h"

extern "C" void openblas_set_num_threads(int);

namespace nuri {
namespace {

using bench::Clock;
using bench::seconds_since;

double median(std::vector<double> values) {
  std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
  return values[values.size() / 2];
}

// A model size with its training batch and generation lengths.
struct Workload {
  std::string name;
  DecoderConfig config;
  int64_t batch = 0, seq = 0;          // training
  int64_t prompt = 0, new_tokens = 0;  // generation at batch 1
};

// tiny-text as configs/tiny-text.json defines it (model section, tokenizer vocabulary, batch and
// sequence length of the train section).
Workload tiny_text(const std::string& path) {
  std::ifstream in(path);
  NURI_CHECK(in.good(), "cannot read ", path);
  const nlohmann::json file = nlohmann::json::parse(in);
  nlohmann::json model = file.at("model");
  model["vocab_size"] = file.at("tokenizer").at("vocab_size");
  return {"tiny-text",
          DecoderConfig::from_json(model),
          file.at("train").at("batch_size"),
          file.at("train").at("seq_len"),
          128,
          128};
}

// A ~48M-parameter model (tied embeddings of a 32k vocabulary).
Workload medium() {
  DecoderConfig c;
  c.vocab_size = 32000;
  c.hidden_size = 512;
  c.intermediate_size = 1536;
  c.num_hidden_layers = 10;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 4;
  c.max_position_embeddings = 2048;
  c.tie_word_embeddings = true;
  return {"48m", c, 4, 256, 256, 64};
}

// Peak resident set size since the last reset_peak_rss(), in MiB (VmHWM).
double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

// Starts a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM).
void reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
}

// Ids [b, t] (i32) from a linear congruential sequence over [0, vocab).
Tensor random_ids(int64_t b, int64_t t, int64_t vocab, uint32_t seed) {
  std::vector<int32_t> ids(static_cast<size_t>(b * t));
  for (int32_t& id : ids) {
    seed = seed * 1664525u + 1013904223u;
    id = static_cast<int32_t>((seed >> 8) % static_cast<uint32_t>(vocab));
  }
  return Tensor::from_data<int32_t>(ids, {b, t});
}

// Adds one figure to the printed table and the JSON rows.
void add_row(nlohmann::json& rows, const std::string& model, const std::string& name, double value,
             const std::string& unit) {
  std::printf("  %-10s %-28s %12.2f %s\n", model.c_str(), name.c_str(), value, unit.c_str());
  std::fflush(stdout);
  rows.push_back({{"model", model}, {"name", name}, {"value", value}, {"unit", unit}});
}

void bench_training(const Workload& w, int steps, nlohmann::json& rows) {
  Decoder model(w.config);
  Generator gen{1, 0};
  model.init(gen);
  std::vector<Tensor> m, v;
  for (const NamedParameter& p : model.parameters()) {
    m.push_back(Tensor::zeros(p.tensor.shape()));
    v.push_back(Tensor::zeros(p.tensor.shape()));
  }
  const Tensor ids = random_ids(w.batch, w.seq, w.config.vocab_size, 1);
  const Tensor targets = random_ids(w.batch, w.seq, w.config.vocab_size, 2);
  const AdamWOptions adamw{.lr = 1e-4f, .weight_decay = 0.1f};
  std::vector<double> forward_s, backward_s, optimizer_s, step_s;
  for (int step = 0; step <= steps; ++step) {  // step 0 warms up
    const auto start = Clock::now();
    Tape tape;
    Tensor loss;
    {
      TapeScope scope(tape);
      loss = model.loss(ids, targets);
    }
    const double forward = seconds_since(start);
    tape.backward(loss);
    const double backward = seconds_since(start) - forward;
    for (size_t i = 0; i < model.parameters().size(); ++i) {
      Tensor& param = model.parameters()[i].tensor;
      adamw_step(param, param.grad(), m[i], v[i], adamw, step + 1);
      param.clear_grad();
    }
    const double total = seconds_since(start);
    if (step == 0) continue;
    forward_s.push_back(forward);
    backward_s.push_back(backward);
    optimizer_s.push_back(total - forward - backward);
    step_s.push_back(total);
  }
  const double tokens = static_cast<double>(w.batch * w.seq);
  add_row(rows, w.name, "train tokens/s", tokens / median(step_s), "tokens/s");
  add_row(rows, w.name, "train forward", median(forward_s) * 1e3, "ms/step");
  add_row(rows, w.name, "train backward", median(backward_s) * 1e3, "ms/step");
  add_row(rows, w.name, "train adamw", median(optimizer_s) * 1e3, "ms/step");
}

void bench_generation(const Workload& w, int runs, nlohmann::json& rows) {
  Decoder model(w.config);
  Generator gen{3, 0};
  model.init(gen);
  const Tensor prompt_ids = random_ids(1, w.prompt, w.config.vocab_size, 3);
  const std::span<const int32_t> prompt(prompt_ids.data<int32_t>(), w.prompt);
  const GenerateOptions options{
      .max_new_tokens = w.new_tokens, .stop_ids = {}, .sampling = {.temperature = 0}};
  std::vector<double> prefill_s, decode_s;
  for (int run = 0; run <= runs; ++run) {  // run 0 warms up
    // The first token comes after the prefill; the rest are one decode step each.
    Clock::time_point first, last;
    const auto start = Clock::now();
    int64_t count = 0;
    generate(model, prompt, options, [&](int32_t) {
      (count++ == 0 ? first : last) = Clock::now();
      return true;
    });
    if (run == 0) continue;
    prefill_s.push_back(std::chrono::duration<double>(first - start).count());
    decode_s.push_back(std::chrono::duration<double>(last - first).count() /
                       static_cast<double>(count - 1));
  }
  add_row(rows, w.name, "prefill tokens/s", static_cast<double>(w.prompt) / median(prefill_s),
          "tokens/s");
  add_row(rows, w.name, "decode tokens/s", 1.0 / median(decode_s), "tokens/s");
}

// Forward and backward milliseconds of one op at the training shapes (best of 5), so that a
// training step's time can be attributed: GEMMs (linear) against everything else.
void time_op(nlohmann::json& rows, const std::string& model, const std::string& name,
             std::vector<Tensor> inputs, const std::function<Tensor()>& op, int count) {
  double best_forward = 1e30, best_backward = 1e30;
  for (int run = 0; run < 6; ++run) {  // run 0 warms up
    for (Tensor& x : inputs) x.clear_grad();
    Tape tape;
    Tensor y;
    const auto start = Clock::now();
    {
      TapeScope scope(tape);
      y = op();
    }
    const double forward = seconds_since(start);
    const Tensor seed = Tensor::ones(y.shape());
    const auto middle = Clock::now();
    tape.backward({y}, {seed});
    const double backward = seconds_since(middle);
    if (run == 0) continue;
    best_forward = std::min(best_forward, forward);
    best_backward = std::min(best_backward, backward);
  }
  const std::string label = name + " x" + std::to_string(count);
  add_row(rows, model, label + " fwd", best_forward * 1e3 * count, "ms/step");
  add_row(rows, model, label + " bwd", best_backward * 1e3 * count, "ms/step");
}

// Every op of a training step at the workload's shapes, times the number of its calls per step.
void bench_breakdown(const Workload& w, nlohmann::json& rows) {
  const DecoderConfig& c = w.config;
  const int64_t b = w.batch, t = w.seq, d = c.hidden_size, hd = c.resolved_head_dim();
  const int64_t hq = c.num_attention_heads, hkv = c.num_key_value_heads;
  const int layers = static_cast<int>(c.num_hidden_layers);
  Generator gen{5, 0};
  const auto random = [&](const Shape& shape) {
    Tensor x = Tensor::empty(shape);
    normal_(x, gen, 0.0f, 0.1f);
    x.set_requires_grad();
    return x;
  };
  const Tensor x = random({b, t, d}), mid = random({b, t, c.intermediate_size});
  const Tensor wq = random({hq * hd, d}), wkv = random({hkv * hd, d}), wo = random({d, hq * hd});
  const Tensor wup = random({c.intermediate_size, d}), wdown = random({d, c.intermediate_size});
  const Tensor head = random({c.vocab_size, d}), norm = random({d});
  const Tensor q = random({b, t, hq, hd}), k = random({b, t, hkv, hd}), v = random({b, t, hkv, hd});
  const Tensor a = random({b, t, hq * hd}), logits = random({b * t, c.vocab_size});
  const Tensor positions = position_ids(0, t);
  const Tensor targets = random_ids(b * t, 1, c.vocab_size, 4).view({b * t});
  time_op(
      rows, w.name, "linear q_proj", {x, wq}, [&] { return linear(x, wq); }, layers);
  time_op(
      rows, w.name, "linear k/v_proj", {x, wkv}, [&] { return linear(x, wkv); }, 2 * layers);
  time_op(
      rows, w.name, "linear o_proj", {a, wo}, [&] { return linear(a, wo); }, layers);
  time_op(
      rows, w.name, "linear gate/up", {x, wup}, [&] { return linear(x, wup); }, 2 * layers);
  time_op(
      rows, w.name, "linear down", {mid, wdown}, [&] { return linear(mid, wdown); }, layers);
  time_op(
      rows, w.name, "linear lm_head", {x, head}, [&] { return linear(x, head); }, 1);
  time_op(
      rows, w.name, "attention", {q, k, v}, [&] { return attention(q, k, v); }, layers);
  time_op(
      rows, w.name, "rope", {q}, [&] { return rope(q, positions, c.rope_theta); }, layers);
  time_op(
      rows, w.name, "rope kv", {k}, [&] { return rope(k, positions, c.rope_theta); }, layers);
  time_op(
      rows, w.name, "rms_norm", {x, norm}, [&] { return rms_norm(x, norm, 1e-6f); },
      2 * layers + 1);
  time_op(
      rows, w.name, "swiglu", {mid}, [&] { return swiglu(mid, mid); }, layers);
  time_op(
      rows, w.name, "add", {x}, [&] { return add(x, x); }, 2 * layers);
  time_op(
      rows, w.name, "cross_entropy", {logits}, [&] { return cross_entropy(logits, targets); }, 1);
}

}  // namespace
}  // namespace nuri

int main(int argc, char** argv) {
  CLI::App app{"nuri decoder benchmarks (CPU)", "nuri-bench-decoder"};
  std::string json_path, tiny_config = "configs/tiny-text.json", only;
  int threads = omp_get_max_threads(), steps = 5, runs = 3;
  app.add_option("--json", json_path, "Also write the figures and model configs to this file");
  app.add_option("--tiny-config", tiny_config, "The tiny-text training config");
  app.add_option("--model", only, "Run only this model (tiny-text or 48m)");
  app.add_option("--threads", threads, "Threads for OpenMP and OpenBLAS")
      ->check(CLI::PositiveNumber);
  app.add_option("--steps", steps, "Timed training steps per model")->check(CLI::PositiveNumber);
  app.add_option("--runs", runs, "Timed generations per model")->check(CLI::PositiveNumber);
  bool breakdown = false, list = false;
  app.add_flag("--list", list, "Only write the model configs (with --json); run nothing");
  app.add_flag("--breakdown", breakdown, "Also time each op of a training step");
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
  try {
    using namespace nuri;
    std::vector<Workload> workloads = {tiny_text(tiny_config), medium()};
    NURI_CHECK(only.empty() || only == "tiny-text" || only == "48m", "--model: unknown model '",
               only, "' (tiny-text or 48m)");
    nlohmann::json out = {{"threads", threads}, {"rows", nlohmann::json::array()}};
    std::printf("nuri-bench-decoder: %d threads\n", threads);
    for (const Workload& w : workloads) {
      if (!only.empty() && w.name != only) continue;
      std::printf("%s: %.1fM parameters, train batch %lld x seq %lld, generate %lld + %lld\n",
                  w.name.c_str(), static_cast<double>(w.config.parameter_count()) / 1e6,
                  static_cast<long long>(w.batch), static_cast<long long>(w.seq),
                  static_cast<long long>(w.prompt), static_cast<long long>(w.new_tokens));
      out["models"][w.name] = {{"config", w.config.to_json()},
                               {"batch", w.batch},
                               {"seq", w.seq},
                               {"prompt", w.prompt},
                               {"new_tokens", w.new_tokens}};
      if (list) continue;
      reset_peak_rss();
      bench_training(w, steps, out["rows"]);
      add_row(out["rows"], w.name, "train peak RSS", peak_rss_mib(), "MiB");
      bench_generation(w, runs, out["rows"]);
      if (breakdown) bench_breakdown(w, out["rows"]);
    }
    if (!json_path.empty()) {
      const std::string tmp = json_path + ".tmp";
      {
        std::ofstream file(tmp);
        file << out.dump(2) << "\n";
        NURI_CHECK(file.good(), "cannot write ", tmp);
      }
      NURI_CHECK(std::rename(tmp.c_str(), json_path.c_str()) == 0, "cannot rename ", tmp, " to ",
                 json_path);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nuri-bench-decoder: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
