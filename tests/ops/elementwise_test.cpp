// Suites for add, mul, scale, sum, mean and cast.
#include "kernels/ops/elementwise.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "kernels/autograd.h"
#include "kernels/device.h"
#include "kernels/ops/cast.h"
#include "kernels/ops/reduce.h"
#include "tests/ops/harness.h"

namespace nuri::test {
namespace {

// A random shape of rank 1..4 and a trailing part of it (possibly empty) for broadcasting.
std::pair<Shape, Shape> broadcast_shapes(CaseRng& rng) {
  Shape a;
  const int rank = static_cast<int>(rng.uniform_int(1, 4));
  for (int i = 0; i < rank; ++i) a.push_back(rng.dim(6));
  const int keep = static_cast<int>(rng.uniform_int(0, rank));
  return {a, Shape(a.end() - keep, a.end())};
}

template <class Op, class RefOp>
std::vector<OpCase> binary_cases(CaseRng& rng, Op op, RefOp ref_op) {
  std::vector<OpCase> cases;
  for (int k = 0; k < 8; ++k) {
    auto [as, bs] = k == 0 ? std::pair<Shape, Shape>{{3, 5}, {3, 5}} : broadcast_shapes(rng);
    OpCase c;
    c.label = "a" + shape_str(as) + " b" + shape_str(bs);
    c.inputs = {rng.normal(as), rng.normal(bs)};
    c.grad_inputs = {0, 1};
    c.run = [op](const std::vector<Tensor>& in) { return std::vector<Tensor>{op(in[0], in[1])}; };
    c.reference = [ref_op](const std::vector<Ref>& in) {
      Ref out(in[0].shape);
      const int64_t nb = in[1].numel();
      for (int64_t i = 0; i < out.numel(); ++i) out[i] = ref_op(in[0][i], in[1][i % nb]);
      return std::vector<Ref>{out};
    };
    cases.push_back(std::move(c));
  }
  return cases;
}

template <class Op>
std::vector<Malformed> binary_malformed(const char* name, Op op) {
  return {
      {"b not a trailing part of a",
       [op] {
         op(Tensor::zeros({2, 3}), Tensor::zeros({2}));
       },
       "does not broadcast"},
      {"b larger than a",
       [op] {
         op(Tensor::zeros({3}), Tensor::zeros({2, 3}));
       },
       "does not broadcast"},
      {"dtype mismatch", [op] { op(Tensor::zeros({3}), Tensor::zeros({3}, DType::i32)); }, "i32"},
      {"undefined input", [op] { op(Tensor(), Tensor::zeros({3})); }, "undefined"},
      {"integer inputs",
       [op] { op(Tensor::zeros({3}, DType::i64), Tensor::zeros({3}, DType::i64)); }, "floating"},
  };
}

NURI_OP_SUITE(OpSuite{
    "add",
    [](CaseRng& rng) {
      return binary_cases(
          rng, [](const Tensor& a, const Tensor& b) { return add(a, b); },
          [](double a, double b) { return a + b; });
    },
    [] { return binary_malformed("add", [](const Tensor& a, const Tensor& b) { add(a, b); }); }});

NURI_OP_SUITE(OpSuite{
    "mul",
    [](CaseRng& rng) {
      return binary_cases(
          rng, [](const Tensor& a, const Tensor& b) { return mul(a, b); },
          [](double a, double b) { return a * b; });
    },
    [] { return binary_malformed("mul", [](const Tensor& a, const Tensor& b) { mul(a, b); }); }});

NURI_OP_SUITE(OpSuite{"scale",
                      [](CaseRng& rng) {
                        std::vector<OpCase> cases;
                        for (int k = 0; k < 5; ++k) {
                          const Shape s = {rng.dim(7), rng.dim(5)};
                          const float factor = static_cast<float>(rng.uniform_real(-3, 3));
                          OpCase c;
                          c.label = "x" + shape_str(s) + " factor=" + std::to_string(factor);
                          c.inputs = {rng.normal(s)};
                          c.grad_inputs = {0};
                          c.run = [factor](const std::vector<Tensor>& in) {
                            return std::vector<Tensor>{scale(in[0], factor)};
                          };
                          c.reference = [factor](const std::vector<Ref>& in) {
                            Ref out = in[0];
                            for (double& v : out.v) v *= static_cast<double>(factor);
                            return std::vector<Ref>{out};
                          };
                          cases.push_back(std::move(c));
                        }
                        return cases;
                      },
                      [] {
                        return std::vector<Malformed>{
                            {"integer input", [] { scale(Tensor::zeros({2}, DType::i32), 2.0f); },
                             "floating"},
                            {"undefined input", [] { scale(Tensor(), 2.0f); }, "undefined"}};
                      }});

// sum or mean over everything or one dimension, in float64.
Ref reduce_ref(const Ref& x, int dim, bool all, bool average) {
  if (all) {
    Ref out(Shape{});
    for (double v : x.v) out[0] += v;
    if (average) out[0] /= static_cast<double>(x.numel());
    return out;
  }
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < dim; ++i) outer *= x.shape[i];
  for (size_t i = dim + 1; i < x.shape.size(); ++i) inner *= x.shape[i];
  const int64_t n = x.shape[dim];
  Shape s = x.shape;
  s.erase(s.begin() + dim);
  Ref out(s);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < n; ++k)
      for (int64_t i = 0; i < inner; ++i) out[o * inner + i] += x[(o * n + k) * inner + i];
  if (average)
    for (double& v : out.v) v /= static_cast<double>(n);
  return out;
}

