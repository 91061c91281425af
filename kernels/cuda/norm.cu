// CUDA RMSNorm and LayerNorm (f32 data, f64 row statistics): one block per row for the outputs
// and the input gradient; for the parameter gradients, partial sums over fixed spans of rows, then
// their sum per column, so every sum has a fixed order.
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/map.cuh"
#include "kernels/ops/norm.h"

namespace nuri::cuda {
namespace {

// y = s rstd w per row, where s is x, or x + residual (written to sum) when residual is not null.
__global__ void rms_norm_kernel(const float* x, const float* residual, const float* w, int64_t rows,
                                int64_t d, float eps, float* sum, float* y, float* rstd) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * d;
    const float* rr = residual != nullptr ? residual + r * d : nullptr;
    // Element j of the row that is normalised.
    const auto at = [&](int64_t j) { return rr != nullptr ? xr[j] + rr[j] : xr[j]; };
    double squares = 0;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
      const float v = at(j);
      if (rr != nullptr) sum[r * d + j] = v;
      squares += static_cast<double>(v) * v;
    }
    const float scale = static_cast<float>(1.0 / sqrt(block_sum(squares) / d + eps));
    if (threadIdx.x == 0) rstd[r] = scale;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) y[r * d + j] = at(j) * scale * w[j];
  }
}

// dx = r (w dy) - x r^3 / D * sum_j(w_j dy_j x_j).
__global__ void rms_norm_dx_kernel(const float* dy, const float* x, const float* w,
                                   const float* rstd, int64_t rows, int64_t d, float* dx) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* dyr = dy + r * d;
    const float* xr = x + r * d;
    const float s = rstd[r];
    double dot = 0;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
      dot += static_cast<double>(w[j] * dyr[j]) * xr[j];
    const float c = static_cast<float>(block_sum(dot) * s * s / d);
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
      dx[r * d + j] = s * (w[j] * dyr[j] - xr[j] * c);
  }
}

__global__ void layer_norm_kernel(const float* x, const float* w, const float* b, int64_t rows,
                                  int64_t d, float eps, float* y, float* mean, float* rstd) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * d;
    double total = 0;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) total += xr[j];
    const double mu = block_sum(total) / d;
    double squares = 0;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) squares += (xr[j] - mu) * (xr[j] - mu);
    const float m = static_cast<float>(mu);
    const float s = static_cast<float>(1.0 / sqrt(block_sum(squares) / d + eps));
    if (threadIdx.x == 0) {
      mean[r] = m;
      rstd[r] = s;
    }
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
      y[r * d + j] = (xr[j] - m) * s * w[j] + (b != nullptr ? b[j] : 0.0f);
  }
}

// With xhat = (x - mean) r and g = w dy: dx = r (g - mean(g) - xhat mean(g xhat)).
__global__ void layer_norm_dx_kernel(const float* dy, const float* x, const float* w,
                                     const float* mean, const float* rstd, int64_t rows, int64_t d,
                                     float* dx) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* dyr = dy + r * d;
    const float* xr = x + r * d;
    const float m = mean[r], s = rstd[r];
    double g_total = 0, gx_total = 0;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
      const float g = w[j] * dyr[j];
      g_total += g;
      gx_total += static_cast<double>(g) * ((xr[j] - m) * s);
    }
    const float g_mean = static_cast<float>(block_sum(g_total) / d);
    const float gx_mean = static_cast<float>(block_sum(gx_total) / d);
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
      dx[r * d + j] = s * (w[j] * dyr[j] - g_mean - (xr[j] - m) * s * gx_mean);
  }
}

// Partial blockIdx.y of column j over rows [y span, (y + 1) span), in order: of dweight, dy x_hat
// (x_hat = (x - mean) rstd, or x rstd without a mean), and of dbias, dy.
__global__ void norm_params_partial_kernel(const float* dy, const float* x, const float* mean,
                                           const float* rstd, int64_t rows, int64_t d, int64_t span,
                                           double* w_partial, double* b_partial) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (j >= d) return;
  const int64_t part = blockIdx.y, end = min(rows, (part + 1) * span);
  double w_total = 0, b_total = 0;
  for (int64_t r = part * span; r < end; ++r) {
    const float g = dy[r * d + j];
    const float m = mean != nullptr ? mean[r] : 0.0f;
    w_total += static_cast<double>(g) * ((x[r * d + j] - m) * rstd[r]);
    b_total += g;
  }
  w_partial[part * d + j] = w_total;
  b_partial[part * d + j] = b_total;
}

float* data_or_null(Tensor& t) {
  return t.defined() ? t.data<float>() : nullptr;
}

