// nuri-bench-media: nuri's video and audio decoding against the ffmpeg command line doing the same
// work on the same files, timed in alternating pairs, and the log-mel front end's throughput.
// Video: load_video (frames sampled at 2 fps to RGB24, the soundtrack to 16 kHz mono float)
// against ffmpeg decoding the file, selecting frames by nuri's rule, converting them to rgb24 and
// resampling the soundtrack to 16 kHz mono f32le, written to /dev/null. Audio: load_audio against
// ffmpeg -ar 16000 -ac 1 -f f32le. The inputs are generated at start with the ffmpeg command line
// into a temporary directory. An untimed run of each peer writes its output to files first, and
// the bench checks that both sides produced the same frames and the same number of samples.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/timing.h"
#include "kernels/error.h"
#include "kernels/file_io.h"
#include "media/audio.h"
#include "media/mel.h"
#include "media/video.h"

extern char** environ;

namespace nuri::bench {
namespace {

namespace fs = std::filesystem;

// nuri's FFmpeg decoders run on libavcodec's default thread count, 1 (open_decoder in
// media/codec/ffmpeg_util.cpp sets no thread_count), and convert and resample on the calling
// thread; the ffmpeg command line gets the same: one decoder thread and one filter thread.
constexpr int kDecodeThreads = 1;

// The sampling rate of the video benchmark, frames per second of video.
constexpr int kFps = 2;

// Runs a command (no shell) with stdout inherited and stderr captured, and returns what it wrote
// to stderr; throws when it cannot start or exits with a failure, quoting its stderr.
std::string run_command(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  int fds[2];
  NURI_CHECK(pipe(fds) == 0, "cannot create a pipe for ", args[0], " (", std::strerror(errno), ")");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addclose(&actions, fds[1]);
  pid_t pid = 0;
  const int code = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (code != 0) {
    close(fds[0]);
    fail("cannot start ", args[0], " (", std::strerror(code), ")");
  }
  std::string err;
  char buffer[4096];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof(buffer))) != 0;) {
    if (n > 0) err.append(buffer, n);
    if (n < 0 && errno != EINTR) break;
  }
  close(fds[0]);
  int status = 0;
  NURI_CHECK(waitpid(pid, &status, 0) == pid, "waiting for ", args[0], " failed");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string line;
    for (const std::string& arg : args) line += (line.empty() ? "" : " ") + arg;
    fail("command failed (status ", status, "): ", line, "\n", err);
  }
  return err;
}

// The wall time ffmpeg reports for its own transcoding loop (-benchmark's rtime, in ms steps):
// the work without starting the process, opening the input and probing its streams.
double ffmpeg_rtime(const std::string& err) {
  const size_t at = err.rfind("rtime=");
  NURI_CHECK(at != std::string::npos, "ffmpeg -benchmark printed no rtime:\n", err);
  return std::stod(err.substr(at + 6));
}

// The ffmpeg invocation that reads `input` with kDecodeThreads decoder and filter threads and
// reports its own time (-benchmark, printed at log level info).
std::vector<std::string> ffmpeg_reading(const std::string& input) {
  const std::string threads = std::to_string(kDecodeThreads);
  return {"ffmpeg",          "-nostdin", "-hide_banner", "-nostats", "-benchmark", "-v", "info",
          "-filter_threads", threads,    "-threads",     threads,    "-i",         input};
}

// Appends the output options that turn the soundtrack into 16 kHz mono f32le, written to `out`.
void add_audio_output(std::vector<std::string>& args, const std::string& out) {
  args.insert(args.end(), {"-map", "0:a:0", "-ar", std::to_string(kAudioSampleRate), "-ac", "1",
                           "-f", "f32le", "-y", out});
}