std::vector<OpCase> reduce_cases(CaseRng& rng, bool average) {
  std::vector<OpCase> cases;
  for (int k = 0; k < 8; ++k) {
    Shape s;
    const int rank = static_cast<int>(rng.uniform_int(1, 4));
    for (int i = 0; i < rank; ++i) s.push_back(rng.dim(7));
    const bool all = k % 3 == 0;
    const int dim = static_cast<int>(rng.uniform_int(0, rank - 1));
    OpCase c;
    c.label = "x" + shape_str(s) + (all ? " all" : " dim=" + std::to_string(dim));
    c.inputs = {rng.normal(s)};
    c.grad_inputs = {0};
    c.run = [all, dim, average](const std::vector<Tensor>& in) {
      const std::optional<int> d = all ? std::nullopt : std::optional<int>(dim);
      return std::vector<Tensor>{average ? mean(in[0], d) : sum(in[0], d)};
    };
    c.reference = [all, dim, average](const std::vector<Ref>& in) {
      return std::vector<Ref>{reduce_ref(in[0], dim, all, average)};
    };
    cases.push_back(std::move(c));
  }
  return cases;
}

std::vector<Malformed> reduce_malformed(bool average) {
  auto op = [average](const Tensor& x, std::optional<int> d) {
    return average ? mean(x, d) : sum(x, d);
  };
  return {
      {"dimension out of range",
       [op] {
         op(Tensor::zeros({2, 3}), 2);
       },
       "out of range"},
      {"negative dimension out of range",
       [op] {
         op(Tensor::zeros({2, 3}), -3);
       },
       "out of range"},
      {"integer input", [op] { op(Tensor::zeros({2}, DType::i64), std::nullopt); }, "floating"}};
}

NURI_OP_SUITE(OpSuite{"sum", [](CaseRng& rng) { return reduce_cases(rng, false); },
                      [] { return reduce_malformed(false); }});
NURI_OP_SUITE(OpSuite{"mean", [](CaseRng& rng) { return reduce_cases(rng, true); },
                      [] { return reduce_malformed(true); }});

// cast to bf16 and back: the forward rounds like bf16, the gradient passes straight through.
NURI_OP_SUITE(OpSuite{
    "cast",
    [](CaseRng& rng) {
      std::vector<OpCase> cases;
      for (DType mid : {DType::bf16, DType::f16, DType::f32}) {
        const Shape s = {rng.dim(9), rng.dim(4)};
        OpCase c;
        c.label = "x" + shape_str(s) + " via " + std::string(dtype_name(mid));
        c.inputs = {rng.normal(s)};
        c.grad_inputs = {0};
        c.run = [mid](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{cast(cast(in[0], mid), DType::f32)};
        };
        c.reference = [](const std::vector<Ref>& in) { return std::vector<Ref>{in[0]}; };
        // bf16 keeps 8 significant bits: relative error up to 2^-9, so nmse up to ~4e-6.
        c.forward_tol = mid == DType::bf16 ? 1e-5 : (mid == DType::f16 ? 1e-7 : 1e-14);
        c.grad_tol = c.forward_tol;  // the gradient flows back through the same rounding
        cases.push_back(std::move(c));
      }
      return cases;
    },
    [] {
      return std::vector<Malformed>{{"differentiating a cast to an integer",
                                     [] {
                                       Tensor x = Tensor::zeros({2});
                                       x.set_requires_grad();
                                       Tape tape;
                                       TapeScope scope(tape);
                                       cast(x, DType::i32);
                                     },
                                     "cannot differentiate"}};
    }});

// Sums long enough for the GPU to split them into spans: a whole tensor and rows (a block per
// span), and columns side by side (a thread per column, with and without outer slices), against
// the CPU to within f32 rounding of double sums, and the same bits on every run.
TEST(OpParityCuda, LongSumsMatchTheCpu) {
  if (!cuda_compiled()) GTEST_SKIP() << "built without CUDA: long sums not checked";
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: long sums not checked";
  CaseRng rng(23);
  const std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>> sums = {
      {"sum of all", [](const Tensor& x) { return sum(x); }},
      {"sum over the last dim", [](const Tensor& x) { return sum(x, 2); }},
      {"mean over the middle dim", [](const Tensor& x) { return mean(x, 1); }},
      {"sum_to_trailing", [](const Tensor& x) { return sum_to_trailing(x, {x.size(2)}); }}};
  for (const Shape& shape : {Shape{4, 3000, 40}, Shape{2, 5000, 7}, Shape{3, 70, 300}}) {
    const Tensor x = rng.normal(shape);
    const Tensor on_gpu = x.to(Device::cuda(0));
    for (const auto& [name, op] : sums) {
      const Tensor gpu = op(on_gpu);
      EXPECT_LT(nmse(to_ref(gpu).v, to_ref(op(x)).v), 1e-12) << name << " of " << shape_str(shape);
      EXPECT_EQ(gpu.to_vector(), op(on_gpu).to_vector()) << name << " of " << shape_str(shape);
    }
  }
}

}  // namespace
}  // namespace nuri::test
