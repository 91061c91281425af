// A conversation as nuri's manifests and APIs carry it: messages with content parts in the OpenAI
// chat style (text, input_audio, image, video), media referred to by path.
#pragma once
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

namespace nuri {

enum class Role { system, user, assistant };

// What one content part holds.
enum class PartKind { text, audio, image, video };

struct ContentPart {
  PartKind kind = PartKind::text;
  std::string text;  // for text
  std::string path;  // for media: resolved against the manifest's folder
  // For audio, or a video's soundtrack: what is said, when known (empty: nothing is said).
  std::optional<std::string> transcript;
};

struct Message {
  Role role = Role::user;
  std::vector<ContentPart> content;
};

struct Conversation {
  std::vector<Message> messages;
  // Media parts in order of appearance (message by message, part by part).
  std::vector<const ContentPart*> media() const;
};

// Reads {"messages": [{"role": ..., "content": "text" | [{"type": ..., ...}]}]}. Part types:
// "text" (text), "input_audio" / "audio" (path), "image" / "input_image" (path), "video"
// (path); audio and video parts may carry a string "transcript". Relative paths resolve against
// `base`. Errors name `where` (for example "train.jsonl:12") and the field at fault.
Conversation conversation_from_json(const nlohmann::json& json, const std::filesystem::path& base,
                                    const std::string& where);

// The name of a role as manifests write it ("user", ...).
const char* role_name(Role role);

}  // namespace nuri
