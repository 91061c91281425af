#include "kernels/cuda/check.h"
#include "kernels/cuda/runtime.h"

namespace nuri::cuda {

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return count;
}

void* malloc_device(int index, size_t bytes) {
  NURI_CUDA_CHECK(cudaSetDevice(index));
  void* ptr = nullptr;
  const cudaError_t status = cudaMalloc(&ptr, bytes);
  if (status != cudaSuccess) {
    cudaGetLastError();  // the caching pool frees its cache and retries; no later check sees it
    fail("cudaMalloc of ", bytes, " bytes on cuda:", index,
         " failed: ", cudaGetErrorString(status));
  }
  return ptr;
}

void free_device(int index, void* ptr) {
  // Never throws (called from destructors); a failure is cleared so that no later check reports it.
  if (cudaSetDevice(index) != cudaSuccess || cudaFree(ptr) != cudaSuccess) cudaGetLastError();
}

void copy(int index, void* dst, bool dst_on_device, const void* src, bool src_on_device,
          size_t bytes) {
  NURI_CUDA_CHECK(cudaSetDevice(index));
  const cudaMemcpyKind kind =
      dst_on_device ? (src_on_device ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                    : (src_on_device ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  NURI_CUDA_CHECK(cudaMemcpy(dst, src, bytes, kind));
}

void synchronize(int index) {
  NURI_CUDA_CHECK(cudaSetDevice(index));
  NURI_CUDA_CHECK(cudaDeviceSynchronize());
}

void zero_device(int index, void* ptr, size_t bytes) {
  NURI_CUDA_CHECK(cudaSetDevice(index));
  NURI_CUDA_CHECK(cudaMemset(ptr, 0, bytes));
}

void* create_event(int index) {
  NURI_CUDA_CHECK(cudaSetDevice(index));
  cudaEvent_t event = nullptr;
  NURI_CUDA_CHECK(cudaEventCreate(&event));
  return event;
}

void record_event(int index, void* event) {
  NURI_CUDA_CHECK(cudaSetDevice(index));
  NURI_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event), nullptr));
}

float elapsed_ms(void* start, void* end) {
  NURI_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(end)));
  float ms = 0;
  NURI_CUDA_CHECK(
      cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(end)));
  return ms;
}

void destroy_event(void* event) {
  if (cudaEventDestroy(static_cast<cudaEvent_t>(event)) != cudaSuccess) cudaGetLastError();
}

}  // namespace nuri::cuda
