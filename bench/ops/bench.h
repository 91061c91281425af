// A small benchmark registry: each file under bench/ops registers benchmarks that add rows to a
// report; main.cpp runs them, prints a table and optionally writes JSON. Figures only: nothing
// here asserts.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "bench/timing.h"

namespace nuri::bench {

// One measured figure.
struct Row {
  std::string name;    // what was run, e.g. "linear fwd+bwd 4096x1024->4096"
  std::string metric;  // e.g. "GFLOP/s"
  double value = 0;
  std::string note;  // free text: the baseline, the ratio
};

// Collects rows in the order benchmarks produce them.
class Report {
 public:
  void add(Row row);
  const std::vector<Row>& rows() const { return rows_; }
  void print() const;
  void write_json(const std::string& path, int threads) const;

 private:
  std::vector<Row> rows_;
};

struct Benchmark {
  std::string name;
  std::function<void(Report&)> run;
  bool gpu = false;  // runs with --device cuda (the others run on the CPU)
};

bool register_benchmark(Benchmark benchmark);
const std::vector<Benchmark>& benchmarks();

}  // namespace nuri::bench

#define NURI_BENCH_CONCAT_(a, b) a##b
#define NURI_BENCH_CONCAT(a, b) NURI_BENCH_CONCAT_(a, b)
// Registers a benchmark: NURI_BENCHMARK("linear", [](Report& r) { ... });
#define NURI_BENCHMARK(name, ...)                                                   \
  static const bool NURI_BENCH_CONCAT(nuri_benchmark_, __LINE__) [[maybe_unused]] = \
      ::nuri::bench::register_benchmark({name, __VA_ARGS__})
// Registers a benchmark that runs on cuda:0 under --device cuda.
#define NURI_GPU_BENCHMARK(name, ...)                                               \
  static const bool NURI_BENCH_CONCAT(nuri_benchmark_, __LINE__) [[maybe_unused]] = \
      ::nuri::bench::register_benchmark({name, __VA_ARGS__, true})