// The parameter gradients when either is wanted (zeros without rows, as on the CPU).
void norm_params(const Tensor& dy, const Tensor& x, const float* mean, const Tensor& rstd,
                 Tensor& dweight, Tensor& dbias) {
  float* dw = data_or_null(dweight);
  float* db = data_or_null(dbias);
  if (dw == nullptr && db == nullptr) return;
  const int64_t d = x.size(-1), rows = x.numel() / d;
  const int64_t span = span_length(rows, 32), parts = (rows + span - 1) / span;
  const int device = x.device().index;
  const Tensor partials =
      device_scratch(device, 2 * static_cast<size_t>(parts * d) * sizeof(double));
  double* w_partial = static_cast<double*>(partials.raw_data());
  double* b_partial = w_partial + parts * d;
  if (parts > 0) {
    const dim3 grid(static_cast<unsigned>((d + kRowThreads - 1) / kRowThreads),
                    static_cast<unsigned>(parts));
    norm_params_partial_kernel<<<grid, kRowThreads>>>(dy.data<float>(), x.data<float>(), mean,
                                                      rstd.data<float>(), rows, d, span, w_partial,
                                                      b_partial);
    NURI_CUDA_CHECK_LAUNCH();
  }
  if (dw != nullptr) add_partials(device, w_partial, d, parts, 1.0f, dw);
  if (db != nullptr) add_partials(device, b_partial, d, parts, 1.0f, db);
}

}  // namespace

namespace {

// rms_norm_forward, of x + residual (written to sum) when residual is defined.
void launch_rms_norm(const char* op, const Tensor& x, const Tensor& residual, const Tensor& weight,
                     float eps, Tensor& sum, Tensor& y, Tensor& rstd) {
  require_f32(op, x, "x");
  const int64_t d = x.size(-1);
  if (d == 0 || x.numel() == 0) return;
  const int64_t rows = x.numel() / d;
  NURI_CUDA_CHECK(cudaSetDevice(x.device().index));
  rms_norm_kernel<<<row_blocks(rows), kRowThreads>>>(
      x.data<float>(), residual.defined() ? residual.data<float>() : nullptr, weight.data<float>(),
      rows, d, eps, sum.defined() ? sum.data<float>() : nullptr, y.data<float>(),
      rstd.data<float>());
  NURI_CUDA_CHECK_LAUNCH();
}

}  // namespace

void rms_norm_forward(const Tensor& x, const Tensor& weight, float eps, Tensor& y, Tensor& rstd) {
  Tensor no_sum;
  launch_rms_norm("rms_norm", x, Tensor(), weight, eps, no_sum, y, rstd);
}

void add_rms_norm_forward(const Tensor& x, const Tensor& residual, const Tensor& weight, float eps,
                          Tensor& sum, Tensor& y, Tensor& rstd) {
  launch_rms_norm("add_rms_norm", x, residual, weight, eps, sum, y, rstd);
}

void rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& rstd,
                       Tensor& dx, Tensor& dweight) {
  require_f32("rms_norm backward", dy, "dy");
  const int64_t d = x.size(-1);
  if (d == 0) return;
  const int64_t rows = x.numel() / d;
  NURI_CUDA_CHECK(cudaSetDevice(x.device().index));
  if (dx.defined() && rows > 0) {
    rms_norm_dx_kernel<<<row_blocks(rows), kRowThreads>>>(dy.data<float>(), x.data<float>(),
                                                          weight.data<float>(), rstd.data<float>(),
                                                          rows, d, dx.data<float>());
    NURI_CUDA_CHECK_LAUNCH();
  }
  Tensor no_bias;
  norm_params(dy, x, nullptr, rstd, dweight, no_bias);
}

void layer_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps,
                        Tensor& y, Tensor& mean, Tensor& rstd) {
  require_f32("layer_norm", x, "x");
  const int64_t d = x.size(-1);
  if (d == 0 || x.numel() == 0) return;
  const int64_t rows = x.numel() / d;
  NURI_CUDA_CHECK(cudaSetDevice(x.device().index));
  layer_norm_kernel<<<row_blocks(rows), kRowThreads>>>(
      x.data<float>(), weight.data<float>(), bias.defined() ? bias.data<float>() : nullptr, rows, d,
      eps, y.data<float>(), mean.data<float>(), rstd.data<float>());
  NURI_CUDA_CHECK_LAUNCH();
}

void layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                         const Tensor& mean, const Tensor& rstd, Tensor& dx, Tensor& dweight,
                         Tensor& dbias) {
  require_f32("layer_norm backward", dy, "dy");
  const int64_t d = x.size(-1);
  if (d == 0) return;
  const int64_t rows = x.numel() / d;
  NURI_CUDA_CHECK(cudaSetDevice(x.device().index));
  if (dx.defined() && rows > 0) {
    layer_norm_dx_kernel<<<row_blocks(rows), kRowThreads>>>(
        dy.data<float>(), x.data<float>(), weight.data<float>(), mean.data<float>(),
        rstd.data<float>(), rows, d, dx.data<float>());
    NURI_CUDA_CHECK_LAUNCH();
  }
  norm_params(dy, x, mean.data<float>(), rstd, dweight, dbias);
}

}  // namespace nuri::cuda
