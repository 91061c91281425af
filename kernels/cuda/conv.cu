// CUDA kernels of conv1d and conv2d: the images are lowered to column matrices (im2col, one
// thread per element, padding read as zero) for one strided-batched cuBLASLt GEMM with the
// shared weight; the input gradient gathers the column gradients back (col2im, one thread per
// input element, so nothing is added atomically).
#include "kernels/cuda/blas.h"
#include "kernels/cuda/map.cuh"
#include "kernels/ops/conv.h"
#include "kernels/ops/reduce.h"

namespace nuri::cuda {
namespace {

// cols [B, Cin*KH*KW, P]: row (c, kh, kw) holds that kernel tap at each of the P output positions.
Tensor im2col(const Tensor& x, const ConvShape& s) {
  const int64_t taps = s.kernel_h * s.kernel_w, ckk = s.in_channels * taps, p = s.out_h * s.out_w;
  Tensor cols = Tensor::empty({s.batch, ckk, p}, DType::f32, x.device());
  const float* px = x.data<float>();
  float* pc = cols.data<float>();
  launch_map(x, s.batch * ckk * p, [=] __device__(int64_t e) {
    const int64_t pos = e % p, row = e / p % ckk, b = e / (p * ckk);
    const int64_t c = row / taps, kh = row % taps / s.kernel_w, kw = row % s.kernel_w;
    const int64_t y = pos / s.out_w * s.stride_h - s.pad_h + kh;
    const int64_t x_at = pos % s.out_w * s.stride_w - s.pad_w + kw;
    const bool inside = y >= 0 && y < s.height && x_at >= 0 && x_at < s.width;
    pc[e] = inside ? px[((b * s.in_channels + c) * s.height + y) * s.width + x_at] : 0.0f;
  });
  return cols;
}

// grad_x [B, Cin, H, W] from dcols [B, Cin*KH*KW, P]: each input element adds every tap that read
// it, in tap order.
void col2im(const Tensor& dcols, const ConvShape& s, Tensor& grad_x) {
  const int64_t taps = s.kernel_h * s.kernel_w, ckk = s.in_channels * taps, p = s.out_h * s.out_w;
  const float* pd = dcols.data<float>();
  float* px = grad_x.data<float>();
  launch_map(grad_x, grad_x.numel(), [=] __device__(int64_t e) {
    const int64_t x_at = e % s.width, y = e / s.width % s.height,
                  c = e / (s.width * s.height) % s.in_channels,
                  b = e / (s.width * s.height * s.in_channels);
    float total = 0.0f;
    for (int64_t kh = 0; kh < s.kernel_h; ++kh) {
      const int64_t oy_strided = y + s.pad_h - kh;
      if (oy_strided < 0 || oy_strided % s.stride_h != 0) continue;
      const int64_t oy = oy_strided / s.stride_h;
      if (oy >= s.out_h) continue;
      for (int64_t kw = 0; kw < s.kernel_w; ++kw) {
        const int64_t ox_strided = x_at + s.pad_w - kw;
        if (ox_strided < 0 || ox_strided % s.stride_w != 0) continue;
        const int64_t ox = ox_strided / s.stride_w;
        if (ox >= s.out_w) continue;
        total += pd[(b * ckk + c * taps + kh * s.kernel_w + kw) * p + oy * s.out_w + ox];
      }
    }
    px[e] = total;
  });
}

}  // namespace

void conv_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvShape& s,
                  Tensor& out) {
  require_f32("conv", x, "x");
  const int64_t ckk = s.in_channels * s.kernel_h * s.kernel_w, p = s.out_h * s.out_w;
  NURI_CUDA_CHECK(cudaSetDevice(x.device().index));
  const Tensor cols = im2col(x, s);
  // out[b] [Cout, P] = weight [Cout, CKK] cols[b] [CKK, P], the weight shared (stride 0).
  sgemm(false, false, s.out_channels, p, ckk, weight.data<float>(), ckk, cols.data<float>(), p,
        0.0f, out.data<float>(), p, s.batch, 0, ckk * p, s.out_channels * p);
  if (bias.defined()) {
    const float* pb = bias.data<float>();
    float* po = out.data<float>();
    const int64_t cout = s.out_channels;
    launch_map(out, out.numel(), [=] __device__(int64_t e) { po[e] += pb[e / p % cout]; });
  }
}

void conv_backward(const Tensor& grad, const Tensor& x, const Tensor& weight, const ConvShape& s,
                   Tensor& grad_x, Tensor& grad_weight, Tensor& grad_bias) {
  require_f32("conv backward", grad, "grad");
  const int64_t ckk = s.in_channels * s.kernel_h * s.kernel_w, p = s.out_h * s.out_w;
  const int64_t cout = s.out_channels;
  NURI_CUDA_CHECK(cudaSetDevice(grad.device().index));
  const float* g = grad.data<float>();
  if (grad_x.defined()) {
    // dcols[b] [CKK, P] = weight^T [CKK, Cout] grad[b] [Cout, P], then back to the images.
    Tensor dcols = Tensor::empty({s.batch, ckk, p}, DType::f32, grad.device());
    sgemm(true, false, ckk, p, cout, weight.data<float>(), ckk, g, p, 0.0f, dcols.data<float>(), p,
          s.batch, 0, cout * p, ckk * p);
    col2im(dcols, s, grad_x);
  }
  if (grad_weight.defined()) {
    // grad_weight [Cout, CKK] = sum over b of grad[b] [Cout, P] cols[b]^T, added in batch order.
    const Tensor cols = im2col(x, s);
    float* dw = grad_weight.data<float>();
    if (s.batch == 0) launch_map(grad, cout * ckk, [=] __device__(int64_t i) { dw[i] = 0.0f; });
    for (int64_t b = 0; b < s.batch; ++b) {
      sgemm(false, true, cout, ckk, p, g + b * cout * p, p, cols.data<float>() + b * ckk * p, p,
            b == 0 ? 0.0f : 1.0f, dw, ckk);
    }
  }
  if (grad_bias.defined()) {
    // Sums over the positions of each (image, channel), then over the images.
    Tensor per_image = Tensor::empty({s.batch, cout}, DType::f32, grad.device());
    reduce_sum_forward(grad, s.batch * cout, p, 1, 1.0f, per_image);
    reduce_sum_forward(per_image, 1, s.batch, cout, 1.0f, grad_bias);
  }
}

}  // namespace nuri::cuda
