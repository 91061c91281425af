// Suites for conv1d and conv2d: strides, paddings, the kernel == stride patch layout and the
// 1x1 direct layout, with and without bias, single and several images.
#include <gtest/gtest.h>

#include <array>

#include "kernels/autograd.h"
#include "kernels/ops/conv.h"
#include "tests/ops/harness.h"

namespace nuri::test {
namespace {

struct ConvParams {
  int64_t batch, in_channels, height, width, out_channels, kernel_h, kernel_w;
  std::array<int64_t, 2> stride, padding;
  bool bias;
  bool is_1d;
};

// out[b, o, i, j] = bias[o] + sum_{c, p, q} x[b, c, i sh - ph + p, j sw - pw + q] w[o, c, p, q],
// reading zero outside x.
Ref conv_ref(const ConvParams& p, const Ref& x, const Ref& w, const Ref* bias) {
  const int64_t oh_n = (p.height + 2 * p.padding[0] - p.kernel_h) / p.stride[0] + 1;
  const int64_t ow_n = (p.width + 2 * p.padding[1] - p.kernel_w) / p.stride[1] + 1;
  Ref out(p.is_1d ? Shape{p.batch, p.out_channels, ow_n}
                  : Shape{p.batch, p.out_channels, oh_n, ow_n});
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t o = 0; o < p.out_channels; ++o)
      for (int64_t i = 0; i < oh_n; ++i)
        for (int64_t j = 0; j < ow_n; ++j) {
          double total = bias != nullptr ? (*bias)[o] : 0.0;
          for (int64_t c = 0; c < p.in_channels; ++c)
            for (int64_t r = 0; r < p.kernel_h; ++r)
              for (int64_t q = 0; q < p.kernel_w; ++q) {
                const int64_t y = i * p.stride[0] - p.padding[0] + r;
                const int64_t z = j * p.stride[1] - p.padding[1] + q;
                if (y < 0 || y >= p.height || z < 0 || z >= p.width) continue;
                total += x[((b * p.in_channels + c) * p.height + y) * p.width + z] *
                         w[((o * p.in_channels + c) * p.kernel_h + r) * p.kernel_w + q];
              }
          out[((b * p.out_channels + o) * oh_n + i) * ow_n + j] = total;
        }
  return out;
}

OpCase conv_case(const ConvParams& p, CaseRng& rng) {
  const Shape x_shape = p.is_1d ? Shape{p.batch, p.in_channels, p.width}
                                : Shape{p.batch, p.in_channels, p.height, p.width};
  const Shape w_shape = p.is_1d ? Shape{p.out_channels, p.in_channels, p.kernel_w}
                                : Shape{p.out_channels, p.in_channels, p.kernel_h, p.kernel_w};
  OpCase c;
  c.label = "x" + shape_str(x_shape) + " w" + shape_str(w_shape) + " stride " +
            (p.is_1d ? std::to_string(p.stride[1]) : shape_str({p.stride[0], p.stride[1]})) +
            " padding " +
            (p.is_1d ? std::to_string(p.padding[1]) : shape_str({p.padding[0], p.padding[1]})) +
            (p.bias ? " bias" : " no bias");
  c.inputs = {rng.normal(x_shape), rng.normal(w_shape)};
  c.grad_inputs = {0, 1};
  if (p.bias) {
    c.inputs.push_back(rng.normal({p.out_channels}));
    c.grad_inputs.push_back(2);
  }
  c.run = [p](const std::vector<Tensor>& in) {
    const Tensor bias = p.bias ? in[2] : Tensor();
    return std::vector<Tensor>{p.is_1d ? conv1d(in[0], in[1], bias, p.stride[1], p.padding[1])
                                       : conv2d(in[0], in[1], bias, p.stride, p.padding)};
  };
  c.reference = [p](const std::vector<Ref>& in) {
    return std::vector<Ref>{conv_ref(p, in[0], in[1], p.bias ? &in[2] : nullptr)};
  };
  return c;
}

// A random geometry; the kernel never exceeds the padded input.
ConvParams random_params(CaseRng& rng, bool is_1d, bool bias) {
  ConvParams p{};
  p.is_1d = is_1d;
  p.bias = bias;
  p.batch = rng.dim(3);
  p.in_channels = rng.dim(4);
  p.out_channels = rng.dim(4);
  p.height = is_1d ? 1 : rng.dim(7);
  p.width = rng.dim(is_1d ? 11 : 7);
  p.padding = {is_1d ? 0 : rng.uniform_int(0, 2), rng.uniform_int(0, 2)};
  p.stride = {is_1d ? 1 : rng.uniform_int(1, 3), rng.uniform_int(1, 3)};
  p.kernel_h = is_1d ? 1 : rng.uniform_int(1, std::min<int64_t>(4, p.height + 2 * p.padding[0]));
  p.kernel_w = rng.uniform_int(1, std::min<int64_t>(5, p.width + 2 * p.padding[1]));
  return p;
}

std::vector<OpCase> conv1d_cases(CaseRng& rng) {
  std::vector<OpCase> cases;
  for (int k = 0; k < 8; ++k) cases.push_back(conv_case(random_params(rng, true, k % 2 == 0), rng));
  // The audio stem: kernel 3, padding 1, stride 1 then 2.
  cases.push_back(conv_case({2, 3, 1, 9, 4, 1, 3, {1, 1}, {0, 1}, true, true}, rng));
  cases.push_back(conv_case({2, 4, 1, 9, 3, 1, 3, {1, 2}, {0, 1}, true, true}, rng));
  // Kernel == stride: patches, with a remainder the kernel never reads.
  cases.push_back(conv_case({3, 2, 1, 13, 5, 1, 4, {1, 4}, {0, 0}, true, true}, rng));
  cases.push_back(conv_case({1, 1, 1, 12, 2, 1, 3, {1, 3}, {0, 0}, false, true}, rng));
  // 1x1 kernel, stride 1, no padding: the input is its own column matrix.
  cases.push_back(conv_case({2, 5, 1, 7, 3, 1, 1, {1, 1}, {0, 0}, true, true}, rng));
  return cases;
}

std::vector<OpCase> conv2d_cases(CaseRng& rng) {
  std::vector<OpCase> cases;
  for (int k = 0; k < 8; ++k)
    cases.push_back(conv_case(random_params(rng, false, k % 2 == 0), rng));
  // Different stride and padding per axis.
  cases.push_back(conv_case({2, 2, 6, 5, 3, 3, 2, {2, 1}, {1, 0}, true, false}, rng));
  cases.push_back(conv_case({1, 3, 5, 7, 2, 2, 3, {1, 3}, {2, 1}, false, false}, rng));
  // Patch embedding (kernel == stride): exact tiling, and remainders on both axes.
  cases.push_back(conv_case({2, 3, 8, 8, 5, 4, 4, {4, 4}, {0, 0}, true, false}, rng));
  cases.push_back(conv_case({3, 2, 9, 10, 4, 4, 3, {4, 3}, {0, 0}, true, false}, rng));
  // 1x1 kernel, stride 1, no padding.
  cases.push_back(conv_case({2, 3, 3, 5, 4, 1, 1, {1, 1}, {0, 0}, true, false}, rng));
  // 1x1 kernel with a stride: not the direct layout.
  cases.push_back(conv_case({1, 2, 5, 5, 3, 1, 1, {2, 2}, {0, 0}, false, false}, rng));
  return cases;
}

NURI_OP_SUITE(OpSuite{
    "conv1d", conv1d_cases, [] {
      return std::vector<Malformed>{
          {"channel mismatch",
           [] {
             conv1d(Tensor::zeros({2, 3, 8}), Tensor::zeros({4, 2, 3}), Tensor());
           },
           "expects 2 input channels but x [2, 3, 8] has 3"},
          {"kernel larger than the padded input",
           [] {
             conv1d(Tensor::zeros({1, 1, 3}), Tensor::zeros({1, 1, 6}), Tensor(), 1, 1);
           },
           "kernel 6 along length is larger than the padded input (3 + 2 * 1 = 5)"},
          {"zero stride",
           [] {
             conv1d(Tensor::zeros({1, 1, 8}), Tensor::zeros({1, 1, 3}), Tensor(), 0);
           },
           "stride 0 along length must be positive"},
          {"negative padding",
           [] {
             conv1d(Tensor::zeros({1, 1, 8}), Tensor::zeros({1, 1, 3}), Tensor(), 1, -1);
           },
           "padding -1 along length must not be negative"},
          {"x of rank 4",
           [] {
             conv1d(Tensor::zeros({1, 1, 8, 8}), Tensor::zeros({1, 1, 3}), Tensor());
           },
           "x must have 3 dimensions"},
          {"bias of the wrong length",
           [] {
             conv1d(Tensor::zeros({1, 2, 8}), Tensor::zeros({4, 2, 3}), Tensor::zeros({3}));
           },
           "bias has shape [3], expected [4]"},
          {"weight dtype differs",
           [] {
             conv1d(Tensor::zeros({1, 2, 8}), Tensor::zeros({4, 2, 3}, DType::f16), Tensor());
           },
           "weight is f16"},
      };
    }});

NURI_OP_SUITE(OpSuite{
    "conv2d", conv2d_cases, [] {
      return std::vector<Malformed>{
          {"channel mismatch",
           [] {
             conv2d(Tensor::zeros({1, 3, 8, 8}), Tensor::zeros({4, 1, 3, 3}), Tensor());
           },
           "expects 1 input channels but x [1, 3, 8, 8] has 3"},
          {"kernel taller than the padded input",
           [] {
             conv2d(Tensor::zeros({1, 1, 2, 8}), Tensor::zeros({1, 1, 3, 3}), Tensor());
           },
           "kernel 3 along height is larger than the padded input (2 + 2 * 0 = 2)"},
          {"kernel wider than the padded input",
           [] {
             conv2d(Tensor::zeros({1, 1, 8, 2}), Tensor::zeros({1, 1, 3, 5}), Tensor(), {1, 1},
                    {0, 1});
           },
           "kernel 5 along width is larger than the padded input (2 + 2 * 1 = 4)"},
          {"negative stride",
           [] {
             conv2d(Tensor::zeros({1, 1, 8, 8}), Tensor::zeros({1, 1, 3, 3}), Tensor(), {1, -2});
           },
           "stride -2 along width must be positive"},
          {"negative padding",
           [] {
             conv2d(Tensor::zeros({1, 1, 8, 8}), Tensor::zeros({1, 1, 3, 3}), Tensor(), {1, 1},
                    {-1, 0});
           },
           "padding -1 along height must not be negative"},
          {"weight of rank 3",
           [] {
             conv2d(Tensor::zeros({1, 1, 8, 8}), Tensor::zeros({1, 1, 3}), Tensor());
           },
           "weight must have 4 dimensions"},
          {"integer x",
           [] {
             conv2d(Tensor::zeros({1, 1, 4, 4}, DType::i32),
                    Tensor::zeros({1, 1, 3, 3}, DType::i32), Tensor());
           },
           "x must be floating"},
      };
    }});

// Outputs and gradients of conv1d on one batch, with the given cotangent.
struct ConvRun {
  Tensor out, grad_x, grad_w, grad_b;
};

ConvRun run_conv1d(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& seed) {
  ConvRun r;
  Tensor xs = x.clone(), ws = w.clone(), bs = b.clone();
  for (Tensor* t : {&xs, &ws, &bs}) t->set_requires_grad();
  Tape tape;
  {
    TapeScope scope(tape);
    r.out = conv1d(xs, ws, bs, 1, 0);
  }
  tape.backward({r.out}, {seed});
  r.grad_x = xs.grad();
  r.grad_w = ws.grad();
  r.grad_b = bs.grad();
  return r;
}

std::vector<double> values(const Tensor& t) {
  const std::vector<float> v = t.to_vector();
  return {v.begin(), v.end()};
}

// Images large enough that the kernel lowers the batch of 3 in chunks of 2 and 1 (each image
// needs about 7M floats of its 16M-float scratch): the result must match convolving each image on
// its own, the weight and bias gradients being the sums over the images.
TEST(ConvChunks, BatchMatchesSingleImages) {
  CaseRng rng(11);
  const int64_t batch = 3, length = 55000;
  const Tensor x = rng.normal({batch, 4, length});
  const Tensor w = rng.normal({64, 4, 16}, 0.1f);
  const Tensor b = rng.normal({64});
  const Tensor seed = rng.normal({batch, 64, length - 15});
  const ConvRun whole = run_conv1d(x, w, b, seed);
  std::vector<double> out, grad_x, grad_w(static_cast<size_t>(w.numel())), grad_b(64);
  for (int64_t i = 0; i < batch; ++i) {
    const ConvRun one =
        run_conv1d(x.outer_slice(i, i + 1), w, b, seed.outer_slice(i, i + 1).clone());
    for (double v : values(one.out)) out.push_back(v);
    for (double v : values(one.grad_x)) grad_x.push_back(v);
    const std::vector<double> gw = values(one.grad_w), gb = values(one.grad_b);
    for (size_t k = 0; k < gw.size(); ++k) grad_w[k] += gw[k];
    for (size_t k = 0; k < gb.size(); ++k) grad_b[k] += gb[k];
  }
  EXPECT_LE(nmse(values(whole.out), out), 1e-12);
  EXPECT_LE(nmse(values(whole.grad_x), grad_x), 1e-12);
  EXPECT_LE(nmse(values(whole.grad_w), grad_w), 1e-12);
  EXPECT_LE(nmse(values(whole.grad_b), grad_b), 1e-12);
}

}  // namespace
}  // namespace nuri::test
