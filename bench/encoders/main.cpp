// nuri-bench-encoders: the audio and vision encoders on the CPU, in inference. Audio: the
// real-time factor (seconds of audio encoded per second of compute) of a tiny and a small
// encoder, encoding the whole input at once and as a stream of 100 ms pieces, timed in
// alternation so that the streaming/whole ratio compares like with like. Vision: milliseconds
// per image at 224x224 and 448x448 for the same two sizes, one image at a time and in a batch.
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/timing.h"
#include "encoders/audio_encoder.h"
#include "encoders/vision_encoder.h"
#include "kernels/autograd.h"
#include "kernels/cpu/blas.h"
#include "kernels/ops/random.h"
#include "kernels/ops/shape.h"

extern "C" void openblas_set_num_threads(int);

namespace nuri {
namespace {

// Random normal numbers of `shape`.
Tensor random_tensor(const Shape& shape, uint64_t seed) {
  Tensor x = Tensor::empty(shape);
  Generator gen{seed, 0};
  normal_(x, gen);
  return x;
}

// Parameter count in millions.
double millions(const std::vector<NamedParameter>& parameters) {
  int64_t count = 0;
  for (const NamedParameter& p : parameters) count += p.tensor.numel();
  return count / 1e6;
}

// One encoder size: the transformer width and depth shared by the audio and vision benches.
struct Size {
  const char* name;
  int64_t hidden, layers, heads, intermediate, output;
};

void print_row(const char* model, const std::string& what, double value, const char* unit) {
  std::printf("  %-6s %-50s %10.2f %s\n", model, what.c_str(), value, unit);
}

void bench_audio(const Size& size, double audio_seconds, int piece_frames, int rounds) {
  AudioEncoderConfig config;
  config.hidden_size = size.hidden;
  config.num_layers = size.layers;
  config.num_heads = size.heads;
  config.intermediate_size = size.intermediate;
  config.output_size = size.output;
  AudioEncoder encoder(config);
  Generator gen{1, 0};
  encoder.init(gen);
  const int64_t frames = static_cast<int64_t>(audio_seconds * AudioEncoderConfig::kFramesPerSecond);
  const Tensor mel = random_tensor({config.n_mels, frames}, 2);
  std::vector<Tensor> pieces;
  {
    NoGradScope no_grad;
    for (int64_t at = 0; at < frames; at += piece_frames) {
      pieces.push_back(slice(mel, 1, at, std::min<int64_t>(frames, at + piece_frames)));
    }
  }
  auto whole = [&] {
    NoGradScope no_grad;
    encoder.encode(mel);
  };
  auto streamed = [&] {
    AudioEncoderStream stream(encoder);
    for (const Tensor& piece : pieces) stream.push(piece);
    stream.finish();
  };
  const bench::Paired t = bench::paired_seconds_per_call(whole, streamed, rounds);
  std::printf("%s audio encoder: %.1fM parameters, %.0f s of audio (%lld tokens)\n", size.name,
              millions(encoder.parameters()), audio_seconds,
              static_cast<long long>(encoder.token_count(frames)));
  print_row(size.name, "audio whole: real-time factor", audio_seconds / t.a_seconds, "x");
  print_row(size.name, cat("audio streaming (", piece_frames * 10, " ms pieces): real-time factor"),
            audio_seconds / t.b_seconds, "x");
  print_row(size.name, "audio streaming / whole time", t.b_over_a, "");
}

void bench_vision(const Size& size, double min_seconds) {
  VisionEncoderConfig config;
  config.hidden_size = size.hidden;
  config.num_layers = size.layers;
  config.num_heads = size.heads;
  config.intermediate_size = size.intermediate;
  config.output_size = size.output;
  VisionEncoder encoder(config);
  Generator gen{3, 0};
  encoder.init(gen);
  std::printf("%s vision encoder: %.1fM parameters\n", size.name, millions(encoder.parameters()));
  for (int64_t side : {224, 448}) {
    const Tensor image = random_tensor({3, side, side}, 4);
    const double one = bench::seconds_per_call(
        [&] {
          NoGradScope no_grad;
          encoder.encode_image(image);
        },
        min_seconds);
    print_row(
        size.name,
        cat("image ", side, "x", side, " (", config.image_token_count(side, side), " tokens): one"),
        one * 1e3, "ms/image");
    const int64_t batch = 8;
    const Tensor images = random_tensor({batch, 3, side, side}, 5);
    const double many = bench::seconds_per_call(
        [&] {
          NoGradScope no_grad;
          encoder.encode_images(images);
        },
        min_seconds);
    print_row(size.name, cat("image ", side, "x", side, ": batch of ", batch), many / batch * 1e3,
              "ms/image");
  }
}

}  // namespace
}  // namespace nuri

int main(int argc, char** argv) {
  nuri::cpu::reexec_for_blas_core(argv);
  using namespace nuri;
  CLI::App app{"nuri audio and vision encoder benchmarks (CPU, inference)", "nuri-bench-encoders"};
  int threads = omp_get_max_threads(), rounds = 5, piece_ms = 100;
  double audio_seconds = 30, min_seconds = 1;
  app.add_option("--threads", threads, "Threads for OpenMP and OpenBLAS")
      ->check(CLI::PositiveNumber);
  app.add_option("--audio-seconds", audio_seconds, "Length of the encoded audio")
      ->check(CLI::PositiveNumber);
  app.add_option("--piece-ms", piece_ms, "Streaming piece length in ms (multiple of 10)")
      ->check(CLI::PositiveNumber);
  app.add_option("--rounds", rounds, "Alternating whole/streaming rounds per audio model")
      ->check(CLI::PositiveNumber);
  app.add_option("--min-seconds", min_seconds, "Minimum timing per image measurement")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
  try {
    NURI_CHECK(piece_ms % 10 == 0, "--piece-ms ", piece_ms,
               " is not a whole number of 10 ms frames");
    const Size sizes[] = {{"tiny", 128, 2, 2, 512, 256}, {"small", 384, 6, 6, 1536, 512}};
    std::printf("nuri-bench-encoders: %d threads\n", threads);
    for (const Size& size : sizes) bench_audio(size, audio_seconds, piece_ms / 10, rounds);
    for (const Size& size : sizes) bench_vision(size, min_seconds);
  } catch (const Error& e) {
    std::fprintf(stderr, "nuri-bench-encoders: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
