// Timing helpers shared by the benchmarks: medians of repeated runs, and two workloads timed in
// alternation so that both see the same machine state.
#pragma once

#include <chrono>
#include <functional>
#include <vector>

namespace nuri::bench {

using Clock = std::chrono::steady_clock;

// Seconds from `start` to now.
inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The median of `values` (the upper one of the middle two for an even count).
double median(std::vector<double> values);

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

}  // namespace nuri::bench