// ffmpeg doing load_video's work: frames sampled by nuri's rule (the first frame shown at or after
// each k / fps seconds of the stream, counted from its first frame) converted to rgb24 with the
// same bicubic swscale conversion, one output frame per selected frame, and the soundtrack as
// 16 kHz mono f32le.
std::vector<std::string> ffmpeg_video(const std::string& input, const std::string& frames_out,
                                      const std::string& audio_out) {
  const std::string select =
      cat("select='isnan(prev_selected_t)+gte(t-start_t+1e-6,(floor((prev_selected_t-start_t)*",
          kFps, "+1e-6)+1)/", kFps, ")'");
  std::vector<std::string> args = ffmpeg_reading(input);
  args.insert(args.end(), {"-map", "0:v:0", "-sws_flags", "bicubic", "-vf", select, "-fps_mode",
                           "passthrough", "-pix_fmt", "rgb24", "-f", "rawvideo", "-y", frames_out});
  add_audio_output(args, audio_out);
  return args;
}

// ffmpeg doing load_audio's work: 16 kHz mono f32le.
std::vector<std::string> ffmpeg_audio(const std::string& input, const std::string& out) {
  std::vector<std::string> args = ffmpeg_reading(input);
  add_audio_output(args, out);
  return args;
}

// One generated input: its name, what it is and the ffmpeg arguments that make it.
struct Input {
  std::string name, description;
  std::vector<std::string> make;
  fs::path path;
};

std::vector<std::string> lavfi(const std::string& graph) {
  return {"-f", "lavfi", "-i", graph};
}

Input video_input(const fs::path& dir, const std::string& name, const std::string& codec, int width,
                  int height, int rate, int seconds) {
  const std::string d = std::to_string(seconds);
  std::vector<std::string> make = {"ffmpeg", "-nostdin", "-v", "error"};
  for (const std::string& graph :
       {cat("testsrc2=size=", width, "x", height, ":rate=", rate, ":duration=", d),
        cat("sine=frequency=440:sample_rate=44100:duration=", d)}) {
    for (const std::string& arg : lavfi(graph)) make.push_back(arg);
  }
  const bool h264 = codec == "h264";
  make.insert(make.end(), {"-c:v", h264 ? "libx264" : "mpeg4", "-pix_fmt", "yuv420p"});
  if (!h264) make.insert(make.end(), {"-q:v", "4"});
  make.insert(make.end(), {"-c:a", "aac", "-ac", "2", "-b:a", "128k", "-y"});
  fs::path path = dir / (name + ".mp4");
  make.push_back(path.string());
  return {name,
          cat(seconds, " s ", width, "x", height, " ", rate, " fps ", codec,
              " + aac 44.1 kHz stereo (mp4)"),
          make, path};
}

Input audio_input(const fs::path& dir, const std::string& name, const std::string& codec,
                  int seconds) {
  std::vector<std::string> make = {"ffmpeg", "-nostdin", "-v", "error"};
  // Two tones with some noise, so that the lossless codec has real work.
  for (const std::string& arg : lavfi(cat("aevalsrc=0.4*sin(440*2*PI*t)+0.05*(random(0)-0.5)|"
                                          "0.4*sin(660*2*PI*t)+0.05*(random(1)-0.5):s=44100:d=",
                                          seconds))) {
    make.push_back(arg);
  }
  const bool mp3 = codec == "mp3";
  make.insert(make.end(), {"-c:a", mp3 ? "libmp3lame" : "flac"});
  if (mp3) make.insert(make.end(), {"-b:a", "128k"});
  fs::path path = dir / (name + (mp3 ? ".mp3" : ".flac"));
  make.insert(make.end(), {"-y", path.string()});
  return {name, cat(seconds, " s 44.1 kHz stereo ", codec), make, path};
}

