// CPU RMSNorm and LayerNorm (f32 data, double row statistics). The backward kernels compute the
// input gradient row by row and reduce the parameter gradients over rows in a fixed order, so
// the result does not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/ops/checks.h"
#include "kernels/ops/norm.h"

namespace nuri::cpu {
namespace {

// The parameter-gradient reduction splits the rows into at most this many chunks. The split
// depends only on the row count, and the chunks' partial sums are added in chunk order.
constexpr int64_t kMaxChunks = 64;
// Within a chunk, f32 partial sums are flushed into f64 ones every this many rows.
constexpr int64_t kFlushRows = 32;

// Runs row_fn(r, pw, pb) over rows [0, rows): row_fn writes its input gradient and adds its
// contribution to the f32 partials pw and pb ([d] each, null when not wanted). Writes the
// totals over all rows into dweight and dbias (either may be null).
template <class RowFn>
void backward_rows(int64_t rows, int64_t d, float* dweight, float* dbias, RowFn row_fn) {
  const int64_t chunks = std::clamp<int64_t>(rows, 1, kMaxChunks);
  const size_t acc_size = static_cast<size_t>(chunks * d);
  std::vector<double> acc_w(dweight ? acc_size : 0, 0.0), acc_b(dbias ? acc_size : 0, 0.0);
#pragma omp parallel for schedule(static) if (rows * d > kParallelElements)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = rows * c / chunks, end = rows * (c + 1) / chunks;
    std::vector<float> pw(dweight ? d : 0, 0.0f), pb(dbias ? d : 0, 0.0f);
    double* aw = dweight ? acc_w.data() + c * d : nullptr;
    double* ab = dbias ? acc_b.data() + c * d : nullptr;
    for (int64_t r = begin; r < end; ++r) {
      row_fn(r, dweight ? pw.data() : nullptr, dbias ? pb.data() : nullptr);
      if ((r - begin + 1) % kFlushRows != 0 && r + 1 != end) continue;
      if (aw) {
#pragma omp simd
        for (int64_t j = 0; j < d; ++j) aw[j] += pw[j];
        std::fill(pw.begin(), pw.end(), 0.0f);
      }
      if (ab) {
#pragma omp simd
        for (int64_t j = 0; j < d; ++j) ab[j] += pb[j];
        std::fill(pb.begin(), pb.end(), 0.0f);
      }
    }
  }
  for (auto [acc, out] : {std::pair{&acc_w, dweight}, std::pair{&acc_b, dbias}}) {
    if (!out) continue;
    // Chunk 0 holds the running total; chunks are added in order.
    double* total = acc->data();
    for (int64_t c = 1; c < chunks; ++c) {
      const double* a = total + c * d;
#pragma omp simd
      for (int64_t j = 0; j < d; ++j) total[j] += a[j];
    }
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) out[j] = static_cast<float>(total[j]);
  }
}

}  // namespace

namespace {

// rms_norm_forward, of x + residual (written to sum first) when residual is defined.
void rms_norm_rows(const char* op, const Tensor& x, const Tensor& residual, const Tensor& weight,
                   float eps, Tensor& sum, Tensor& y, Tensor& rstd) {
  checks::cpu_f32(op, x, "x");
  const int64_t d = x.size(-1);
  const int64_t rows = x.numel() / d;
  const float* px = x.data<float>();
  const float* pres = residual.defined() ? residual.data<float>() : nullptr;
  float* psum = sum.defined() ? sum.data<float>() : nullptr;
  const float* pw = weight.data<float>();
  float* py = y.data<float>();
  float* pr = rstd.data<float>();
#pragma omp parallel for if (rows * d > kParallelElements)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = px + r * d;
    if (pres != nullptr) {  // the row to normalise is the sum, written in place of x
      float* sr = psum + r * d;
      const float* rr = pres + r * d;
#pragma omp simd
      for (int64_t j = 0; j < d; ++j) sr[j] = xr[j] + rr[j];
      xr = sr;
    }
    float* yr = py + r * d;
    double squares = 0;
#pragma omp simd reduction(+ : squares)
    for (int64_t j = 0; j < d; ++j) squares += static_cast<double>(xr[j]) * xr[j];
    const float scale = static_cast<float>(1.0 / std::sqrt(squares / d + eps));
    pr[r] = scale;
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) yr[j] = xr[j] * scale * pw[j];
  }
}

}  // namespace

void rms_norm_forward(const Tensor& x, const Tensor& weight, float eps, Tensor& y, Tensor& rstd) {
  Tensor no_sum;
  rms_norm_rows("rms_norm", x, Tensor(), weight, eps, no_sum, y, rstd);
}

void add_rms_norm_forward(const Tensor& x, const Tensor& residual, const Tensor& weight, float eps,
                          Tensor& sum, Tensor& y, Tensor& rstd) {
  rms_norm_rows("add_rms_norm", x, residual, weight, eps, sum, y, rstd);
}

void rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& rstd,
                       Tensor& dx, Tensor& dweight) {
  checks::cpu_f32("rms_norm backward", dy, "dy");
  const int64_t d = x.size(-1);
  const int64_t rows = x.numel() / d;
  const float* pdy = dy.data<float>();
  const float* px = x.data<float>();
  const float* pw = weight.data<float>();
  const float* pr = rstd.data<float>();
  float* pdx = dx.defined() ? dx.data<float>() : nullptr;
  // dx = r (w dy) - x r^3 / D * sum_j(w_j dy_j x_j); dweight = sum over rows of dy x r.
  backward_rows(rows, d, dweight.defined() ? dweight.data<float>() : nullptr, nullptr,
                [&](int64_t r, float* acc_w, float*) {
                  const float* dyr = pdy + r * d;
                  const float* xr = px + r * d;
                  const float s = pr[r];
                  if (pdx) {
                    double dot = 0;
#pragma omp simd reduction(+ : dot)
                    for (int64_t j = 0; j < d; ++j)
                      dot += static_cast<double>(pw[j] * dyr[j]) * xr[j];
                    const float c = static_cast<float>(dot * s * s / d);
                    float* dxr = pdx + r * d;
#pragma omp simd
                    for (int64_t j = 0; j < d; ++j) dxr[j] = s * (pw[j] * dyr[j] - xr[j] * c);
                  }
                  if (acc_w) {
#pragma omp simd
                    for (int64_t j = 0; j < d; ++j) acc_w[j] += dyr[j] * xr[j] * s;
                  }
                });
}

void layer_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps,
                        Tensor& y, Tensor& mean, Tensor& rstd) {
  checks::cpu_f32("layer_norm", x, "x");
  const int64_t d = x.size(-1);
  const int64_t rows = x.numel() / d;
  const float* px = x.data<float>();
  const float* pw = weight.data<float>();
  const float* pb = bias.defined() ? bias.data<float>() : nullptr;
  float* py = y.data<float>();
  float* pm = mean.data<float>();
  float* pr = rstd.data<float>();
#pragma omp parallel for if (rows * d > kParallelElements)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = px + r * d;
    float* yr = py + r * d;
    double total = 0;
#pragma omp simd reduction(+ : total)
    for (int64_t j = 0; j < d; ++j) total += xr[j];
    const double mu = total / d;
    double squares = 0;
#pragma omp simd reduction(+ : squares)
    for (int64_t j = 0; j < d; ++j) squares += (xr[j] - mu) * (xr[j] - mu);
    const float m = static_cast<float>(mu);
    const float s = static_cast<float>(1.0 / std::sqrt(squares / d + eps));
    pm[r] = m;
    pr[r] = s;
    if (pb) {
#pragma omp simd
      for (int64_t j = 0; j < d; ++j) yr[j] = (xr[j] - m) * s * pw[j] + pb[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < d; ++j) yr[j] = (xr[j] - m) * s * pw[j];
    }
  }
}

void layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                         const Tensor& mean, const Tensor& rstd, Tensor& dx, Tensor& dweight,
                         Tensor& dbias) {
  checks::cpu_f32("layer_norm backward", dy, "dy");
  const int64_t d = x.size(-1);
  const int64_t rows = x.numel() / d;
  const float* pdy = dy.data<float>();
  const float* px = x.data<float>();
  const float* pw = weight.data<float>();
  const float* pm = mean.data<float>();
  const float* pr = rstd.data<float>();
  float* pdx = dx.defined() ? dx.data<float>() : nullptr;
  // With xhat = (x - mean) r and g = w dy: dx = r (g - mean(g) - xhat mean(g xhat));
  // dweight = sum over rows of dy xhat, dbias = sum over rows of dy.
  backward_rows(rows, d, dweight.defined() ? dweight.data<float>() : nullptr,
                dbias.defined() ? dbias.data<float>() : nullptr,
                [&](int64_t r, float* acc_w, float* acc_b) {
                  const float* dyr = pdy + r * d;
                  const float* xr = px + r * d;
                  const float m = pm[r], s = pr[r];
                  if (pdx) {
                    double g_total = 0, gx_total = 0;
#pragma omp simd reduction(+ : g_total, gx_total)
                    for (int64_t j = 0; j < d; ++j) {
                      const float g = pw[j] * dyr[j];
                      g_total += g;
                      gx_total += static_cast<double>(g) * ((xr[j] - m) * s);
                    }
                    const float g_mean = static_cast<float>(g_total / d);
                    const float gx_mean = static_cast<float>(gx_total / d);
                    float* dxr = pdx + r * d;
#pragma omp simd
                    for (int64_t j = 0; j < d; ++j)
                      dxr[j] = s * (pw[j] * dyr[j] - g_mean - (xr[j] - m) * s * gx_mean);
                  }
                  if (acc_w) {
#pragma omp simd
                    for (int64_t j = 0; j < d; ++j) acc_w[j] += dyr[j] * ((xr[j] - m) * s);
                  }
                  if (acc_b) {
#pragma omp simd
                    for (int64_t j = 0; j < d; ++j) acc_b[j] += dyr[j];
                  }
                });
}

}  // namespace nuri::cpu
