#include "train/metrics.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "kernels/error.h"
#include "kernels/file_io.h"

#ifdef NURI_WITH_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace nuri {

MetricsLog::MetricsLog(std::string path, int64_t resume_step) : path_(std::move(path)) {
  const auto parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  std::string kept;
  if (resume_step >= 0 && std::filesystem::exists(path_)) {
    std::istringstream lines(read_file(path_));
    std::string line;
    while (std::getline(lines, line)) {
      const auto record = nlohmann::json::parse(line, nullptr, false);
      if (record.is_object() && record.contains("step") && record["step"].is_number_integer() &&
          record["step"].get<int64_t>() <= resume_step) {
        kept += line + "\n";
      }
    }
  }
  write_file_atomic(path_, kept);
}

void MetricsLog::write(const nlohmann::json& record) {
  std::ofstream out(path_, std::ios::app);
  out << record.dump() << '\n';
  out.flush();
  NURI_CHECK(out.good(), path_, ": cannot append a metrics line");
}

ProgressBar::ProgressBar(int64_t total, int64_t done, bool enabled)
    : total_(std::max<int64_t>(total, 1)),
      start_done_(done),
      enabled_(enabled && ::isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() {
  finish();
}

void ProgressBar::update(int64_t done, std::string_view status) {
  if (!enabled_) return;
  constexpr int kWidth = 30;
  const double fraction = std::clamp(static_cast<double>(done) / total_, 0.0, 1.0);
  const int filled = static_cast<int>(fraction * kWidth);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int64_t progressed = done - start_done_;
  const double eta = progressed > 0 ? seconds / progressed * (total_ - done) : 0;
  std::fprintf(stderr, "\r\033[K[%.*s%*s] %lld/%lld %.*s eta %d:%02d", filled,
               "##############################", kWidth - filled, "", static_cast<long long>(done),
               static_cast<long long>(total_), static_cast<int>(status.size()), status.data(),
               static_cast<int>(eta) / 60, static_cast<int>(eta) % 60);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::finish() {
  if (drawn_) std::fputc('\n', stderr);
  drawn_ = false;
}

#ifdef NURI_WITH_OPENCV

namespace {

struct Series {
  std::vector<double> steps, values;
};

// A short label for a loss value.
std::string label(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f", value);
  return text;
}

}  // namespace

bool loss_plot_available() {
  return true;
}

bool plot_loss_curve(const std::string& metrics_path, const std::string& png_path) {
  Series train, eval;
  double unigram = NAN;
  std::istringstream lines(read_file(metrics_path));
  std::string line;
  while (std::getline(lines, line)) {
    const auto r = nlohmann::json::parse(line, nullptr, false);
    if (!r.is_object() || !r.contains("step")) continue;
    const double step = r["step"].get<double>();
    if (r.contains("loss") && r["loss"].is_number()) {
      train.steps.push_back(step);
      train.values.push_back(r["loss"]);
    }
    if (r.contains("eval_loss") && r["eval_loss"].is_number()) {
      eval.steps.push_back(step);
      eval.values.push_back(r["eval_loss"]);
    }
    if (r.contains("unigram_loss") && r["unigram_loss"].is_number()) unigram = r["unigram_loss"];
  }
  if (train.steps.empty()) return true;

  const int width = 900, height = 540, left = 70, right = 20, top = 40, bottom = 50;
  cv::Mat image(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  double max_step = train.steps.back(), low = 1e30, high = -1e30;
  for (const Series* s : {&train, &eval}) {
    for (double v : s->values) {
      if (std::isfinite(v)) low = std::min(low, v), high = std::max(high, v);
    }
    if (!s->steps.empty()) max_step = std::max(max_step, s->steps.back());
  }
  if (std::isfinite(unigram)) low = std::min(low, unigram), high = std::max(high, unigram);
  if (high <= low) high = low + 1;
  const double pad = 0.05 * (high - low);
  low -= pad, high += pad;
  auto to_point = [&](double step, double value) {
    const double x = left + (width - left - right) * step / std::max(max_step, 1.0);
    const double y = top + (height - top - bottom) * (high - value) / (high - low);
    return cv::Point(static_cast<int>(x), static_cast<int>(y));
  };
  const cv::Scalar axis(0, 0, 0), grid(225, 225, 225);
  for (int i = 0; i <= 5; ++i) {
    const double value = low + (high - low) * i / 5, step = max_step * i / 5;
    const auto y = to_point(0, value).y, x = to_point(step, low).x;
    cv::line(image, {left, y}, {width - right, y}, grid);
    cv::putText(image, label(value), {5, y + 4}, cv::FONT_HERSHEY_SIMPLEX, 0.4, axis);
    cv::putText(image, cat(static_cast<int64_t>(std::llround(step))),
                {x - 10, height - bottom + 18}, cv::FONT_HERSHEY_SIMPLEX, 0.4, axis);
  }
  cv::rectangle(image, {left, top}, {width - right, height - bottom}, axis);
  cv::putText(image, "step", {width / 2, height - 10}, cv::FONT_HERSHEY_SIMPLEX, 0.5, axis);
  cv::putText(image, "loss (nats/token)", {left, 25}, cv::FONT_HERSHEY_SIMPLEX, 0.5, axis);

  auto draw = [&](const Series& s, const cv::Scalar& color, bool dots) {
    std::vector<cv::Point> points;
    for (size_t i = 0; i < s.steps.size(); ++i) {
      if (std::isfinite(s.values[i])) points.push_back(to_point(s.steps[i], s.values[i]));
    }
    if (points.size() > 1) cv::polylines(image, points, false, color, 2, cv::LINE_AA);
    if (dots) {
      for (const auto& p : points) cv::circle(image, p, 4, color, cv::FILLED, cv::LINE_AA);
    }
  };
  const cv::Scalar blue(200, 90, 30), red(40, 40, 220), gray(120, 120, 120);
  if (std::isfinite(unigram)) {
    const int y = to_point(0, unigram).y;
    for (int x = left; x < width - right; x += 12)
      cv::line(image, {x, y}, {std::min(x + 6, width - right), y}, gray, 2);
  }
  draw(train, blue, false);
  draw(eval, red, true);
  int legend_y = top + 20;
  for (auto [name, color] :
       {std::pair{"train loss", blue}, {"held-out loss", red}, {"unigram baseline", gray}}) {
    cv::line(image, {width - 190, legend_y - 4}, {width - 160, legend_y - 4}, color, 2);
    cv::putText(image, name, {width - 152, legend_y}, cv::FONT_HERSHEY_SIMPLEX, 0.45, axis);
    legend_y += 20;
  }

  std::vector<uchar> png;
  NURI_CHECK(cv::imencode(".png", image, png), png_path, ": PNG encoding failed");
  write_file_atomic(png_path,
                    std::string_view(reinterpret_cast<const char*>(png.data()), png.size()));
  return true;
}

#else

bool loss_plot_available() {
  return false;
}

bool plot_loss_curve(const std::string&, const std::string&) {
  return false;
}

#endif

}  // namespace nuri
