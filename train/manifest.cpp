#include "train/manifest.h"

#include <filesystem>
#include <fstream>

#include "kernels/error.h"

namespace nuri {

std::vector<ManifestEntry> load_manifest(const std::string& path) {
  std::ifstream in(path);
  NURI_CHECK(in.good(), path, ": cannot open the manifest");
  const std::filesystem::path base = std::filesystem::path(path).parent_path();
  std::vector<ManifestEntry> out;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = cat(path, ":", number);
    const nlohmann::json json = nlohmann::json::parse(line, nullptr, false);
    NURI_CHECK(!json.is_discarded(), where, ": not valid JSON");
    ManifestEntry entry{conversation_from_json(json, base, where), {}, {}, where};
    for (const char* key : {"task", "answer"}) {
      if (!json.contains(key)) continue;
      NURI_CHECK(json[key].is_string(), where, ": '", key, "' must be a string");
      (key == std::string("task") ? entry.task : entry.answer) = json[key].get<std::string>();
    }
    out.push_back(std::move(entry));
  }
  NURI_CHECK(!in.bad(), path, ": read error");
  NURI_CHECK(!out.empty(), path, ": the manifest holds no conversations");
  return out;
}

}  // namespace nuri
