// Suites for rms_norm, add_rms_norm and layer_norm, and a check that their parameter gradients do
// not depend on the thread count.
#include "kernels/ops/norm.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>

#include "kernels/autograd.h"
#include "kernels/device.h"
#include "tests/ops/harness.h"

namespace nuri::test {
namespace {

// A shape [..., D] with 0 to 3 leading dimensions.
Shape norm_shape(CaseRng& rng, int64_t d) {
  Shape s;
  const int lead = static_cast<int>(rng.uniform_int(0, 3));
  for (int i = 0; i < lead; ++i) s.push_back(rng.dim(5));
  s.push_back(d);
  return s;
}

// Shapes for the cases: random ones, plus many rows (several gradient chunks and flushes) and
// one big enough to run in parallel.
std::vector<Shape> norm_shapes(CaseRng& rng) {
  std::vector<Shape> shapes;
  for (int k = 0; k < 6; ++k) shapes.push_back(norm_shape(rng, rng.dim(9)));
  shapes.push_back({1, 1});
  shapes.push_back({300, 5});
  shapes.push_back({2, 350, 51});
  return shapes;
}

// For D <= 2 and a tiny eps the normalised row is nearly constant and dx (proportional to eps)
// is pure cancellation in f32, so those rows use a larger eps.
float pick_eps(CaseRng& rng, int64_t d) {
  if (d <= 2) return 0.5f;
  const float choices[] = {1e-6f, 1e-5f, 0.1f};
  return choices[rng.uniform_int(0, 2)];
}

Ref rms_norm_ref(const Ref& x, const Ref& w, double eps) {
  const int64_t d = x.shape.back();
  Ref y(x.shape);
  for (int64_t r = 0; r < x.numel() / d; ++r) {
    double squares = 0;
    for (int64_t j = 0; j < d; ++j) squares += x[r * d + j] * x[r * d + j];
    const double scale = 1.0 / std::sqrt(squares / d + eps);
    for (int64_t j = 0; j < d; ++j) y[r * d + j] = x[r * d + j] * scale * w[j];
  }
  return y;
}

Ref layer_norm_ref(const Ref& x, const Ref& w, const Ref* b, double eps) {
  const int64_t d = x.shape.back();
  Ref y(x.shape);
  for (int64_t r = 0; r < x.numel() / d; ++r) {
    double mu = 0;
    for (int64_t j = 0; j < d; ++j) mu += x[r * d + j];
    mu /= d;
    double var = 0;
    for (int64_t j = 0; j < d; ++j) var += (x[r * d + j] - mu) * (x[r * d + j] - mu);
    var /= d;
    for (int64_t j = 0; j < d; ++j) {
      y[r * d + j] = (x[r * d + j] - mu) / std::sqrt(var + eps) * w[j] + (b ? (*b)[j] : 0.0);
    }
  }
  return y;
}

NURI_OP_SUITE(OpSuite{
    "rms_norm",
    [](CaseRng& rng) {
      std::vector<OpCase> cases;
      for (const Shape& s : norm_shapes(rng)) {
        const float eps = pick_eps(rng, s.back());
        OpCase c;
        c.label = "x" + shape_str(s) + " eps=" + std::to_string(eps);
        c.inputs = {rng.normal(s, static_cast<float>(rng.uniform_real(0.1, 3))),
                    rng.normal({s.back()})};
        c.grad_inputs = {0, 1};
        c.run = [eps](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{rms_norm(in[0], in[1], eps)};
        };
        c.reference = [eps](const std::vector<Ref>& in) {
          return std::vector<Ref>{rms_norm_ref(in[0], in[1], eps)};
        };
        cases.push_back(std::move(c));
      }
      return cases;
    },
    [] {
      return std::vector<Malformed>{
          {"weight of the wrong length",
           [] {
             rms_norm(Tensor::zeros({3, 7}), Tensor::ones({5}), 1e-6f);
           },
           "rms_norm: weight has shape [5], expected [7]"},
          {"weight of rank 2",
           [] {
             rms_norm(Tensor::zeros({3, 7}), Tensor::ones({1, 7}), 1e-6f);
           },
           "weight has shape [1, 7]"},
          {"integer x",
           [] {
             rms_norm(Tensor::zeros({3, 7}, DType::i32), Tensor::ones({7}, DType::i32), 1e-6f);
           },
           "rms_norm: x must be floating"},
          {"weight dtype differs",
           [] {
             rms_norm(Tensor::zeros({3, 7}), Tensor::ones({7}, DType::bf16), 1e-6f);
           },
           "rms_norm: x is f32 but weight is bf16"},
          {"scalar x", [] { rms_norm(Tensor::scalar(1), Tensor::ones({1}), 1e-6f); },
           "rms_norm: x must have at least 1 dimension"},
          {"empty last dimension",
           [] {
             rms_norm(Tensor::zeros({3, 0}), Tensor::ones({0}), 1e-6f);
           },
           "rms_norm: x has an empty last dimension"},
          {"negative eps",
           [] {
             rms_norm(Tensor::zeros({3, 7}), Tensor::ones({7}), -1.0f);
           },
           "rms_norm: eps must be finite and >= 0"},
          {"undefined weight",
           [] {
             rms_norm(Tensor::zeros({3, 7}), Tensor(), 1e-6f);
           },
           "rms_norm: weight is undefined"},
      };
    }});

// The fused residual step: both outputs (the sum and its norm) carry gradients.
NURI_OP_SUITE(OpSuite{
    "add_rms_norm",
    [](CaseRng& rng) {
      std::vector<OpCase> cases;
      for (const Shape& s : norm_shapes(rng)) {
        const float eps = pick_eps(rng, s.back());
        OpCase c;
        c.label = "x" + shape_str(s) + " eps=" + std::to_string(eps);
        const float spread = static_cast<float>(rng.uniform_real(0.1, 3));
        c.inputs = {rng.normal(s, spread), rng.normal(s, spread), rng.normal({s.back()})};
        c.grad_inputs = {0, 1, 2};
        c.run = [eps](const std::vector<Tensor>& in) {
          const auto [sum, y] = add_rms_norm(in[0], in[1], in[2], eps);
          return std::vector<Tensor>{sum, y};
        };
        c.reference = [eps](const std::vector<Ref>& in) {
          Ref sum = in[0];
          for (int64_t i = 0; i < sum.numel(); ++i) sum[i] += in[1][i];
          return std::vector<Ref>{sum, rms_norm_ref(sum, in[2], eps)};
        };
        cases.push_back(std::move(c));
      }
      return cases;
    },
    [] {
      return std::vector<Malformed>{
          {"residual of another shape",
           [] {
             add_rms_norm(Tensor::zeros({3, 7}), Tensor::zeros({2, 7}), Tensor::ones({7}), 1e-6f);
           },
           "add_rms_norm: residual has shape [2, 7], expected [3, 7]"},
          {"residual dtype differs",
           [] {
             add_rms_norm(Tensor::zeros({3, 7}), Tensor::zeros({3, 7}, DType::bf16),
                          Tensor::ones({7}), 1e-6f);
           },
           "add_rms_norm: x is f32 but residual is bf16"},
          {"weight of the wrong length",
           [] {
             add_rms_norm(Tensor::zeros({3, 7}), Tensor::zeros({3, 7}), Tensor::ones({5}), 1e-6f);
           },
           "add_rms_norm: weight has shape [5], expected [7]"},
      };
    }});

NURI_OP_SUITE(OpSuite{
    "layer_norm",
    [](CaseRng& rng) {
      std::vector<OpCase> cases;
      int k = 0;
      for (const Shape& s : norm_shapes(rng)) {
        const float eps = pick_eps(rng, s.back());
        const bool with_bias = k++ % 3 != 1;
        OpCase c;
        c.label = "x" + shape_str(s) + " eps=" + std::to_string(eps) +
                  (with_bias ? " with bias" : " no bias");
        // An offset mean tests the centring.
        Tensor x = rng.normal(s, static_cast<float>(rng.uniform_real(0.1, 3)));
        float* px = x.data<float>();
        const float offset = static_cast<float>(rng.uniform_real(-4, 4));
        for (int64_t i = 0; i < x.numel(); ++i) px[i] += offset;
        c.inputs = {x, rng.normal({s.back()})};
        c.grad_inputs = {0, 1};
        if (with_bias) {
          c.inputs.push_back(rng.normal({s.back()}));
          c.grad_inputs.push_back(2);
        }
        c.run = [eps](const std::vector<Tensor>& in) {
          const Tensor bias = in.size() > 2 ? in[2] : Tensor();
          return std::vector<Tensor>{layer_norm(in[0], in[1], bias, eps)};
        };
        c.reference = [eps](const std::vector<Ref>& in) {
          return std::vector<Ref>{
              layer_norm_ref(in[0], in[1], in.size() > 2 ? &in[2] : nullptr, eps)};
        };
        cases.push_back(std::move(c));
      }
      return cases;
    },
    [] {
      return std::vector<Malformed>{
          {"weight of the wrong length",
           [] {
             layer_norm(Tensor::zeros({3, 7}), Tensor::ones({6}), Tensor(), 1e-5f);
           },
           "layer_norm: weight has shape [6], expected [7]"},
          {"bias of the wrong length",
           [] {
             layer_norm(Tensor::zeros({3, 7}), Tensor::ones({7}), Tensor::ones({3}), 1e-5f);
           },
           "layer_norm: bias has shape [3], expected [7]"},
          {"bias dtype differs",
           [] {
             layer_norm(Tensor::zeros({3, 7}), Tensor::ones({7}), Tensor::ones({7}, DType::f16),
                        1e-5f);
           },
           "layer_norm: x is f32 but bias is f16"},
          {"integer x",
           [] {
             layer_norm(Tensor::zeros({2, 4}, DType::i64), Tensor::ones({4}, DType::i64), Tensor(),
                        1e-5f);
           },
           "layer_norm: x must be floating"},
          {"NaN eps",
           [] {
             layer_norm(Tensor::zeros({3, 7}), Tensor::ones({7}), Tensor(), NAN);
           },
           "layer_norm: eps must be finite"},
      };
    }});

// Parameter gradients of a norm over many rows on `device`, computed with `threads` CPU threads.
std::vector<Tensor> norm_param_grads(bool layer, int threads, Device device = Device::cpu()) {
  CaseRng rng(7);
  Tensor x = rng.normal({999, 67}).to(device);
  Tensor w = rng.normal({67}).to(device);
  Tensor b = rng.normal({67}).to(device);
  Tensor dy = rng.normal({999, 67}).to(device);
  w.set_requires_grad();
  b.set_requires_grad();
  const int previous = omp_get_max_threads();
  omp_set_num_threads(threads);
  Tape tape;
  Tensor y;
  {
    TapeScope scope(tape);
    y = layer ? layer_norm(x, w, b, 1e-5f) : rms_norm(x, w, 1e-6f);
  }
  tape.backward({y}, {dy});
  omp_set_num_threads(previous);
  return layer ? std::vector<Tensor>{w.grad(), b.grad()} : std::vector<Tensor>{w.grad()};
}

// Over 999 rows the GPU adds 32 spans of rows, then the spans: the CPU's gradients to within f32
// rounding of double sums, and the same bits on every run.
TEST(OpParityCuda, NormParameterGradientsOverManyRowsMatchTheCpu) {
  if (!cuda_compiled()) GTEST_SKIP() << "built without CUDA: norm gradients not checked";
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: norm gradients not checked";
  for (bool layer : {false, true}) {
    const std::vector<Tensor> cpu = norm_param_grads(layer, 2);
    const std::vector<Tensor> gpu = norm_param_grads(layer, 2, Device::cuda(0));
    const std::vector<Tensor> again = norm_param_grads(layer, 2, Device::cuda(0));
    for (size_t i = 0; i < cpu.size(); ++i) {
      const char* name = layer ? "layer_norm" : "rms_norm";
      EXPECT_LT(nmse(to_ref(gpu[i]).v, to_ref(cpu[i]).v), 1e-12) << name << " gradient " << i;
      EXPECT_EQ(gpu[i].to_vector(), again[i].to_vector()) << name << " gradient " << i;
    }
  }
}

TEST(NormDeterminism, ParameterGradientsDoNotDependOnThreadCount) {
  for (bool layer : {false, true}) {
    const std::vector<Tensor> one = norm_param_grads(layer, 1);
    const std::vector<Tensor> many = norm_param_grads(layer, 5);
    for (size_t i = 0; i < one.size(); ++i) {
      ASSERT_EQ(one[i].numel(), many[i].numel());
      EXPECT_EQ(std::memcmp(one[i].raw_data(), many[i].raw_data(), one[i].nbytes()), 0)
          << (layer ? "layer_norm" : "rms_norm") << " parameter gradient " << i;
    }
  }
}

}  // namespace
}  // namespace nuri::test
