// The checks every decoder makes on its input path before it reads a byte.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include "kernels/error.h"

namespace nuri {

// The size of the regular, non-empty file at `path`; throws naming the path when it is missing,
// a directory or empty.
inline uint64_t check_input_file(const std::string& path) {
  std::error_code error;
  auto status = std::filesystem::status(path, error);
  NURI_CHECK(std::filesystem::exists(status), path, ": no such file");
  NURI_CHECK(!std::filesystem::is_directory(status), path, ": is a directory, not a file");
  uint64_t size = std::filesystem::file_size(path, error);
  NURI_CHECK(!error, path, ": cannot read its size (", error.message(), ")");
  NURI_CHECK(size > 0, path, ": empty file (0 bytes)");
  return size;
}

}  // namespace nuri
