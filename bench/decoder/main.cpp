// nuri-bench-decoder: the decoder backbone. For each model size it measures training (forward,
// backward and an AdamW step over every parameter) in tokens/s with the time of each phase; on the
// CPU also the peak resident memory of that run and generation at batch 1 (prefill and decode
// tokens/s through generate()), on a GPU (--device cuda) also the model FLOPs utilisation and the
// GPT-2-small and -medium sizes. --json writes the figures and the exact model configs, which
// bench/decoder_vs_torch.py and bench/decoder_gpu_vs_torch.py read to build the same models in
// PyTorch.
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/timing.h"
#include "decoder/model.h"
#include "decoder/sampling.h"
#include "kernels/autograd.h"
#include "kernels/cpu/blas.h"
#include "kernels/device.h"
#include "kernels/ops/adamw.h"
#include "kernels/ops/linear.h"
#include "kernels/profiler.h"

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

// GPT-2 small's size (124M parameters with tied embeddings of its 50,257-token vocabulary) as a
// Llama-style decoder: the SwiGLU width 2048 keeps GPT-2's 4.7M MLP weights per layer. GPU only.
Workload gpt2_small() {
  DecoderConfig c;
  c.vocab_size = 50257;
  c.hidden_size = 768;
  c.intermediate_size = 2048;
  c.num_hidden_layers = 12;
  c.num_attention_heads = 12;
  c.num_key_value_heads = 12;
  c.max_position_embeddings = 1024;
  c.tie_word_embeddings = true;
  return {"124m", c, 8, 1024, 0, 0};
}

// GPT-2 medium's size (350M parameters) likewise: width 1024, 24 layers, SwiGLU width 2816. GPU
// only.
Workload gpt2_medium() {
  Workload w = gpt2_small();
  w.name = "350m";
  w.config.hidden_size = 1024;
  w.config.intermediate_size = 2816;
  w.config.num_hidden_layers = 24;
  w.config.num_attention_heads = 16;
  w.config.num_key_value_heads = 16;
  return w;
}

// Training FLOPs per token: 6 per parameter (forward and backward) plus attention's score and
// value products, 12 x layers x width x sequence (PaLM's count, causal masking not discounted).
double training_flops_per_token(const Workload& w) {
  const DecoderConfig& c = w.config;
  return 6.0 * static_cast<double>(c.parameter_count()) +
         12.0 * static_cast<double>(c.num_hidden_layers * c.hidden_size * w.seq);
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

// Training steps (forward, backward, one multi-tensor AdamW step) on `device`, each timed to the
// end of its GPU work. With peak_tflops > 0, also the model FLOPs utilisation against that peak.
// With breakdown, one more step runs under the kernel profiler: each kernel's milliseconds in it.
void bench_training(const Workload& w, int steps, const Device& device, double peak_tflops,
                    bool breakdown, nlohmann::json& rows) {
  Decoder model(w.config);
  Generator gen{1, 0};
  model.init(gen);
  model.to(device);
  std::vector<Tensor> m, v;
  for (const NamedParameter& p : model.parameters()) {
    m.push_back(Tensor::zeros(p.tensor.shape(), DType::f32, device));
    v.push_back(Tensor::zeros(p.tensor.shape(), DType::f32, device));
  }
  const Tensor ids = random_ids(w.batch, w.seq, w.config.vocab_size, 1).to(device);
  const Tensor targets = random_ids(w.batch, w.seq, w.config.vocab_size, 2).to(device);
  const AdamWOptions adamw{.lr = 1e-4f, .weight_decay = 0.1f};
  // One step; returns the seconds to the end of the forward, the backward and the whole step.
  int step = 0;
  const auto train_step = [&] {
    const auto start = Clock::now();
    Tape tape;
    Tensor loss;
    {
      TapeScope scope(tape);
      loss = model.loss(ids, targets);
    }
    synchronize(device);
    const double forward = seconds_since(start);
    tape.backward(loss);
    synchronize(device);
    const double backward = seconds_since(start);
    std::vector<AdamWTensors> entries;
    for (size_t i = 0; i < model.parameters().size(); ++i) {
      const Tensor& param = model.parameters()[i].tensor;
      entries.push_back({param, param.grad(), m[i], v[i], adamw.lr, adamw.weight_decay});
    }
    adamw_multi_step(entries, adamw, 1.0f, ++step);
    for (NamedParameter& p : model.parameters()) p.tensor.clear_grad();
    synchronize(device);
    return std::array<double, 3>{forward, backward, seconds_since(start)};
  };
  std::vector<double> forward_s, backward_s, optimizer_s, step_s;
  train_step();  // warms up
  for (int i = 0; i < steps; ++i) {
    const auto [forward, backward, total] = train_step();
    forward_s.push_back(forward);
    backward_s.push_back(backward - forward);
    optimizer_s.push_back(total - backward);
    step_s.push_back(total);
  }
  const double tokens_per_s = static_cast<double>(w.batch * w.seq) / median(step_s);
  add_row(rows, w.name, "train tokens/s", tokens_per_s, "tokens/s");
  add_row(rows, w.name, "train forward", median(forward_s) * 1e3, "ms/step");
  add_row(rows, w.name, "train backward", median(backward_s) * 1e3, "ms/step");
  add_row(rows, w.name, "train adamw", median(optimizer_s) * 1e3, "ms/step");
  if (peak_tflops > 0) {
    const double mfu = tokens_per_s * training_flops_per_token(w) / (peak_tflops * 1e12);
    add_row(rows, w.name, "train MFU", 100.0 * mfu, "%");
  }
  if (!breakdown) return;
  start_kernel_profile();
  const double profiled_ms = train_step()[2] * 1e3;
  const std::vector<KernelTime> kernels = stop_kernel_profile();
  add_row(rows, w.name, "profiled step", profiled_ms, "ms/step");
  double in_kernels = 0;
  for (const KernelTime& k : kernels) {
    add_row(rows, w.name, "kernel " + k.kernel + " x" + std::to_string(k.calls), k.ms, "ms/step");
    in_kernels += k.ms;
  }
  // The rest is the host between kernels: autograd, allocation, launches not yet overlapped.
  add_row(rows, w.name, "outside kernels", profiled_ms - in_kernels, "ms/step");
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

}  // namespace
}  // namespace nuri

