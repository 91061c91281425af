// The CUDA runtime calls that the core needs (memory, copies, device count), each checked.
#pragma once

#include <cstddef>

namespace nuri::cuda {

// Number of visible GPUs; 0 when no driver or device is present.
int device_count();
// Device memory on GPU `index`; throws nuri::Error when it cannot be had.
void* malloc_device(int index, size_t bytes);
void free_device(int index, void* ptr);
// Copies `bytes` between any mix of host and device pointers, issued on GPU `index` (the source's
// when it is on a device), so that it follows the kernels queued there.
void copy(int index, void* dst, bool dst_on_device, const void* src, bool src_on_device,
          size_t bytes);
// Waits for every kernel queued on GPU `index`; a failed kernel's error surfaces here.
void synchronize(int index);
// Sets `bytes` of device memory to zero.
void zero_device(int index, void* ptr, size_t bytes);
// A timing event on GPU `index` (the kernel profiler's); recording it marks the default stream.
void* create_event(int index);
void record_event(int index, void* event);
// Milliseconds between two recorded events, after waiting for the second.
float elapsed_ms(void* start, void* end);
void destroy_event(void* event);

}  // namespace nuri::cuda
