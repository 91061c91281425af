// A small benchmark registry: each file under bench/ops registers benchmarks that add rows to a
// report; main.cpp runs them, prints a table and optionally writes JSON. Figures only: nothing
// here asserts.
#pragma once

#include <functional>
#include <string>
#include <vector>

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

// Seconds per call of fn: the median of repeated runs after a warm-up, running for at least
// `min_seconds` in all and at least `min_runs` times.
double seconds_per_call(const std::function<void()>& fn, double min_seconds = 1.0,
                        int min_runs = 3);

// Two workloads timed in alternation (a, b, a, b, ...) so that both see the same machine state:
// the median seconds per call of each, and the median of the per-round ratios b / a.
struct Paired {
  double a_seconds = 0, b_seconds = 0, b_over_a = 0;
};
Paired paired_seconds_per_call(const std::function<void()>& a, const std::function<void()>& b,
                               int rounds = 9);

struct Benchmark {
  std::string name;
  std::function<void(Report&)> run;
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
