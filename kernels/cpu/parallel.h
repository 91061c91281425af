// When CPU kernels go parallel.
#pragma once

#include <cstdint>

namespace nuri::cpu {

// Loops over fewer elements than this stay on one thread: waking the OpenMP team costs more than
// the work it would share.
inline constexpr int64_t kParallelElements = 1 << 15;

}  // namespace nuri::cpu
