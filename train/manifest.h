// JSONL manifests: one conversation per line (fusion/conversation.h), with media paths relative to
// the manifest, plus optional fields that evaluation reads ("task", "answer").
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fusion/conversation.h"

namespace nuri {

struct ManifestEntry {
  Conversation conversation;
  std::string task;    // the question type ("transcribe", "image_color", ...); may be empty
  std::string answer;  // the expected reply, when the line gives one
  std::string where;   // "file:line", for messages
};

// Reads every line of a manifest; blank lines are skipped. A line that is not valid JSON or not a
// valid conversation is an error naming the file and line. An empty manifest is an error.
std::vector<ManifestEntry> load_manifest(const std::string& path);

}  // namespace nuri
