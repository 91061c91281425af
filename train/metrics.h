// What a training run shows while it works: a progress bar on a terminal, a JSONL metrics log,
// and a loss-curve PNG drawn from that log.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace nuri {

// One JSON object per line, flushed as written. A resumed run keeps the lines up to its step
// and drops the ones a crashed run wrote after its last checkpoint.
class MetricsLog {
 public:
  // resume_step < 0 starts a new log (an old file is replaced).
  MetricsLog(std::string path, int64_t resume_step);
  void write(const nlohmann::json& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A one-line bar redrawn in place on stderr; silent when stderr is not a terminal.
class ProgressBar {
 public:
  ProgressBar(int64_t total, int64_t done, bool enabled);
  ~ProgressBar();
  void update(int64_t done, std::string_view status);
  // Ends the line so that later output starts on a fresh one.
  void finish();
  bool active() const { return enabled_; }

 private:
  int64_t total_, start_done_;
  bool enabled_, drawn_ = false;
  std::chrono::steady_clock::time_point start_;
};

// True when this build can draw the loss curve (it was built with OpenCV).
bool loss_plot_available();

// Draws the training loss, the held-out loss and the unigram baseline from a metrics log into
// a PNG (written atomically). Returns false when this build has no image support.
bool plot_loss_curve(const std::string& metrics_path, const std::string& png_path);

}  // namespace nuri
