// Suites for avg_pool1d, avg_pool2d and max_pool2d: overlapping windows (stride < kernel), gaps
// (stride > kernel) and tilings (stride == kernel).
#include <gtest/gtest.h>

#include <array>
#include <cmath>

#include "kernels/autograd.h"
#include "kernels/ops/pool.h"
#include "tests/ops/harness.h"

namespace nuri::test {
namespace {

#include <algorithm>
#include <limits>

// Mean (or maximum) of each window of x [planes..., h, w]; `is_1d` drops the height from the
// result's shape.
Ref pool_ref(const Ref& x, int64_t h, int64_t w, std::array<int64_t, 2> kernel,
             std::array<int64_t, 2> stride, bool is_1d, bool is_max) {
  const int64_t oh_n = (h - kernel[0]) / stride[0] + 1;
  const int64_t ow_n = (w - kernel[1]) / stride[1] + 1;
  const int64_t planes = x.numel() / (h * w);
  Shape shape(x.shape.begin(), x.shape.end() - (is_1d ? 1 : 2));
  if (!is_1d) shape.push_back(oh_n);
  shape.push_back(ow_n);
  Ref out(shape);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < oh_n; ++i)
      for (int64_t j = 0; j < ow_n; ++j) {
        double total = 0, most = -std::numeric_limits<double>::infinity();
        for (int64_t r = 0; r < kernel[0]; ++r)
          for (int64_t q = 0; q < kernel[1]; ++q) {
            const double v = x[(p * h + i * stride[0] + r) * w + j * stride[1] + q];
            total += v;
            most = std::max(most, v);
          }
        out[(p * oh_n + i) * ow_n + j] =
            is_max ? most : total / static_cast<double>(kernel[0] * kernel[1]);
      }
  return out;
}

OpCase pool_case(const Shape& x_shape, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                 CaseRng& rng, bool is_max = false) {
  const bool is_1d = x_shape.size() == 3;
  const int64_t h = is_1d ? 1 : x_shape[2], w = x_shape.back();
  OpCase c;
  c.label = "x" + shape_str(x_shape) + " kernel " + shape_str({kernel[0], kernel[1]}) + " stride " +
            shape_str({stride[0], stride[1]});
  c.inputs = {rng.normal(x_shape)};
  c.grad_inputs = {0};
  c.run = [is_1d, is_max, kernel, stride](const std::vector<Tensor>& in) {
    if (is_max) return std::vector<Tensor>{max_pool2d(in[0], kernel, stride)};
    return std::vector<Tensor>{is_1d ? avg_pool1d(in[0], kernel[1], stride[1])
                                     : avg_pool2d(in[0], kernel, stride)};
  };
  c.reference = [h, w, kernel, stride, is_1d, is_max](const std::vector<Ref>& in) {
    return std::vector<Ref>{pool_ref(in[0], h, w, kernel, stride, is_1d, is_max)};
  };
  return c;
}

// Eight 2-D pools of random shape, kernel and stride.
std::vector<OpCase> random_pool2d_cases(CaseRng& rng, bool is_max) {
  std::vector<OpCase> cases;
  for (int k = 0; k < 8; ++k) {
    const int64_t h = rng.dim(7), w = rng.dim(8);
    const std::array<int64_t, 2> kernel = {rng.uniform_int(1, std::min<int64_t>(h, 3)),
                                           rng.uniform_int(1, std::min<int64_t>(w, 4))};
    const std::array<int64_t, 2> stride = {rng.uniform_int(1, 3), rng.uniform_int(1, 3)};
    cases.push_back(pool_case({rng.dim(2), rng.dim(3), h, w}, kernel, stride, rng, is_max));
  }
  return cases;
}

NURI_OP_SUITE(OpSuite{
    "avg_pool1d",
    [](CaseRng& rng) {
      std::vector<OpCase> cases;
      for (int k = 0; k < 8; ++k) {
        const int64_t length = rng.dim(13);
        const int64_t kernel = rng.uniform_int(1, std::min<int64_t>(length, 5));
        cases.push_back(pool_case({rng.dim(3), rng.dim(4), length}, {1, kernel},
                                  {1, rng.uniform_int(1, 4)}, rng));
      }
      cases.push_back(pool_case({2, 3, 11}, {1, 4}, {1, 1}, rng));  // heavy overlap
      cases.push_back(pool_case({1, 2, 12}, {1, 3}, {1, 3}, rng));  // tiling
      cases.push_back(pool_case({2, 1, 13}, {1, 2}, {1, 4}, rng));  // gaps and a remainder
      return cases;
    },
    [] {
      return std::vector<Malformed>{
          {"kernel longer than the input",
           [] {
             avg_pool1d(Tensor::zeros({1, 2, 3}), 4, 1);
           },
           "kernel 4 along length is larger than the input extent 3"},
          {"zero stride",
           [] {
             avg_pool1d(Tensor::zeros({1, 2, 6}), 2, 0);
           },
           "stride 0 along length must be positive"},
          {"zero kernel",
           [] {
             avg_pool1d(Tensor::zeros({1, 2, 6}), 0, 1);
           },
           "kernel 0 along length must be positive"},
          {"x of rank 2",
           [] {
             avg_pool1d(Tensor::zeros({2, 6}), 2, 2);
           },
           "x must have 3 dimensions"},
          {"integer x",
           [] {
             avg_pool1d(Tensor::zeros({1, 2, 6}, DType::i64), 2, 2);
           },
           "x must be floating"},
      };
    }});

NURI_OP_SUITE(OpSuite{
    "avg_pool2d",
    [](CaseRng& rng) {
      std::vector<OpCase> cases = random_pool2d_cases(rng, false);
      cases.push_back(pool_case({2, 2, 7, 9}, {3, 3}, {1, 2}, rng));  // overlap on both axes
      cases.push_back(pool_case({1, 3, 8, 6}, {2, 3}, {2, 3}, rng));  // tiling
      cases.push_back(pool_case({1, 1, 9, 7}, {2, 1}, {3, 2}, rng));  // gaps
      return cases;
    },
    [] {
      return std::vector<Malformed>{
          {"kernel taller than the input",
           [] {
             avg_pool2d(Tensor::zeros({1, 1, 2, 8}), {3, 3}, {1, 1});
           },
           "kernel 3 along height is larger than the input extent 2"},
          {"negative stride",
           [] {
             avg_pool2d(Tensor::zeros({1, 1, 8, 8}), {2, 2}, {2, -1});
           },
           "stride -1 along width must be positive"},
          {"x of rank 3",
           [] {
             avg_pool2d(Tensor::zeros({1, 8, 8}), {2, 2}, {2, 2});
           },
           "x must have 4 dimensions"},
          {"undefined x",
           [] {
             avg_pool2d(Tensor(), {2, 2}, {2, 2});
           },
           "x is undefined"},
      };
    }});

NURI_OP_SUITE(OpSuite{
    "max_pool2d",
    [](CaseRng& rng) {
      std::vector<OpCase> cases = random_pool2d_cases(rng, true);
      cases.push_back(pool_case({2, 2, 7, 9}, {3, 3}, {1, 2}, rng, true));    // overlap
      cases.push_back(pool_case({1, 3, 14, 14}, {7, 7}, {7, 7}, rng, true));  // per-patch tiling
      cases.push_back(pool_case({1, 1, 9, 7}, {2, 1}, {3, 2}, rng, true));    // gaps
      return cases;
    },
    [] {
      return std::vector<Malformed>{
          {"kernel wider than the input",
           [] {
             max_pool2d(Tensor::zeros({1, 1, 8, 2}), {2, 3}, {1, 1});
           },
           "max_pool2d: kernel 3 along width is larger than the input extent 2"},
          {"x of rank 3",
           [] {
             max_pool2d(Tensor::zeros({1, 8, 8}), {2, 2}, {2, 2});
           },
           "x must have 4 dimensions"},
          {"integer x",
           [] {
             max_pool2d(Tensor::zeros({1, 1, 4, 4}, DType::i32), {2, 2}, {2, 2});
           },
           "x must be floating"},
      };
    }});

// Ties go to the first element of the window, and the whole gradient with them; a NaN wins.
TEST(MaxPool2d, TiesAndNaN) {
  Tensor x = Tensor::zeros({1, 1, 2, 4});
  float* px = x.data<float>();
  px[5] = std::numeric_limits<float>::quiet_NaN();  // window 0 (columns 0-1): NaN beats zeros
  x.set_requires_grad();                            // window 1 (columns 2-3): all zeros
  Tape tape;
  Tensor out;
  {
    TapeScope scope(tape);
    out = max_pool2d(x, {2, 2}, {2, 2});
  }
  EXPECT_TRUE(std::isnan(out.data<float>()[0]));
  EXPECT_EQ(out.data<float>()[1], 0.0f);
  Tensor seed = Tensor::empty({1, 1, 1, 2});
  seed.data<float>()[0] = 3.0f;
  seed.data<float>()[1] = 5.0f;
  tape.backward({out}, {seed});
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{0, 0, 5, 0, 0, 3, 0, 0}));
}

}  // namespace
}  // namespace nuri::test
