// nuri-bench-ops: op benchmarks, on the CPU or (--device cuda) on a GPU. Prints a table; --json
// writes the figures for bench/ops_vs_torch.py and bench/attention_gpu_vs_torch.py, which compare
// them with PyTorch in the same run.
#include <omp.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bench/ops/bench.h"
#include "kernels/cpu/blas.h"
#include "kernels/device.h"
#include "kernels/error.h"

extern "C" void openblas_set_num_threads(int);

namespace nuri::bench {

void Report::add(Row row) {
  std::printf("  %-44s %12.2f %-10s %s\n", row.name.c_str(), row.value, row.metric.c_str(),
              row.note.c_str());
  std::fflush(stdout);
  rows_.push_back(std::move(row));
}

void Report::print() const {
  std::printf("\n%-46s %12s %-10s %s\n", "benchmark", "value", "unit", "note");
  for (const Row& row : rows_) {
    std::printf("%-46s %12.2f %-10s %s\n", row.name.c_str(), row.value, row.metric.c_str(),
                row.note.c_str());
  }
}

void Report::write_json(const std::string& path, int threads) const {
  nlohmann::json out;
  out["threads"] = threads;
  out["rows"] = nlohmann::json::array();
  for (const Row& row : rows_) {
    out["rows"].push_back(
        {{"name", row.name}, {"metric", row.metric}, {"value", row.value}, {"note", row.note}});
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream file(tmp);
    NURI_CHECK(file.good(), "cannot write ", tmp);
    file << out.dump(2) << "\n";
    NURI_CHECK(file.good(), "error writing ", tmp);
  }
  NURI_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename ", tmp, " to ", path);
}

std::vector<Benchmark>& registry() {
  static std::vector<Benchmark> all;
  return all;
}

bool register_benchmark(Benchmark benchmark) {
  registry().push_back(std::move(benchmark));
  return true;
}

const std::vector<Benchmark>& benchmarks() {
  return registry();
}

}  // namespace nuri::bench

int main(int argc, char** argv) {
  nuri::cpu::reexec_for_blas_core(argv);
  CLI::App app{"nuri op benchmarks", "nuri-bench-ops"};
  std::string json_path, filter, device = "cpu";
  int threads = omp_get_max_threads();
  app.add_option("--json", json_path, "Also write the figures to this JSON file");
  app.add_option("--filter", filter, "Run only benchmarks whose name contains this text");
  app.add_option("--device", device, "cpu, or cuda for the GPU benchmarks")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--threads", threads, "Threads for OpenMP and OpenBLAS")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
  try {
    nuri::bench::Report report;
    const bool gpu = device == "cuda";
    NURI_CHECK(!gpu || nuri::cuda_device_count() > 0, "--device cuda: no GPU is visible",
               nuri::cuda_compiled() ? "" : " (this build has no CUDA backend)");
    std::printf("nuri-bench-ops: %s, %d threads\n", device.c_str(), threads);
    for (const auto& benchmark : nuri::bench::benchmarks()) {
      if (benchmark.gpu != gpu) continue;
      if (!filter.empty() && benchmark.name.find(filter) == std::string::npos) continue;
      std::printf("%s\n", benchmark.name.c_str());
      benchmark.run(report);
    }
    report.print();
    if (!json_path.empty()) report.write_json(json_path, threads);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nuri-bench-ops: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
