// The codec entry points of a build without media (NURI_MEDIA=OFF, as on a bare GPU machine):
// each fails with an error that says how to get them.
#ifndef NURI_WITH_MEDIA
#include "kernels/error.h"
#include "media/audio.h"
#include "media/image.h"
#include "media/video.h"

namespace nuri {
namespace {
[[noreturn]] void unavailable(const std::string& what) {
  fail(what, ": nuri was built without media decoding (configure with -DNURI_MEDIA=ON)");
}
}  // namespace

std::vector<float> load_audio(const std::string& path, const AudioLoadOptions&) {
  unavailable(path);
}
std::vector<float> to_mono_16k(const float*, int64_t, int, int) {
  unavailable("resampling");
}
void save_wav(const std::string& path, const std::vector<float>&, int) {
  unavailable(path);
}
Image load_image(const std::string& path, const ImageLoadOptions&) {
  unavailable(path);
}
Image decode_image(const std::vector<uint8_t>&, const std::string& name, const ImageLoadOptions&) {
  unavailable(name);
}
void save_image(const std::string& path, const Image&) {
  unavailable(path);
}
Image resize_image(const Image&, int64_t, int64_t) {
  unavailable("image resizing");
}
Video load_video(const std::string& path, const VideoLoadOptions&) {
  unavailable(path);
}
void save_video(const std::string& path, const std::vector<Image>&, double,
                const std::vector<float>&) {
  unavailable(path);
}
}  // namespace nuri
#endif
