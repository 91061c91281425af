// CPU kernels of conv1d and conv2d. Images are lowered to column matrices (im2col) a chunk at a
// time, so that each chunk is one large threaded sgemm with the weight; the input gradient
// scatters the column gradients back (col2im).
#include <algorithm>
#include <utility>

#include "kernels/cpu/blas.h"
#include "kernels/cpu/parallel.h"
#include "kernels/ops/checks.h"
#include "kernels/ops/conv.h"

namespace nuri::cpu {
namespace {

// Scratch per chunk of images (columns plus one output-sized block): 64 MiB of floats.
constexpr int64_t kScratchFloats = int64_t{1} << 24;

// How a chunk of n images' columns is laid out for the GEMM (P output positions per image).
enum class Layout {
  // [Cin*KH*KW, n*P]: row (c, kh, kw) holds that kernel tap at every output position of every
  // image; padding reads as zero.
  channel_major,
  // Kernel == stride and no padding (patch embedding): [n*P, Cin*KH*KW], one row per patch.
  // Patches do not overlap, so building it only moves contiguous runs of KW elements.
  patch_major,
};

struct Geometry {
  explicit Geometry(const ConvShape& shape) : s(shape) {
    taps = s.kernel_h * s.kernel_w;
    ckk = s.in_channels * taps;
    p = s.out_h * s.out_w;
    image = s.in_channels * s.height * s.width;
    out_image = s.out_channels * p;
    // A 1x1 kernel makes every run one element long; its channel-major im2col is a row copy.
    const bool patches = s.pad_h == 0 && s.pad_w == 0 && s.kernel_h == s.stride_h &&
                         s.kernel_w == s.stride_w && taps > 1;
    layout = patches ? Layout::patch_major : Layout::channel_major;
    const int64_t per_image = std::max<int64_t>((ckk + s.out_channels) * p, 1);
    chunk = std::clamp<int64_t>(kScratchFloats / per_image, 1, std::max<int64_t>(s.batch, 1));
  }

