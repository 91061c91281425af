#include "bench/timing.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace nuri::bench {

double median(std::vector<double> values) {
  std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
  return values[values.size() / 2];
}

double seconds_per_call(const std::function<void()>& fn, double min_seconds, int min_runs) {
  using clock = std::chrono::steady_clock;
  fn();  // warm-up: first-touch page faults, BLAS buffers
  std::vector<double> times;
  const auto start = clock::now();
  while (static_cast<int>(times.size()) < min_runs ||
         std::chrono::duration<double>(clock::now() - start).count() < min_seconds) {
    const auto t0 = clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(clock::now() - t0).count());
  }
  return median(times);
}

Paired paired_seconds_per_call(const std::function<void()>& a, const std::function<void()>& b,
                               int rounds) {
  using clock = std::chrono::steady_clock;
  auto seconds = [](const std::function<void()>& fn) {
    const auto t0 = clock::now();
    fn();
    return std::chrono::duration<double>(clock::now() - t0).count();
  };
  a();  // warm-up of both
  b();
  std::vector<double> ta, tb, ratios;
  for (int i = 0; i < rounds; ++i) {
    ta.push_back(seconds(a));
    tb.push_back(seconds(b));
    ratios.push_back(tb.back() / ta.back());
  }
  return {median(ta), median(tb), median(ratios)};
}

}  // namespace nuri::bench
