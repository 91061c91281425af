// Helpers of the media tests: fixture paths, the tone's measurements and error expectations.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <initializer_list>
#include <numbers>
#include <string>
#include <vector>

#include "kernels/error.h"
#include "kernels/file_io.h"

namespace nuri::test {

// The path of a fixture made by tests/reference/make_media_fixtures.sh.
inline std::string media_fixture(const std::string& name) {
  return std::string(NURI_SOURCE_DIR) + "/tests/data/media/" + name;
}

// The bytes of a fixture.
inline std::string media_bytes(const std::string& name) {
  return read_file(media_fixture(name));
}

// Signal power at `frequency` (Goertzel), for 16 kHz samples.
inline double tone_power(const std::vector<float>& samples, double frequency) {
  double coefficient = 2 * std::cos(2 * std::numbers::pi * frequency / 16000);
  double previous = 0, before = 0;
  for (float sample : samples) {
    double current = sample + coefficient * previous - before;
    before = previous;
    previous = current;
  }
  return previous * previous + before * before - coefficient * previous * before;
}

// The frequency with the most power on a 10 Hz grid from 100 Hz to 2 kHz.
inline double dominant_frequency(const std::vector<float>& samples) {
  double best = 0, best_power = -1;
  for (double frequency = 100; frequency <= 2000; frequency += 10) {
    double power = tone_power(samples, frequency);
    if (power > best_power) best_power = power, best = frequency;
  }
  return best;
}

inline double rms(const std::vector<float>& samples) {
  double sum = 0;
  for (float sample : samples) sum += double(sample) * sample;
  return samples.empty() ? 0 : std::sqrt(sum / samples.size());
}

// Runs `call`, which must throw nuri::Error whose message holds every one of `parts`.
template <class Call>
void expect_error(Call&& call, std::initializer_list<std::string> parts) {
  try {
    call();
    ADD_FAILURE() << "no nuri::Error thrown; expected one mentioning " << *parts.begin();
  } catch (const Error& error) {
    std::string message = error.what();
    for (const std::string& part : parts) {
      EXPECT_NE(message.find(part), std::string::npos)
          << "message \"" << message << "\" lacks \"" << part << "\"";
    }
  }
}

}  // namespace nuri::test