  ConvShape s;
  Layout layout;
  int64_t taps, ckk, p, image, out_image;
  int64_t chunk;  // images lowered and multiplied together
};

// Output positions o in [lo, hi) whose input index o * stride - pad + k lies in [0, in).
std::pair<int64_t, int64_t> valid_outputs(int64_t out, int64_t in, int64_t stride, int64_t pad,
                                          int64_t k) {
  auto ceil_div = [stride](int64_t a) { return a <= 0 ? int64_t{0} : (a + stride - 1) / stride; };
  const int64_t lo = std::min(out, ceil_div(pad - k));
  const int64_t hi = std::min(out, ceil_div(in + pad - k));
  return {lo, std::max(lo, hi)};
}

// Row r = (c, kh, kw) of one image's channel-major columns, P values written to dst.
void im2col_row(const Geometry& g, const float* x, int64_t r, float* dst) {
  const ConvShape& s = g.s;
  const int64_t c = r / g.taps, kh = r % g.taps / s.kernel_w, kw = r % s.kernel_w;
  const auto [lo, hi] = valid_outputs(s.out_w, s.width, s.stride_w, s.pad_w, kw);
  const int64_t offset = kw - s.pad_w, sw = s.stride_w;
  for (int64_t oh = 0; oh < s.out_h; ++oh, dst += s.out_w) {
    const int64_t ih = oh * s.stride_h - s.pad_h + kh;
    if (ih < 0 || ih >= s.height) {
      std::fill(dst, dst + s.out_w, 0.0f);
      continue;
    }
    const float* src = x + (c * s.height + ih) * s.width;
    std::fill(dst, dst + lo, 0.0f);
#pragma omp simd
    for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * sw + offset];
    std::fill(dst + hi, dst + s.out_w, 0.0f);
  }
}

// Input row `row` = (c, ih) of one image's gradient from its channel-major column gradient
// (row stride ld): the sum over the taps that read each element. The task owning the row
// gathers into it, so no two tasks write the same element and the order of the sums is fixed.
void col2im_row(const Geometry& g, const float* col, int64_t ld, int64_t row, float* dst) {
  const ConvShape& s = g.s;
  const int64_t c = row / s.height, ih = row % s.height;
  std::fill(dst, dst + s.width, 0.0f);
  for (int64_t kh = 0; kh < s.kernel_h; ++kh) {
    const int64_t t = ih + s.pad_h - kh;  // oh * stride_h for the output row that reads ih
    if (t < 0 || t % s.stride_h != 0 || t / s.stride_h >= s.out_h) continue;
    const int64_t oh = t / s.stride_h;
    for (int64_t kw = 0; kw < s.kernel_w; ++kw) {
      const float* src = col + ((c * s.kernel_h + kh) * s.kernel_w + kw) * ld + oh * s.out_w;
      const auto [lo, hi] = valid_outputs(s.out_w, s.width, s.stride_w, s.pad_w, kw);
      const int64_t offset = kw - s.pad_w, sw = s.stride_w;
#pragma omp simd
      for (int64_t ow = lo; ow < hi; ++ow) dst[ow * sw + offset] += src[ow];
    }
  }
}

// Patch p = (oh, ow) of one image as a patch-major row: Cin x KH runs of KW elements.
void im2col_patch(const Geometry& g, const float* x, int64_t p, float* dst) {
  const ConvShape& s = g.s;
  const int64_t oh = p / s.out_w, ow = p % s.out_w;
  for (int64_t c = 0; c < s.in_channels; ++c) {
    for (int64_t kh = 0; kh < s.kernel_h; ++kh) {
      const float* src = x + (c * s.height + oh * s.kernel_h + kh) * s.width + ow * s.kernel_w;
      dst = std::copy(src, src + s.kernel_w, dst);
    }
  }
}

// Input row (c, ih) of one image's gradient from its patch-major column gradient: every element
// lies in at most one patch, so it is a copy; rows and columns past the last patch get zero.
void col2im_patch_row(const Geometry& g, const float* col, int64_t row, float* dst) {
  const ConvShape& s = g.s;
  const int64_t c = row / s.height, ih = row % s.height;
  const int64_t oh = ih / s.kernel_h, kh = ih % s.kernel_h;
  if (oh >= s.out_h) {
    std::fill(dst, dst + s.width, 0.0f);
    return;
  }
  for (int64_t ow = 0; ow < s.out_w; ++ow) {
    const float* src = col + (oh * s.out_w + ow) * g.ckk + (c * s.kernel_h + kh) * s.kernel_w;
    std::copy(src, src + s.kernel_w, dst + ow * s.kernel_w);
  }
  std::fill(dst + s.out_w * s.kernel_w, dst + s.width, 0.0f);
}

// Columns of the n images starting at x, in the layout's orientation.
void build_columns(const Geometry& g, const float* x, int64_t n, float* col) {
  const bool parallel = n * g.ckk * g.p > kParallelElements;
  if (g.layout == Layout::patch_major) {
#pragma omp parallel for collapse(2) if (parallel)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < g.p; ++p)
        im2col_patch(g, x + j * g.image, p, col + (j * g.p + p) * g.ckk);
  } else {
    const int64_t ld = n * g.p;
#pragma omp parallel for collapse(2) if (parallel)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t r = 0; r < g.ckk; ++r) im2col_row(g, x + j * g.image, r, col + r * ld + j * g.p);
  }
}

// The adjoint of build_columns: the gradients of the n images starting at dx.
void scatter_columns(const Geometry& g, const float* col, int64_t n, float* dx) {
  const int64_t rows = g.s.in_channels * g.s.height;
  const bool parallel = n * g.ckk * g.p > kParallelElements;
#pragma omp parallel for collapse(2) if (parallel)
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t row = 0; row < rows; ++row) {
      float* dst = dx + j * g.image + row * g.s.width;
      if (g.layout == Layout::patch_major) {
        col2im_patch_row(g, col + j * g.p * g.ckk, row, dst);
      } else {
        col2im_row(g, col + j * g.p, n * g.p, row, dst);
      }
    }
  }
}

// out [Cout, cols] = weight [Cout, ckk] columns + beta out, over cols = n * P positions.
void gemm_output(const Geometry& g, const float* w, const float* col, int64_t cols, float beta,
                 float* out) {
  const bool patches = g.layout == Layout::patch_major;
  sgemm(false, patches, g.s.out_channels, cols, g.ckk, w, g.ckk, col, patches ? g.ckk : cols, beta,
        out, cols);
}

// grad_w [Cout, ckk] = grad [Cout, cols] columns^T + beta grad_w.
void gemm_weight(const Geometry& g, const float* grad, const float* col, int64_t cols, float beta,
                 float* grad_w) {
  const bool patches = g.layout == Layout::patch_major;
  sgemm(false, !patches, g.s.out_channels, g.ckk, cols, grad, cols, col, patches ? g.ckk : cols,
        beta, grad_w, g.ckk);
}

// The column gradient weight^T grad, in the layout's orientation.
void gemm_columns(const Geometry& g, const float* w, const float* grad, int64_t cols, float* dcol) {
  if (g.layout == Layout::patch_major) {  // [cols, ckk] = grad^T w
    sgemm(true, false, cols, g.ckk, g.s.out_channels, grad, cols, w, g.ckk, 0.0f, dcol, g.ckk);
  } else {  // [ckk, cols] = w^T grad
    sgemm(true, false, g.ckk, cols, g.s.out_channels, w, g.ckk, grad, cols, 0.0f, dcol, cols);
  }
}

}  // namespace

