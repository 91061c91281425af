#include "kernels/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kernels/error.h"

namespace nuri {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  NURI_CHECK(in, path, ": cannot open: ", std::strerror(errno));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  NURI_CHECK(!in.bad(), path, ": read failed");
  return std::move(bytes).str();
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  static std::atomic<uint64_t> counter{0};
  temp_path_ = cat(path_, ".tmp.", ::getpid(), ".", counter++);
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  NURI_CHECK(fd_ >= 0, path_, ": creating ", temp_path_, " failed: ", std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_path_.c_str());
}

void AtomicFile::write(const void* bytes, size_t size) {
  NURI_CHECK(fd_ >= 0 && !committed_, path_, ": write after commit");
  constexpr size_t kChunk = size_t{1} << 30;  // Linux writes at most ~2 GiB per call
  const char* next = static_cast<const char*>(bytes);
  while (size > 0) {
    const ssize_t written = ::write(fd_, next, std::min(size, kChunk));
    if (written < 0 && errno == EINTR) continue;
    NURI_CHECK(written >= 0, path_, ": writing ", temp_path_, " failed: ", std::strerror(errno));
    next += written;
    size -= static_cast<size_t>(written);
  }
}

void AtomicFile::commit() {
  NURI_CHECK(fd_ >= 0 && !committed_, path_, ": committed twice");
  NURI_CHECK(::fsync(fd_) == 0, path_, ": syncing ", temp_path_, " failed: ", std::strerror(errno));
  const int closed = ::close(fd_);
  fd_ = -1;
  NURI_CHECK(closed == 0, path_, ": closing ", temp_path_, " failed: ", std::strerror(errno));
  NURI_CHECK(::rename(temp_path_.c_str(), path_.c_str()) == 0, path_, ": renaming ", temp_path_,
             " failed: ", std::strerror(errno));
  committed_ = true;
  std::filesystem::path directory = std::filesystem::path(path_).parent_path();
  try {
    sync_directory(directory.empty() ? "." : directory.string());
  } catch (const Error& e) {
    fail(path_, ": written, but ", e.what());
  }
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  AtomicFile file(path);
  file.write(bytes);
  file.commit();
}

void sync_directory(const std::string& directory) {
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  NURI_CHECK(fd >= 0, "opening directory ", directory,
             " to sync it failed: ", std::strerror(errno));
  const int error = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  // EINVAL: the file system cannot sync directories, so there is nothing more to wait for.
  NURI_CHECK(error == 0 || error == EINVAL, "syncing directory ", directory,
             " failed: ", std::strerror(error));
}

}  // namespace nuri
