#include "kernels/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace nuri {
namespace {

LogLevel level_from_env() {
  const char* value = std::getenv("NURI_LOG_LEVEL");
  if (value == nullptr) return LogLevel::info;
  const std::string_view name(value);
  if (name == "debug") return LogLevel::debug;
  if (name == "warn") return LogLevel::warn;
  if (name == "error") return LogLevel::error;
  return LogLevel::info;
}

struct Logger {
  std::atomic<LogLevel> level{level_from_env()};
  std::mutex mutex;
  std::string prefix;
};

Logger& logger() {
  static Logger instance;
  return instance;
}

const char* level_tag(LogLevel level) {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warning";
    case LogLevel::error:
      return "error";
  }
  return "";
}

}  // namespace

void set_log_level(LogLevel level) {
  logger().level = level;
}
LogLevel log_level() {
  return logger().level;
}

void set_log_prefix(std::string prefix) {
  std::lock_guard lock(logger().mutex);
  logger().prefix = std::move(prefix);
}

void log_line(LogLevel level, std::string_view message) {
  if (level < log_level()) return;
  std::lock_guard lock(logger().mutex);
  std::fprintf(stderr, "%snuri %s: %.*s\n", logger().prefix.c_str(), level_tag(level),
               static_cast<int>(message.size()), message.data());
}

}  // namespace nuri
