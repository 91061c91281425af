// The pieces of the synthetic corpus generator (train/synth.h) shared by its source files: the
// seeded random stream, the word and shape tables, the sentence builder, and the speech and
// drawing back ends.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/philox.h"
#include "media/image.h"

namespace nuri::synth {

// A random stream of 64-bit draws from Philox4x32-10 keyed by the seed and a 64-bit stream id,
// with its own mappings to ranges, so that the same seed gives the same values on every machine
// and standard library.
class Rng {
 public:
  Rng(uint64_t seed, uint64_t stream) : seed_(seed), stream_(stream) {}

  // 64 random bits.
  uint64_t next() {
    if (buffered_ == 0) {
      const philox::Block block = philox::generate(
          philox::Block{{static_cast<uint32_t>(counter_), static_cast<uint32_t>(counter_ >> 32),
                         static_cast<uint32_t>(stream_), static_cast<uint32_t>(stream_ >> 32)}},
          static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32));
      ++counter_;
      buffer_[0] = (static_cast<uint64_t>(block.v[1]) << 32) | block.v[0];
      buffer_[1] = (static_cast<uint64_t>(block.v[3]) << 32) | block.v[2];
      buffered_ = 2;
    }
    return buffer_[--buffered_];
  }
  // Uniform in [0, n), unbiased (Lemire's multiply-and-reject); n > 0.
  uint64_t below(uint64_t n) {
    unsigned __int128 product = static_cast<unsigned __int128>(next()) * n;
    if (static_cast<uint64_t>(product) < n) {
      const uint64_t threshold = (0 - n) % n;
      while (static_cast<uint64_t>(product) < threshold) {
        product = static_cast<unsigned __int128>(next()) * n;
      }
    }
    return static_cast<uint64_t>(product >> 64);
  }
  // Uniform integer in [lo, hi].
  int64_t between(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
  }
  // Uniform in [0, 1) with 53 bits.
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * unit(); }
  // Standard normal (Box-Muller).
  double normal() {
    const double radius = std::sqrt(-2.0 * std::log(1.0 - unit()));
    return radius * std::cos(6.283185307179586 * unit());
  }
  // One element of a non-empty vector.
  template <class T>
  const T& pick(const std::vector<T>& items) {
    return items[below(items.size())];
  }

 private:
  uint64_t seed_, stream_, counter_ = 0;
  uint64_t buffer_[2] = {0, 0};
  int buffered_ = 0;
};

// The stream id of one sample's draws: which split, task and sample, and what for, so that
// every sample is generated independently of the others (and of the thread that does it).
inline uint64_t stream_id(uint64_t split, uint64_t task, uint64_t purpose, uint64_t index) {
  return (split + 1) << 56 | (task + 1) << 48 | purpose << 40 | index;
}

// A text with its English and Korean forms.
struct Named {
  std::string en, ko;
  const std::string& in(const std::string& language) const { return language == "ko" ? ko : en; }
};

// The object colours: names and RGB.
struct Colour {
  Named name;
  uint8_t r, g, b;
};
const std::vector<Colour>& colours();

// The object shapes drawn (their names index the drawing in draw_shape).
const std::vector<Named>& shapes();

// A sentence of 3 to 8 words of `language` ("en" or "ko") from the vocabulary's templates.
std::string make_sentence(Rng& rng, const std::string& language);

// The words of `language` that are spoken or written alone (its nouns).
const std::vector<std::string>& single_words(const std::string& language);

// --- Back ends (espeak-ng and OpenCV); a build without media fails in each with a clear error.

// How one utterance is spoken.
struct Voice {
  std::string name;  // espeak-ng voice with variant, "en-us+f3"
  int rate = 160;    // words per minute
  int pitch = 50;    // 0..100
};

// The voices of `language` (at least two each).
const std::vector<std::string>& voices(const std::string& language);

// `text` spoken by espeak-ng (one call at a time: the library is not thread-safe), as 16 kHz
// mono float.
std::vector<float> speak(const std::string& text, const Voice& voice);

// Draws shapes and text onto RGB images; one per thread (the font engine is not shared).
class Painter {
 public:
  // `font`: a TrueType file with Hangul, or "" to look for NanumGothic in the usual places.
  explicit Painter(const std::string& font);
  ~Painter();
  Painter(const Painter&) = delete;
  Painter& operator=(const Painter&) = delete;

  // Fills the image with `shape` (an index into shapes()) centred at (x, y) with circumradius r,
  // turned by `angle` radians.
  void shape(Image& image, size_t shape, const Colour& colour, double x, double y, double r,
             double angle);
  // Writes `text` centred at (x, y), as large as fits within width x height pixels.
  void text(Image& image, const std::string& text, const Colour& colour, double x, double y,
            double width, double height);

 private:
  struct Font;
  std::unique_ptr<Font> font_;
};

// The font file Painter("") uses; throws nuri::Error listing the places searched.
std::string find_hangul_font();

}  // namespace nuri::synth
