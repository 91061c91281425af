// The synthetic corpus's back ends: speech from the espeak-ng library, and shapes and text drawn
// with OpenCV (text through its FreeType module, for Hangul).
#include <array>
#include <filesystem>

#include "kernels/error.h"
#include "train/synth_parts.h"

#ifdef NURI_WITH_SYNTH
#include <espeak-ng/espeak_ng.h>

#include <mutex>
#include <opencv2/freetype.hpp>
#include <opencv2/imgproc.hpp>

#include "media/audio.h"
#endif

namespace nuri::synth {

std::string find_hangul_font() {
  static const std::array<const char*, 4> kPlaces = {
      "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
      "/usr/share/fonts/nanum/NanumGothic.ttf",
      "/usr/share/fonts/truetype/NanumGothic.ttf",
      "/usr/local/share/fonts/NanumGothic.ttf",
  };
  std::string searched;
  for (const char* place : kPlaces) {
    if (std::filesystem::is_regular_file(place)) return place;
    searched += cat(searched.empty() ? "" : ", ", place);
  }
  fail("synth: no Hangul font found (looked for ", searched,
       "); install fonts-nanum or pass --font FILE.ttf");
}

#ifdef NURI_WITH_SYNTH

namespace {

// espeak-ng keeps global state: every call into it holds this lock.
std::mutex espeak_mutex;

// Throws when an espeak-ng call failed, with the library's message.
void check_espeak(espeak_ng_STATUS status, const char* call) {
  if (status == ENS_OK) return;
  char message[512] = {};
  espeak_ng_GetStatusCodeMessage(status, message, sizeof(message));
  fail("synth: espeak-ng ", call, " failed: ", message);
}

// Collects the synthesized 16-bit samples into the vector passed as user data.
int collect_samples(short* samples, int count, espeak_EVENT* events) {
  if (samples && count > 0) {
    auto* out = static_cast<std::vector<short>*>(events->user_data);
    out->insert(out->end(), samples, samples + count);
  }
  return 0;  // continue
}

// Initializes espeak-ng once (synchronous output to the callback); returns its sample rate.
// Called with espeak_mutex held.
int espeak_sample_rate() {
  static const int rate = [] {
    espeak_ng_InitializePath(nullptr);
    espeak_ng_ERROR_CONTEXT context = nullptr;
    const espeak_ng_STATUS status = espeak_ng_Initialize(&context);
    if (context) espeak_ng_ClearErrorContext(&context);
    check_espeak(status, "initialization (is espeak-ng-data installed?)");
    check_espeak(espeak_ng_InitializeOutput(ENOUTPUT_MODE_SYNCHRONOUS, 0, nullptr), "output setup");
    espeak_SetSynthCallback(collect_samples);
    return espeak_ng_GetSampleRate();
  }();
  return rate;
}

}  // namespace

std::vector<float> speak(const std::string& text, const Voice& voice) {
  std::vector<short> pcm;
  int rate = 0;
  {
    std::lock_guard<std::mutex> lock(espeak_mutex);
    rate = espeak_sample_rate();
    check_espeak(espeak_ng_SetVoiceByName(voice.name.c_str()),
                 cat("voice '", voice.name, "'").c_str());
    check_espeak(espeak_ng_SetParameter(espeakRATE, voice.rate, 0), "setting the rate");
    check_espeak(espeak_ng_SetParameter(espeakPITCH, voice.pitch, 0), "setting the pitch");
    check_espeak(espeak_ng_Synthesize(text.c_str(), text.size() + 1, 0, POS_CHARACTER, 0,
                                      espeakCHARS_UTF8, nullptr, &pcm),
                 cat("speaking '", text, "'").c_str());
    check_espeak(espeak_ng_Synchronize(), "synchronize");
  }
  NURI_CHECK(!pcm.empty(), "synth: espeak-ng produced no audio for '", text, "' (voice ",
             voice.name, ")");
  std::vector<float> samples(pcm.size());
  for (size_t i = 0; i < pcm.size(); ++i) samples[i] = static_cast<float>(pcm[i]) / 32768.0f;
  return to_mono_16k(samples.data(), static_cast<int64_t>(samples.size()), 1, rate);
}

struct Painter::Font {
  cv::Ptr<cv::freetype::FreeType2> engine;
};

Painter::Painter(const std::string& font) : font_(std::make_unique<Font>()) {
  const std::string path = font.empty() ? find_hangul_font() : font;
  NURI_CHECK(std::filesystem::is_regular_file(path), "synth: font ", path, " does not exist");
  font_->engine = cv::freetype::createFreeType2();
  try {
    font_->engine->loadFontData(path, 0);
  } catch (const cv::Exception& e) {
    fail("synth: font ", path, " cannot be loaded: ", e.what());
  }
}

Painter::~Painter() = default;

namespace {

// The image's pixels as an OpenCV matrix (channels in RGB order).
cv::Mat as_mat(Image& image) {
  return cv::Mat(static_cast<int>(image.height), static_cast<int>(image.width), CV_8UC3,
                 image.rgb.data());
}

constexpr int kShift = 4;  // sub-pixel bits of polygon vertices
constexpr double kPi = 3.141592653589793;

// A polygon's vertices in fixed point: local (x, y) points scaled by r, turned and moved.
std::vector<cv::Point> place(const std::vector<std::array<double, 2>>& local, double x, double y,
                             double r, double angle) {
  const double c = std::cos(angle), s = std::sin(angle);
  std::vector<cv::Point> points;
  for (const auto& [u, v] : local) {
    points.emplace_back(static_cast<int>(std::lround((x + r * (c * u - s * v)) * (1 << kShift))),
                        static_cast<int>(std::lround((y + r * (s * u + c * v)) * (1 << kShift))));
  }
  return points;
}

// The vertices of a regular polygon (or a star when inner > 0) on the unit circle, first vertex
// straight up.
std::vector<std::array<double, 2>> regular(int corners, double inner = 0) {
  std::vector<std::array<double, 2>> points;
  const int steps = inner > 0 ? 2 * corners : corners;
  for (int i = 0; i < steps; ++i) {
    const double a = -kPi / 2 + 2 * kPi * i / steps;
    const double radius = inner > 0 && i % 2 ? inner : 1.0;
    points.push_back({radius * std::cos(a), radius * std::sin(a)});
  }
  return points;
}

}  // namespace

void Painter::shape(Image& image, size_t shape, const Colour& colour, double x, double y, double r,
                    double angle) {
  cv::Mat mat = as_mat(image);
  const cv::Scalar fill(colour.r, colour.g, colour.b);
  const std::string& name = shapes().at(shape).en;
  std::vector<std::array<double, 2>> local;
  if (name == "circle") {
    cv::circle(mat,
               cv::Point(static_cast<int>(std::lround(x * (1 << kShift))),
                         static_cast<int>(std::lround(y * (1 << kShift)))),
               static_cast<int>(std::lround(0.9 * r * (1 << kShift))), fill, cv::FILLED,
               cv::LINE_AA, kShift);
    return;
  } else if (name == "square") {
    local = {{-0.72, -0.72}, {0.72, -0.72}, {0.72, 0.72}, {-0.72, 0.72}};
  } else if (name == "triangle") {
    local = regular(3);
    for (auto& point : local) point[1] += 0.2;  // centre the area, not the circumcircle
  } else if (name == "star") {
    local = regular(5, 0.45);
  } else if (name == "hexagon") {
    local = regular(6);
  } else if (name == "cross") {
    const double a = 0.3;
    local = {{-a, -1}, {a, -1}, {a, -a}, {1, -a}, {1, a},   {a, a},
             {a, 1},   {-a, 1}, {-a, a}, {-1, a}, {-1, -a}, {-a, -a}};
  } else if (name == "diamond") {
    local = {{0, -1}, {0.6, 0}, {0, 1}, {-0.6, 0}};
  } else {
    fail("synth: no drawing for shape '", name, "'");
  }
  const std::vector<std::vector<cv::Point>> polygons = {place(local, x, y, r, angle)};
  cv::fillPoly(mat, polygons, fill, cv::LINE_AA, kShift);
}

void Painter::text(Image& image, const std::string& text, const Colour& colour, double x, double y,
                   double width, double height) {
  cv::Mat mat = as_mat(image);
  int font_height = static_cast<int>(height);
  int baseline = 0;
  cv::Size size = font_->engine->getTextSize(text, font_height, -1, &baseline);
  NURI_CHECK(size.width > 0, "synth: the font cannot draw '", text, "'");
  if (size.width > width) {
    font_height = std::max(8, static_cast<int>(font_height * width / size.width));
    size = font_->engine->getTextSize(text, font_height, -1, &baseline);
  }
  const cv::Point origin(static_cast<int>(std::lround(x - size.width / 2.0)),
                         static_cast<int>(std::lround(y + size.height / 2.0)));
  font_->engine->putText(mat, text, origin, font_height, cv::Scalar(colour.r, colour.g, colour.b),
                         -1, cv::LINE_AA, true);
}

#else

std::vector<float> speak(const std::string& text, const Voice&) {
  fail("synth: speaking '", text,
       "' needs espeak-ng; nuri was built without media (configure with -DNURI_MEDIA=ON)");
}

struct Painter::Font {};

Painter::Painter(const std::string&) {
  fail(
      "synth: drawing needs OpenCV; nuri was built without media (configure with "
      "-DNURI_MEDIA=ON)");
}

Painter::~Painter() = default;

void Painter::shape(Image&, size_t, const Colour&, double, double, double, double) {}

void Painter::text(Image&, const std::string&, const Colour&, double, double, double, double) {}

#endif

}  // namespace nuri::synth