int main(int argc, char** argv) {
  nuri::cpu::reexec_for_blas_core(argv);
  CLI::App app{"nuri decoder benchmarks", "nuri-bench-decoder"};
  std::string json_path, tiny_config = "configs/tiny-text.json", only, device_name = "cpu";
  std::string precision = "fp32";
  double peak_tflops = 989;
  int threads = omp_get_max_threads(), steps = 5, runs = 3;
  app.add_option("--json", json_path, "Also write the figures and model configs to this file");
  app.add_option("--tiny-config", tiny_config, "The tiny-text training config");
  app.add_option("--model", only, "Run only this model (tiny-text, 48m; on a GPU also 124m, 350m)");
  app.add_option("--device", device_name, "cpu, cuda or cuda:N (a GPU runs training only)");
  app.add_option("--precision", precision, "fp32, or bf16: linear layers multiply in bf16")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  app.add_option("--peak-tflops", peak_tflops,
                 "The GPU's dense bf16 peak for MFU (989: H100 SXM); 0 leaves MFU out");
  app.add_option("--threads", threads, "Threads for OpenMP and OpenBLAS")
      ->check(CLI::PositiveNumber);
  app.add_option("--steps", steps, "Timed training steps per model")->check(CLI::PositiveNumber);
  app.add_option("--runs", runs, "Timed generations per model")->check(CLI::PositiveNumber);
  bool breakdown = false, list = false;
  app.add_flag("--list", list, "Only write the model configs (with --json); run nothing");
  app.add_flag("--breakdown", breakdown, "Also time each kernel of one more training step");
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
  try {
    using namespace nuri;
    const Device device = Device::parse(device_name);
    const GemmPrecisionScope gemm_precision(precision == "bf16" ? GemmPrecision::bf16
                                                                : GemmPrecision::f32);
    std::vector<Workload> workloads = {tiny_text(tiny_config), medium()};
    if (device.is_cuda()) workloads.insert(workloads.end(), {gpt2_small(), gpt2_medium()});
    const bool known = std::any_of(workloads.begin(), workloads.end(),
                                   [&](const Workload& w) { return w.name == only; });
    NURI_CHECK(only.empty() || known, "--model: unknown model '", only, "' on ", device,
               " (tiny-text, 48m; on a GPU also 124m, 350m)");
    nlohmann::json out = {{"threads", threads},
                          {"device", device.str()},
                          {"precision", precision},
                          {"rows", nlohmann::json::array()}};
    std::printf("nuri-bench-decoder: %s, %s, %d threads\n", device.str().c_str(), precision.c_str(),
                threads);
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
      if (device.is_cuda()) {
        bench_training(w, steps, device, peak_tflops, breakdown, out["rows"]);
        continue;
      }
      reset_peak_rss();
      bench_training(w, steps, device, 0, breakdown, out["rows"]);
      add_row(out["rows"], w.name, "train peak RSS", peak_rss_mib(), "MiB");
      bench_generation(w, runs, out["rows"]);
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
