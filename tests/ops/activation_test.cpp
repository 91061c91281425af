// Suites for silu, gelu (exact and tanh forms) and swiglu.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/ops/activation.h"
#include "tests/ops/harness.h"

namespace nuri::test {
namespace {

double silu_ref(double x) {
  return x / (1 + std::exp(-x));
}

double gelu_ref(double x, bool tanh_form) {
  if (tanh_form) {
    const double k = std::sqrt(2 / M_PI);
    return 0.5 * x * (1 + std::tanh(k * (x + 0.044715 * x * x * x)));
  }
  return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
}

// Random shapes of rank 1..4, a long one (the parallel path) and wide-ranging values, including
// a few far in both tails.
Shape activation_shape(CaseRng& rng, int k) {
  if (k == 0) return {3, 12345};
  Shape s;
  const int rank = static_cast<int>(rng.uniform_int(1, 4));
  for (int i = 0; i < rank; ++i) s.push_back(rng.dim(7));
  return s;
}

Tensor activation_input(CaseRng& rng, const Shape& s) {
  Tensor x = rng.normal(s, 3.0f);
  const float tails[] = {-30.0f, 25.0f, -9.0f, 8.5f};
  for (int64_t i = 0; i < std::min<int64_t>(x.numel() / 3, 4); ++i)
    x.data<float>()[3 * i] = tails[i];
  return x;
}

template <class Op, class RefOp>
OpCase unary_case(CaseRng& rng, int k, const std::string& tag, Op op, RefOp ref) {
  const Shape s = activation_shape(rng, k);
  OpCase c;
  c.label = "x" + shape_str(s) + tag;
  c.inputs = {activation_input(rng, s)};
  c.grad_inputs = {0};
  c.run = [op](const std::vector<Tensor>& in) { return std::vector<Tensor>{op(in[0])}; };
  c.reference = [ref](const std::vector<Ref>& in) {
    Ref out(in[0].shape);
    for (int64_t i = 0; i < out.numel(); ++i) out[i] = ref(in[0][i]);
    return std::vector<Ref>{out};
  };
  return c;
}

NURI_OP_SUITE(OpSuite{"silu",
                      [](CaseRng& rng) {
                        std::vector<OpCase> cases;
                        for (int k = 0; k < 7; ++k) {
                          cases.push_back(unary_case(
                              rng, k, "", [](const Tensor& x) { return silu(x); }, silu_ref));
                        }
                        return cases;
                      },
                      [] {
                        return std::vector<Malformed>{
                            {"integer x", [] { silu(Tensor::zeros({4}, DType::i32)); },
                             "silu: x must be floating, not i32"},
                            {"u8 x", [] { silu(Tensor::zeros({4}, DType::u8)); },
                             "silu: x must be floating, not u8"},
                            {"undefined x", [] { silu(Tensor()); }, "silu: x is undefined"},
                        };
                      }});

NURI_OP_SUITE(OpSuite{"gelu",
                      [](CaseRng& rng) {
                        std::vector<OpCase> cases;
                        for (int k = 0; k < 10; ++k) {
                          const bool tanh_form = k % 2 == 1;
                          cases.push_back(unary_case(
                              rng, k, tanh_form ? " tanh" : " erf",
                              [tanh_form](const Tensor& x) { return gelu(x, tanh_form); },
                              [tanh_form](double x) { return gelu_ref(x, tanh_form); }));
                        }
                        return cases;
                      },
                      [] {
                        return std::vector<Malformed>{
                            {"integer x", [] { gelu(Tensor::zeros({4}, DType::i64)); },
                             "gelu: x must be floating, not i64"},
                            {"integer x, tanh form",
                             [] { gelu(Tensor::zeros({4}, DType::i32), true); },
                             "gelu: x must be floating, not i32"},
                            {"undefined x", [] { gelu(Tensor()); }, "gelu: x is undefined"},
                        };
                      }});

NURI_OP_SUITE(OpSuite{
    "swiglu",
    [](CaseRng& rng) {
      std::vector<OpCase> cases;
      for (int k = 0; k < 7; ++k) {
        const Shape s = activation_shape(rng, k);
        OpCase c;
        c.label = "gate" + shape_str(s) + " up" + shape_str(s);
        c.inputs = {activation_input(rng, s), rng.normal(s, 2.0f)};
        c.grad_inputs = {0, 1};
        c.run = [](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{swiglu(in[0], in[1])};
        };
        c.reference = [](const std::vector<Ref>& in) {
          Ref out(in[0].shape);
          for (int64_t i = 0; i < out.numel(); ++i) out[i] = silu_ref(in[0][i]) * in[1][i];
          return std::vector<Ref>{out};
        };
        cases.push_back(std::move(c));
      }
      return cases;
    },
    [] {
      return std::vector<Malformed>{
          {"shapes differ",
           [] {
             swiglu(Tensor::zeros({2, 6}), Tensor::zeros({2, 3}));
           },
           "swiglu: up has shape [2, 3], expected [2, 6]"},
          {"up broadcast from a row",
           [] {
             swiglu(Tensor::zeros({2, 3}), Tensor::zeros({3}));
           },
           "swiglu: up has shape [3], expected [2, 3]"},
          {"dtypes differ",
           [] {
             swiglu(Tensor::zeros({2, 3}), Tensor::zeros({2, 3}, DType::bf16));
           },
           "swiglu: gate is f32 but up is bf16"},
          {"integer inputs",
           [] {
             swiglu(Tensor::zeros({2, 3}, DType::i32), Tensor::zeros({2, 3}, DType::i32));
           },
           "swiglu: gate must be floating, not i32"},
          {"undefined up",
           [] {
             swiglu(Tensor::zeros({2, 3}), Tensor());
           },
           "swiglu: up is undefined"},
      };
    }});

// The claim in kernels/cpu/activation.cpp, element by element: normalised MSE over a whole tensor
// would give the tiny tail values no weight.
TEST(GeluTail, RelativeErrorElementByElement) {
  std::vector<float> xs;
  for (float x = -13.0f; x <= 6.0f; x += 0.01f) xs.push_back(x);
  const Tensor x = Tensor::from_vector(xs, {static_cast<int64_t>(xs.size())});
  const std::vector<float> y = gelu(x).to_vector();
  for (size_t i = 0; i < xs.size(); ++i) {
    const double v = xs[i];
    const double expected = 0.5 * v * std::erfc(-v / std::sqrt(2.0));
    const double bound = v > -5 ? 3e-6 : 2e-5;
    ASSERT_LE(std::abs(y[i] - expected), bound * std::abs(expected) + 1e-30) << "x = " << v;
  }
}

}  // namespace
}  // namespace nuri::test
