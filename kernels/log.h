// The logger: leveled lines on stderr, shared by the whole process (like the allocator counters).
#pragma once

#include <string>
#include <string_view>

#include "kernels/error.h"

namespace nuri {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3 };

// Lines below this level are dropped; the default comes from NURI_LOG_LEVEL
// (debug|info|warn|error).
void set_log_level(LogLevel level);
LogLevel log_level();
// Text put before every line (for example "[rank 1] "), empty by default.
void set_log_prefix(std::string prefix);
// Writes one line at `level`.
void log_line(LogLevel level, std::string_view message);

template <class... Parts>
void log_debug(Parts&&... parts) {
  if (log_level() <= LogLevel::debug) log_line(LogLevel::debug, cat(std::forward<Parts>(parts)...));
}
template <class... Parts>
void log_info(Parts&&... parts) {
  if (log_level() <= LogLevel::info) log_line(LogLevel::info, cat(std::forward<Parts>(parts)...));
}
template <class... Parts>
void log_warn(Parts&&... parts) {
  if (log_level() <= LogLevel::warn) log_line(LogLevel::warn, cat(std::forward<Parts>(parts)...));
}

}  // namespace nuri
