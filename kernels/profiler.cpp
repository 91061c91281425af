#include "kernels/profiler.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <utility>

#include "kernels/error.h"
#ifdef NURI_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace nuri {
namespace {

// A GPU dispatch whose two events are read at the stop.
struct PendingGpu {
  const char* kernel;
  int device;
  void* start;
  void* end;
};

struct Profile {
  std::mutex mutex;
  std::atomic<bool> running{false};
  std::map<std::pair<std::string, std::string>, KernelTime> totals;  // by kernel and device
  std::vector<PendingGpu> pending;
  std::map<int, std::vector<void*>> free_events;  // recorded and read, kept for reuse per GPU
};

Profile& profile() {
  static Profile* instance = new Profile;  // never destroyed: scopes may end during exit
  return *instance;
}

// Dispatches of this thread inside a recorded one: they count in it.
thread_local int nesting = 0;

void add(Profile& p, const char* kernel, const Device& device, double ms) {
  KernelTime& total = p.totals[{kernel, device.str()}];
  total.kernel = kernel;
  total.device = device;
  total.calls += 1;
  total.ms += ms;
}

#ifdef NURI_WITH_CUDA
// An event of GPU `index` from the pool, recorded now. Called with the mutex held.
void* recorded_event(Profile& p, int index) {
  std::vector<void*>& pool = p.free_events[index];
  void* event = nullptr;
  if (pool.empty()) {
    event = cuda::create_event(index);
  } else {
    event = pool.back();
    pool.pop_back();
  }
  cuda::record_event(index, event);
  return event;
}
#endif

}  // namespace

void start_kernel_profile() {
  Profile& p = profile();
  std::lock_guard<std::mutex> lock(p.mutex);
  NURI_CHECK(!p.running.load(), "the kernel profiler already runs");
  p.totals.clear();
  p.pending.clear();
  p.running.store(true);
}

std::vector<KernelTime> stop_kernel_profile() {
  Profile& p = profile();
  std::lock_guard<std::mutex> lock(p.mutex);
  NURI_CHECK(p.running.load(), "the kernel profiler is not running");
  p.running.store(false);
#ifdef NURI_WITH_CUDA
  std::vector<PendingGpu> pending = std::move(p.pending);
  p.pending.clear();
  const auto recycle = [&] {  // every event back to its pool, read or not
    for (const PendingGpu& gpu : pending) {
      p.free_events[gpu.device].push_back(gpu.start);
      p.free_events[gpu.device].push_back(gpu.end);
    }
  };
  try {
    for (const PendingGpu& gpu : pending)
      add(p, gpu.kernel, Device::cuda(gpu.device), cuda::elapsed_ms(gpu.start, gpu.end));
  } catch (...) {
    recycle();
    throw;
  }
  recycle();
#endif
  std::vector<KernelTime> times;
  for (auto& entry : p.totals) times.push_back(std::move(entry.second));
  p.totals.clear();
  std::stable_sort(times.begin(), times.end(),
                   [](const KernelTime& a, const KernelTime& b) { return a.ms > b.ms; });
  return times;
}

KernelProfileRun::~KernelProfileRun() {
  if (!running_) return;
  try {
    stop_kernel_profile();
  } catch (...) {
    // Unwinding from another error, which is the one to report.
  }
}

std::vector<KernelTime> KernelProfileRun::finish() {
  running_ = false;
  return stop_kernel_profile();
}

KernelScope::KernelScope(const char* kernel, const Device& device) : device_(device) {
  Profile& p = profile();
  if (!p.running.load(std::memory_order_relaxed)) return;
  entered_ = true;
  if (nesting++ > 0) return;
  kernel_ = kernel;
#ifdef NURI_WITH_CUDA
  if (device.is_cuda()) {
    try {
      std::lock_guard<std::mutex> lock(p.mutex);
      start_event_ = recorded_event(p, device.index);
    } catch (...) {  // no destructor runs after a throwing constructor: undo the nesting here
      --nesting;
      throw;
    }
    return;
  }
#endif
  start_ = std::chrono::steady_clock::now();
}

KernelScope::~KernelScope() {
  if (entered_) --nesting;
  if (kernel_ == nullptr) return;
  const auto end = std::chrono::steady_clock::now();
  Profile& p = profile();
  try {
    std::lock_guard<std::mutex> lock(p.mutex);
#ifdef NURI_WITH_CUDA
    if (device_.is_cuda()) {
      if (!p.running.load()) {  // stopped meanwhile: the dispatch is dropped
        p.free_events[device_.index].push_back(start_event_);
        return;
      }
      p.pending.push_back({kernel_, device_.index, start_event_, recorded_event(p, device_.index)});
      return;
    }
#endif
    if (p.running.load()) {
      add(p, kernel_, device_, std::chrono::duration<double, std::milli>(end - start_).count());
    }
  } catch (...) {
    // A failed event (the GPU is in an error state): the dispatch's own error tells what. The
    // start event goes back to its pool.
#ifdef NURI_WITH_CUDA
    if (start_event_ != nullptr) {
      std::lock_guard<std::mutex> lock(p.mutex);
      p.free_events[device_.index].push_back(start_event_);
    }
#endif
  }
}

}  // namespace nuri