void conv_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvShape& s,
                  Tensor& out) {
  checks::cpu_f32("conv", x, "x");
  const Geometry g(s);
  const float* px = x.data<float>();
  const float* pw = weight.data<float>();
  const float* pb = bias.defined() ? bias.data<float>() : nullptr;
  float* po = out.data<float>();
  Tensor col = Tensor::empty({g.ckk * g.p * g.chunk});
  Tensor block = Tensor::empty({g.chunk > 1 ? g.out_image * g.chunk : 0});
  for (int64_t b0 = 0; b0 < s.batch; b0 += g.chunk) {
    const int64_t n = std::min(g.chunk, s.batch - b0);
    build_columns(g, px + b0 * g.image, n, col.data<float>());
    float* ob = po + b0 * g.out_image;
    const bool parallel = n * g.out_image > kParallelElements;
    if (n == 1) {  // the GEMM writes the image's [Cout, P] output in place, onto the bias
      if (pb != nullptr) {
#pragma omp parallel for if (parallel)
        for (int64_t co = 0; co < s.out_channels; ++co) std::fill_n(ob + co * g.p, g.p, pb[co]);
      }
      gemm_output(g, pw, col.data<float>(), g.p, pb != nullptr ? 1.0f : 0.0f, ob);
      continue;
    }
    // [Cout, n * P] from one GEMM, then each image's rows move to [n, Cout, P] with the bias.
    const float* pk = block.data<float>();
    gemm_output(g, pw, col.data<float>(), n * g.p, 0.0f, block.data<float>());
#pragma omp parallel for collapse(2) if (parallel)
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t co = 0; co < s.out_channels; ++co) {
        const float* src = pk + co * n * g.p + j * g.p;
        float* dst = ob + j * g.out_image + co * g.p;
        const float add = pb != nullptr ? pb[co] : 0.0f;
#pragma omp simd
        for (int64_t i = 0; i < g.p; ++i) dst[i] = src[i] + add;
      }
    }
  }
}

void conv_backward(const Tensor& grad, const Tensor& x, const Tensor& weight, const ConvShape& s,
                   Tensor& grad_x, Tensor& grad_weight, Tensor& grad_bias) {
  checks::cpu_f32("conv backward", grad, "grad");
  const Geometry g(s);
  const float* pg = grad.data<float>();
  if (grad_bias.defined()) {
    float* db = grad_bias.data<float>();
#pragma omp parallel for if (s.batch * g.out_image > kParallelElements)
    for (int64_t co = 0; co < s.out_channels; ++co) {
      double total = 0;
      for (int64_t b = 0; b < s.batch; ++b) {
        const float* row = pg + b * g.out_image + co * g.p;
#pragma omp simd reduction(+ : total)
        for (int64_t i = 0; i < g.p; ++i) total += row[i];
      }
      db[co] = static_cast<float>(total);
    }
  }
  if (!grad_x.defined() && !grad_weight.defined()) return;
  float* dw = grad_weight.defined() ? grad_weight.data<float>() : nullptr;
  if (dw != nullptr && s.batch == 0) std::fill_n(dw, grad_weight.numel(), 0.0f);
  Tensor col = Tensor::empty({g.ckk * g.p * g.chunk});
  Tensor block = Tensor::empty({g.chunk > 1 ? g.out_image * g.chunk : 0});
  float* pc = col.data<float>();
  for (int64_t b0 = 0; b0 < s.batch; b0 += g.chunk) {
    const int64_t n = std::min(g.chunk, s.batch - b0);
    // The chunk's gradient as one [Cout, n * P] matrix (in place for a single image).
    const float* gc = pg + b0 * g.out_image;
    if (n > 1) {
      float* pk = block.data<float>();
#pragma omp parallel for collapse(2) if (n * g.out_image > kParallelElements)
      for (int64_t j = 0; j < n; ++j) {
        for (int64_t co = 0; co < s.out_channels; ++co) {
          std::copy_n(gc + j * g.out_image + co * g.p, g.p, pk + co * n * g.p + j * g.p);
        }
      }
      gc = pk;
    }
    if (dw != nullptr) {  // summed over chunks in order: deterministic
      build_columns(g, x.data<float>() + b0 * g.image, n, pc);
      gemm_weight(g, gc, pc, n * g.p, b0 == 0 ? 0.0f : 1.0f, dw);
    }
    if (grad_x.defined()) {
      gemm_columns(g, weight.data<float>(), gc, n * g.p, pc);
      scatter_columns(g, pc, n, grad_x.data<float>() + b0 * g.image);
    }
  }
}

}  // namespace nuri::cpu