std::vector<char> read_bytes(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  NURI_CHECK(file.good(), "cannot read ", path.string());
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

// Whether nuri's and ffmpeg's sample counts agree within 0.1%; prints a mismatch.
bool samples_agree(const std::string& name, size_t nuri, size_t peer) {
  const double relative = std::abs(double(nuri) - double(peer)) / std::max<double>(peer, 1);
  if (relative > 1e-3) {
    std::printf("  MISMATCH %s: nuri %zu samples, ffmpeg %zu (%.3f%% apart)\n", name.c_str(), nuri,
                peer, 100 * relative);
  }
  return relative <= 1e-3;
}

// Times nuri's call and the ffmpeg command in alternating rounds and prints one line per
// figure: `amount` per second for each side, nuri / ffmpeg (the median of the per-round ratios)
// and nuri against ffmpeg's own median time for its transcoding loop.
void time_pair(nlohmann::json& rows, const std::vector<std::pair<std::string, double>>& figures,
               const std::string& name, const std::function<void()>& nuri_call,
               const std::vector<std::string>& peer, int rounds) {
  std::vector<double> loop_seconds;
  const Paired t = paired_seconds_per_call(
      nuri_call, [&] { loop_seconds.push_back(ffmpeg_rtime(run_command(peer))); }, rounds);
  loop_seconds.erase(loop_seconds.begin());  // the warm-up
  const double loop_ratio = median(loop_seconds) / t.a_seconds;
  for (const auto& [unit, amount] : figures) {
    const double nuri = amount / t.a_seconds, ffmpeg = amount / t.b_seconds;
    std::printf("  %-40s %10.2f %10.2f %10.3f %10.3f\n", (name + " [" + unit + "]").c_str(), nuri,
                ffmpeg, t.b_over_a, loop_ratio);
    rows.push_back({{"name", name},
                    {"unit", unit},
                    {"nuri", nuri},
                    {"ffmpeg", ffmpeg},
                    {"ratio", t.b_over_a},
                    {"ratio_to_ffmpeg_loop", loop_ratio}});
  }
  std::fflush(stdout);
}

struct Options {
  int rounds = 7, video_seconds = 20, audio_seconds = 60;
  std::string json_path, work_dir;
};

// Video: validation, then paired timing. Returns whether the outputs agree.
bool bench_video(const Input& input, const Options& opt, const fs::path& dir, nlohmann::json& rows,
                 nlohmann::json& checks) {
  VideoLoadOptions options;
  options.fps = kFps;
  options.max_seconds = 1e6;
  options.max_frames = int64_t{1} << 40;
  options.audio = true;
  const std::string path = input.path.string();

  const Video video = load_video(path, options);
  const fs::path frames_file = dir / (input.name + ".rgb"),
                 audio_file = dir / (input.name + ".f32");
  run_command(ffmpeg_video(path, frames_file.string(), audio_file.string()));
  const std::vector<char> rgb = read_bytes(frames_file);
  const size_t peer_samples = fs::file_size(audio_file) / sizeof(float);
  fs::remove(audio_file);
  fs::remove(frames_file);
  NURI_CHECK(!video.frames.empty(), path, ": nuri sampled no frames");
  const Image& first = video.frames.front().image;
  const size_t frame_bytes = static_cast<size_t>(first.height * first.width * 3);
  const size_t peer_frames = rgb.size() / frame_bytes;
  bool ok = rgb.size() % frame_bytes == 0 && peer_frames == video.frames.size();
  if (!ok) {
    std::printf("  MISMATCH %s: nuri %zu frames, ffmpeg %zu bytes = %.2f frames of %zux%zu\n",
                input.name.c_str(), video.frames.size(), rgb.size(),
                double(rgb.size()) / frame_bytes, size_t(first.width), size_t(first.height));
  }
  // The frames both sides selected, pixel by pixel: the mean absolute difference of the worst
  // frame, in 8-bit levels (0 when the same frames were selected and converted alike).
  double worst = 0;
  for (size_t i = 0; i < std::min(peer_frames, video.frames.size()); ++i) {
    const std::vector<uint8_t>& mine = video.frames[i].image.rgb;
    if (mine.size() != frame_bytes) {
      std::printf("  MISMATCH %s: frame %zu is %zu bytes, frame 0 %zu\n", input.name.c_str(), i,
                  mine.size(), frame_bytes);
      ok = false;
      break;
    }
    double sum = 0;
    for (size_t j = 0; j < frame_bytes; ++j) {
      sum += std::abs(int(mine[j]) - int(static_cast<uint8_t>(rgb[i * frame_bytes + j])));
    }
    worst = std::max(worst, sum / frame_bytes);
  }
  if (worst > 1.0) {
    std::printf("  MISMATCH %s: frame contents differ (worst frame mean |diff| %.2f levels)\n",
                input.name.c_str(), worst);
    ok = false;
  }
  ok = samples_agree(input.name + " soundtrack", video.audio.size(), peer_samples) && ok;
  std::printf(
      "  check %s: frames nuri %zu, ffmpeg %zu (worst frame mean |diff| %.3f levels); soundtrack "
      "samples nuri %zu, ffmpeg %zu\n",
      input.name.c_str(), video.frames.size(), peer_frames, worst, video.audio.size(),
      peer_samples);
  checks.push_back({{"input", input.name},
                    {"nuri_frames", video.frames.size()},
                    {"ffmpeg_frames", peer_frames},
                    {"worst_frame_mean_abs_diff", worst},
                    {"nuri_audio_samples", video.audio.size()},
                    {"ffmpeg_audio_samples", peer_samples},
                    {"ok", ok}});

  const std::vector<std::string> peer = ffmpeg_video(path, "/dev/null", "/dev/null");
  time_pair(
      rows, {{"video s/s", video.duration}, {"frames/s", double(video.frames.size())}},
      input.name + " video", [&] { load_video(path, options); }, peer, opt.rounds);
  return ok;
}

// Audio: validation, then paired timing. Returns whether the sample counts agree.
bool bench_audio(const Input& input, const Options& opt, const fs::path& dir, nlohmann::json& rows,
                 nlohmann::json& checks) {
  const std::string path = input.path.string();
  AudioLoadOptions options;
  options.max_seconds = 1e6;
  const std::vector<float> samples = load_audio(path, options);
  const fs::path out = dir / (input.name + ".f32");
  run_command(ffmpeg_audio(path, out.string()));
  const size_t peer_samples = fs::file_size(out) / sizeof(float);
  fs::remove(out);
  const bool ok = samples_agree(input.name, samples.size(), peer_samples);
  std::printf("  check %s: samples nuri %zu, ffmpeg %zu\n", input.name.c_str(), samples.size(),
              peer_samples);
  checks.push_back({{"input", input.name},
                    {"nuri_samples", samples.size()},
                    {"ffmpeg_samples", peer_samples},
                    {"ok", ok}});

  const std::vector<std::string> peer = ffmpeg_audio(path, "/dev/null");
  time_pair(
      rows, {{"audio s/s", double(samples.size()) / kAudioSampleRate}}, input.name + " audio",
      [&] { load_audio(path, options); }, peer, opt.rounds);
  return ok;
}

// Removes a directory tree when it goes out of scope (the generated inputs, on success or error).
struct RemoveOnExit {
  fs::path dir;
  ~RemoveOnExit() {
    std::error_code ignored;
    if (!dir.empty()) fs::remove_all(dir, ignored);
  }
};

int run(const Options& opt) {
  fs::path dir;
  RemoveOnExit cleanup;
  if (opt.work_dir.empty()) {
    std::string pattern = (fs::temp_directory_path() / "nuri-bench-media-XXXXXX").string();
    NURI_CHECK(mkdtemp(pattern.data()) != nullptr, "cannot create a directory like ", pattern);
    dir = pattern;
    cleanup.dir = dir;
  } else {
    dir = opt.work_dir;
    fs::create_directories(dir);
  }
  std::vector<Input> videos = {
      video_input(dir, "h264-640x360", "h264", 640, 360, 25, opt.video_seconds),
      video_input(dir, "mpeg4-224x224", "mpeg4", 224, 224, 30, opt.video_seconds)};
  std::vector<Input> audios = {audio_input(dir, "mp3", "mp3", opt.audio_seconds),
                               audio_input(dir, "flac", "flac", opt.audio_seconds)};
  std::printf("inputs in %s:\n", dir.string().c_str());
  nlohmann::json out = {{"decode_threads", kDecodeThreads},
                        {"rounds", opt.rounds},
                        {"inputs", nlohmann::json::array()},
                        {"rows", nlohmann::json::array()},
                        {"checks", nlohmann::json::array()}};
  for (const std::vector<Input>* group : {&videos, &audios}) {
    for (const Input& input : *group) {
      run_command(input.make);
      std::printf("  %-14s %s, %.2f MB\n", input.name.c_str(), input.description.c_str(),
                  fs::file_size(input.path) / 1e6);
      out["inputs"].push_back({{"name", input.name},
                               {"description", input.description},
                               {"bytes", fs::file_size(input.path)}});
    }
  }

  std::printf(
      "\n%d decoder thread and %d filter thread on both sides; %d paired rounds, medians.\n"
      "nuri/ffmpeg: throughput ratio against the whole ffmpeg command (process start, input "
      "probing and exit included), the median of per-round ratios; vs loop: against ffmpeg's own "
      "time for its decoding loop (-benchmark rtime, median)\n",
      kDecodeThreads, kDecodeThreads, opt.rounds);
  std::printf("  %-40s %10s %10s %10s %10s\n", "figure [unit]", "nuri", "ffmpeg", "nuri/ffmpeg",
              "vs loop");
  nlohmann::json& rows = out["rows"];
  nlohmann::json& checks = out["checks"];
  bool ok = true;
  for (const Input& input : videos) ok = bench_video(input, opt, dir, rows, checks) && ok;
  for (const Input& input : audios) ok = bench_audio(input, opt, dir, rows, checks) && ok;

  // Log-mel of the flac's decoded 16 kHz audio.
  AudioLoadOptions audio_options;
  audio_options.max_seconds = 1e6;
  const std::vector<float> samples = load_audio(audios.back().path.string(), audio_options);
  const double audio_s = double(samples.size()) / kAudioSampleRate;
  MelOptions mel_options;
  mel_options.n_mels = 80;
  const double mel_s = seconds_per_call([&] { log_mel(samples, mel_options); }, 1.0, opt.rounds);
  std::printf("  %-40s %10.1f\n", cat("log-mel 80 bins, ", audio_s, " s [audio s/s]").c_str(),
              audio_s / mel_s);
  out["log_mel"] = {{"n_mels", 80}, {"audio_seconds", audio_s}, {"audio_s_per_s", audio_s / mel_s}};
  out["checks_ok"] = ok;
  std::printf("\ncorrectness checks (frame counts and contents, sample counts within 0.1%%): %s\n",
              ok ? "all agree" : "MISMATCHES above");

  if (!opt.json_path.empty()) {
    write_file_atomic(opt.json_path, out.dump(2) + "\n");
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace nuri::bench

int main(int argc, char** argv) {
  using namespace nuri::bench;
  CLI::App app{"nuri's media decoding against the ffmpeg command line, and the log-mel throughput",
               "nuri-bench-media"};
  Options opt;
  app.add_option("--rounds", opt.rounds, "Paired timing rounds per figure")
      ->check(CLI::PositiveNumber);
  app.add_option("--video-seconds", opt.video_seconds, "Length of the generated videos")
      ->check(CLI::Range(1, 3600));
  app.add_option("--audio-seconds", opt.audio_seconds, "Length of the generated audio files")
      ->check(CLI::Range(1, 3600));
  app.add_option("--dir", opt.work_dir,
                 "Keep the generated inputs in this directory (default: a temporary one, removed)");
  app.add_option("--json", opt.json_path, "Also write the figures to this JSON file");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nuri-bench-media: %s\n", e.what());
    return 1;
  }
}
