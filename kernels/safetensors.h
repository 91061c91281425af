// Safetensors files: memory-mapped, fully validated reading and atomic writing of named tensors.
//
// Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON mapping each tensor name
// to {"dtype", "shape", "data_offsets": [begin, end]} (plus an optional "__metadata__" object of
// strings), then the data buffer that the offsets index.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "kernels/tensor.h"

namespace nuri {

// Largest header accepted, in bytes (the limit the reference implementation uses).
inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

// One tensor's record in a safetensors header; begin and end index the data buffer.
struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  uint64_t begin = 0;  // first byte, relative to the start of the data buffer
  uint64_t end = 0;    // one past the last byte
};

// A safetensors file mapped into memory; copies share the mapping, which lives while any copy or
// any tensor aliasing it does.
class SafetensorsFile {
 public:
  // Maps `path` and validates its header and offsets; throws nuri::Error (message starting with
  // the path) on any fault, before any tensor is read.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  // Tensor names in the order of their data in the file.
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  // The header record of `name`; throws nuri::Error naming the file and the tensor if absent.
  const SafetensorsEntry& entry(const std::string& name) const;
  // A CPU tensor over the mapped bytes when they are aligned for the dtype, otherwise a copy.
  // Writes to an aliasing tensor stay private to this process (the file is never modified).
  Tensor tensor(const std::string& name) const;
  // The "__metadata__" strings (empty when the file has none).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The whole mapped file; lets callers tell aliasing tensors from copies.
  std::span<const std::byte> mapped_bytes() const;

 private:
  struct Mapping;
  SafetensorsFile() = default;
  std::string path_;
  std::shared_ptr<Mapping> mapping_;
  uint64_t data_start_ = 0;                // file offset of the data buffer
  std::vector<SafetensorsEntry> entries_;  // ordered by data offset
  std::map<std::string, size_t> index_;    // name -> position in entries_
  std::map<std::string, std::string> metadata_;
};

// Writes `tensors` (from any device) and `metadata` to `path` atomically: the data goes to a
// temporary file in the same directory, which is synced and renamed over `path`, and the
// directory is synced. Data is ordered by dtype size, largest first (keeping the given order
// among equal sizes), so that every tensor is aligned for its dtype once mapped. Every error is
// a nuri::Error whose message starts with `path`. A failure before the rename removes the
// temporary file and leaves `path` untouched; a failure to sync the directory after it says
// "written, but": the new file is complete in place, though a crash could still undo the rename.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace nuri
