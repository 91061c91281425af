#include "kernels/device.h"

#include "kernels/dispatch.h"
#include "kernels/error.h"
#ifdef NURI_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace nuri {

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

Device Device::parse(const std::string& name) {
  if (name == "cpu") return cpu();
  if (name == "cuda") return cuda(0);
  if (name.rfind("cuda:", 0) == 0 && name.size() > 5 && name.size() < 9 &&
      name.find_first_not_of("0123456789", 5) == std::string::npos) {
    return cuda(std::stoi(name.substr(5)));
  }
  fail("unknown device '", name, "' (expected cpu, cuda or cuda:N)");
}

Device usable_device(const std::string& name) {
  const Device device = Device::parse(name);
  if (device.is_cpu()) return device;
  NURI_CHECK(cuda_compiled(), "device ", name,
             ": this build has no CUDA backend (configure with -DNURI_CUDA=ON)");
  const int count = cuda_device_count();
  NURI_CHECK(count > 0, "device ", name, ": no GPU is visible");
  NURI_CHECK(device.index < count, "device ", name, ": there are only ", count, " GPUs");
  return device;
}

bool cuda_compiled() {
#ifdef NURI_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int cuda_device_count() {
#ifdef NURI_WITH_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

void synchronize(const Device& device) {
  if (device.is_cpu()) return;
#ifdef NURI_WITH_CUDA
  cuda::synchronize(device.index);
#else
  detail::no_cuda_kernel("synchronize");
#endif
}

namespace detail {
void no_cuda_kernel(const char* kernel) {
  fail(kernel, ": no CUDA kernel for this op", cuda_compiled() ? "" : " (built without CUDA)");
}
}  // namespace detail

}  // namespace nuri
