// Errors: every failure inside nuri is a nuri::Error whose message names what is at fault.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace nuri {

// The one exception type nuri throws; the message names the file, field or value at fault.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Concatenates any streamable values into one string.
template <class... Parts>
std::string cat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

// Throws nuri::Error built from the streamed parts.
template <class... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw Error(cat(std::forward<Parts>(parts)...));
}

}  // namespace nuri

// Throws nuri::Error with the streamed message parts when cond is false.
#define NURI_CHECK(cond, ...)               \
  do {                                      \
    if (!(cond)) ::nuri::fail(__VA_ARGS__); \
  } while (0)
