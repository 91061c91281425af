// Whole-file reads and atomic writes: a file written through AtomicFile appears complete under
// its name or not at all, so a crash never leaves a half-written file behind.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace nuri {

// The bytes of `path`; throws nuri::Error naming the file when it cannot be read.
std::string read_file(const std::string& path);

// A file written to a temporary name in the target's directory and renamed over the target by
// commit(), after an fsync of the data and followed by one of the directory. Destroyed without
// commit(), it removes the temporary file and leaves the target untouched. Errors are
// nuri::Error messages that start with the target path.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* bytes, size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }
  // Makes the written bytes the target's content.
  void commit();

 private:
  std::string path_, temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// Writes `bytes` to `path` through an AtomicFile.
void write_file_atomic(const std::string& path, std::string_view bytes);

// Makes a rename inside `directory` durable (fsync of the directory itself).
void sync_directory(const std::string& directory);

}  // namespace nuri
