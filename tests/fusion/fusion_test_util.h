// Helpers shared by the fusion tests.
#pragma once

#include <string>

#include "encoders/tokenizer.h"

namespace nuri::test {

// The committed test tokenizer, which holds every chat and modality special token.
inline const Tokenizer& tokenizer() {
  static const Tokenizer t =
      Tokenizer::load(std::string(NURI_SOURCE_DIR) + "/tests/data/tokenizer/tokenizer.json");
  return t;
}

}  // namespace nuri::test
