#include "fusion/conversation.h"

#include <nlohmann/json.hpp>

#include "kernels/error.h"

namespace nuri {

namespace {

Role parse_role(const nlohmann::json& value, const std::string& where) {
  NURI_CHECK(value.is_string(), where, ": 'role' must be a string, got ", value.dump());
  const std::string role = value.get<std::string>();
  if (role == "system") return Role::system;
  if (role == "user") return Role::user;
  if (role == "assistant") return Role::assistant;
  fail(where, ": unknown role '", role, "' (expected system, user or assistant)");
}

// The path of a media part: "path", or OpenAI's {"input_audio": {"path": ...}} /
// {"image_url": {"path": ...}} nesting.
std::string media_path(const nlohmann::json& part, const std::string& type,
                       const std::filesystem::path& base, const std::string& where) {
  const nlohmann::json* holder = &part;
  for (const char* nest : {"input_audio", "image_url", "video_url"})
    if (part.contains(nest) && part[nest].is_object()) holder = &part[nest];
  NURI_CHECK(holder->contains("path") && (*holder)["path"].is_string() &&
                 !(*holder)["path"].get<std::string>().empty(),
             where, ": a '", type, "' part needs a non-empty string 'path'");
  const std::filesystem::path path = (*holder)["path"].get<std::string>();
  return (path.is_absolute() ? path : base / path).lexically_normal().string();
}

ContentPart parse_part(const nlohmann::json& part, const std::filesystem::path& base,
                       const std::string& where) {
  NURI_CHECK(part.is_object(), where, ": a content part must be an object, got ", part.dump());
  NURI_CHECK(part.contains("type") && part["type"].is_string(), where,
             ": a content part needs a string 'type'");
  const std::string type = part["type"].get<std::string>();
  ContentPart out;
  if (type == "text" || type == "input_text") {
    NURI_CHECK(part.contains("text") && part["text"].is_string(), where,
               ": a text part needs a string 'text'");
    out.text = part["text"].get<std::string>();
    return out;
  }
  if (type == "input_audio" || type == "audio")
    out.kind = PartKind::audio;
  else if (type == "image" || type == "input_image" || type == "image_url")
    out.kind = PartKind::image;
  else if (type == "video" || type == "input_video" || type == "video_url")
    out.kind = PartKind::video;
  else
    fail(where, ": unknown content part type '", type,
         "' (expected text, input_audio, image or video)");
  out.path = media_path(part, type, base, where);
  if (part.contains("transcript")) {
    NURI_CHECK(out.kind != PartKind::image, where, ": an image part has no 'transcript'");
    NURI_CHECK(part["transcript"].is_string(), where, ": 'transcript' must be a string, got ",
               part["transcript"].dump());
    out.transcript = part["transcript"].get<std::string>();
  }
  return out;
}

}  // namespace

const char* role_name(Role role) {
  switch (role) {
    case Role::system:
      return "system";
    case Role::user:
      return "user";
    case Role::assistant:
      return "assistant";
  }
  return "?";
}

std::vector<const ContentPart*> Conversation::media() const {
  std::vector<const ContentPart*> out;
  for (const Message& m : messages)
    for (const ContentPart& p : m.content)
      if (p.kind != PartKind::text) out.push_back(&p);
  return out;
}

Conversation conversation_from_json(const nlohmann::json& json, const std::filesystem::path& base,
                                    const std::string& where) {
  NURI_CHECK(json.is_object() && json.contains("messages") && json["messages"].is_array(), where,
             ": expected an object with a 'messages' array");
  Conversation out;
  const nlohmann::json& messages = json["messages"];
  NURI_CHECK(!messages.empty(), where, ": 'messages' is empty");
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string at = cat(where, ": messages[", i, "]");
    const nlohmann::json& m = messages[i];
    NURI_CHECK(m.is_object() && m.contains("role") && m.contains("content"), at,
               ": expected an object with 'role' and 'content'");
    Message message;
    message.role = parse_role(m["role"], at);
    const nlohmann::json& content = m["content"];
    if (content.is_string()) {
      message.content.push_back({.kind = PartKind::text,
                                 .text = content.get<std::string>(),
                                 .path = {},
                                 .transcript = {}});
    } else {
      NURI_CHECK(content.is_array() && !content.empty(), at,
                 ": 'content' must be a string or a non-empty array of parts");
      for (size_t j = 0; j < content.size(); ++j)
        message.content.push_back(parse_part(content[j], base, cat(at, ".content[", j, "]")));
    }
    NURI_CHECK(message.role == Role::user ||
                   std::all_of(message.content.begin(), message.content.end(),
                               [](const ContentPart& p) { return p.kind == PartKind::text; }),
               at, ": only user messages may hold media (speech output is not supported yet)");
    out.messages.push_back(std::move(message));
  }
  return out;
}

}  // namespace nuri
