// The ffprobe command's JSON description of a media file: tests check what nuri writes with a
// tool that is not nuri.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace nuri::test {

// ffprobe's streams and format of `path`, as JSON.
inline nlohmann::json ffprobe(const std::string& path) {
  const std::string command =
      "ffprobe -v error -print_format json -show_streams -show_format '" + path + "' 2>/dev/null";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  EXPECT_TRUE(pipe) << command;
  std::string text;
  char buffer[4096];
  for (size_t n; pipe && (n = std::fread(buffer, 1, sizeof(buffer), pipe.get())) > 0;)
    text.append(buffer, n);
  return nlohmann::json::parse(text);
}

}  // namespace nuri::test
