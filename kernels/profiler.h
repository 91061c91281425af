// The kernel profiler: the time of every kernel that NURI_DISPATCH runs between
// start_kernel_profile() and stop_kernel_profile(), summed per kernel and device. CPU kernels are
// timed by the wall clock. CUDA kernels are timed by events on the GPU's default stream, read only
// at the stop, so profiling adds no synchronization; an event pair also counts any wait for the
// host between its marks. A kernel run inside another kernel's dispatch counts in the outer one.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/device.h"

namespace nuri {

// One kernel's calls and total milliseconds on one device.
struct KernelTime {
  std::string kernel;
  Device device;
  int64_t calls = 0;
  double ms = 0;
};

// Starts recording, with every total at zero; throws when the profiler already runs.
void start_kernel_profile();
// Stops recording (waiting for the GPU work it timed) and returns the totals, the largest first.
std::vector<KernelTime> stop_kernel_profile();

// Runs the profiler from construction until finish(), or until destruction on an error path.
class KernelProfileRun {
 public:
  KernelProfileRun() { start_kernel_profile(); }
  ~KernelProfileRun();
  KernelProfileRun(const KernelProfileRun&) = delete;
  KernelProfileRun& operator=(const KernelProfileRun&) = delete;
  // Stops and returns the totals (stop_kernel_profile's).
  std::vector<KernelTime> finish();

 private:
  bool running_ = true;
};

// Times one dispatch of `kernel` on `device` while the profiler runs; otherwise does nothing.
class KernelScope {
 public:
  KernelScope(const char* kernel, const Device& device);
  ~KernelScope();
  KernelScope(const KernelScope&) = delete;
  KernelScope& operator=(const KernelScope&) = delete;

 private:
  bool entered_ = false;          // counted in this thread's nesting
  const char* kernel_ = nullptr;  // null when this dispatch is not recorded
  Device device_;
  std::chrono::steady_clock::time_point start_;
  void* start_event_ = nullptr;  // the CUDA event marking the start, on a GPU
};

}  // namespace nuri
