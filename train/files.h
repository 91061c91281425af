// Small file helpers for training runs.
#pragma once

#include <string>
#include <string_view>

#include "kernels/file_io.h"

namespace nuri {

// 64-bit FNV-1a of `bytes` as 16 hex digits: a cheap fingerprint for cache keys.
std::string fnv1a_hex(std::string_view bytes);

}  // namespace nuri
