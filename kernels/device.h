// Where a tensor's memory lives.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

namespace nuri {

// Kind of backend that owns memory and runs kernels.
enum class DeviceType : uint8_t { cpu, cuda };

// A backend plus an ordinal (the GPU index for cuda; always 0 for cpu).
struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  bool operator==(const Device&) const = default;
  // "cpu" or "cuda:N".
  std::string str() const;
  // Parses "cpu", "cuda" or "cuda:N"; throws nuri::Error otherwise.
  static Device parse(const std::string& name);
};

inline std::ostream& operator<<(std::ostream& out, const Device& device) {
  return out << device.str();
}

// The device that `name` ("cpu", "cuda" or "cuda:N") names, checked to be one that this build and
// machine can run: an error says why not (no CUDA backend, no GPU, no GPU of that index).
Device usable_device(const std::string& name);

// True when this build includes the CUDA backend.
bool cuda_compiled();
// Number of usable GPUs (0 when the build has no CUDA or no GPU is present).
int cuda_device_count();
// Waits until every kernel queued on `device` has finished (a no-op for the CPU, whose kernels
// finish before they return); benchmarks time GPU work with it.
void synchronize(const Device& device);

}  // namespace nuri
