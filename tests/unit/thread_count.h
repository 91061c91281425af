// Test helper: sets the OpenMP thread count for a scope.
#pragma once

#include <omp.h>

namespace nuri::test {

// Sets the OpenMP thread count for its lifetime and restores the previous one.
class ThreadCount {
 public:
  explicit ThreadCount(int threads) : previous_(omp_get_max_threads()) {
    omp_set_num_threads(threads);
  }
  ~ThreadCount() { omp_set_num_threads(previous_); }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;

 private:
  int previous_;
};

}  // namespace nuri::test
