// Reading and writing the encoder configs as flat JSON objects. Each config lists its fields once,
// in a `fields(self, visit)` function that calls visit(key, member) for every field; reading and
// writing both go through it, so the two can never disagree about the keys.
#pragma once

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/error.h"

namespace nuri::config_json {

// Reads config.fields(...) from `json`: a key of the wrong JSON type or a key that names no field
// is an error naming it; absent keys keep their defaults. `what` names the config in errors.
template <class Config>
Config read(const nlohmann::json& json, const char* what) {
  NURI_CHECK(json.is_object(), what, ": expected a JSON object, got ", json.type_name());
  Config config;
  std::set<std::string> known;
  Config::fields(config, [&](const char* key, auto& member) {
    known.insert(key);
    if (!json.contains(key)) return;
    const nlohmann::json& value = json.at(key);
    using T = std::remove_reference_t<decltype(member)>;
    if constexpr (std::is_same_v<T, bool>) {
      NURI_CHECK(value.is_boolean(), what, " key '", key, "': expected true or false, got ",
                 value.dump());
    } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
      NURI_CHECK(
          value.is_array() && std::all_of(value.begin(), value.end(),
                                          [](const auto& v) { return v.is_number_integer(); }),
          what, " key '", key, "': expected a list of integers, got ", value.dump());
    } else if constexpr (std::is_integral_v<T>) {
      NURI_CHECK(value.is_number_integer(), what, " key '", key, "': expected an integer, got ",
                 value.dump());
    } else {
      NURI_CHECK(value.is_number(), what, " key '", key, "': expected a number, got ",
                 value.dump());
    }
    member = value.get<T>();
  });
  for (const auto& item : json.items()) {
    NURI_CHECK(known.count(item.key()), what, ": unknown key '", item.key(), "'");
  }
  config.validate();
  return config;
}

// Every field of `config` as a JSON object.
template <class Config>
nlohmann::json write(const Config& config) {
  nlohmann::json json = nlohmann::json::object();
  Config copy = config;
  Config::fields(copy, [&](const char* key, auto& member) { json[key] = member; });
  return json;
}

}  // namespace nuri::config_json
