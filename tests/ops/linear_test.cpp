// Suite for linear: x [..., in] against weight [out, in] with and without a bias.
#include "kernels/ops/linear.h"
#include "tests/ops/harness.h"

namespace nuri::test {
namespace {

// y[r, o] = sum_i x[r, i] w[o, i] (+ b[o]), x flattened to rows.
Ref linear_ref(const Ref& x, const Ref& w, const Ref* b) {
  const int64_t out_features = w.shape[0], in = w.shape[1];
  Shape shape = x.shape;
  shape.back() = out_features;
  Ref y(shape);
  const int64_t rows = in == 0 ? 0 : x.numel() / in;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out_features; ++o) {
      double total = b != nullptr ? (*b)[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) total += x[r * in + i] * w[o * in + i];
      y[r * out_features + o] = total;
    }
  }
  return y;
}

OpCase linear_case(const Shape& x_shape, int64_t out_features, bool bias,
                   std::vector<int> grad_inputs, CaseRng& rng) {
  const int64_t in = x_shape.back();
  OpCase c;
  c.label = "x" + shape_str(x_shape) + " out=" + std::to_string(out_features) +
            (bias ? " bias" : " no bias");
  c.inputs = {rng.normal(x_shape), rng.normal({out_features, in})};
  if (bias) c.inputs.push_back(rng.normal({out_features}));
  c.grad_inputs = std::move(grad_inputs);
  c.run = [bias](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{linear(in[0], in[1], bias ? in[2] : Tensor())};
  };
  c.reference = [bias](const std::vector<Ref>& in) {
    return std::vector<Ref>{linear_ref(in[0], in[1], bias ? &in[2] : nullptr)};
  };
  return c;
}

NURI_OP_SUITE(OpSuite{
    "linear",
    [](CaseRng& rng) {
      std::vector<OpCase> cases;
      for (int k = 0; k < 8; ++k) {
        Shape x_shape;
        const int rank = static_cast<int>(rng.uniform_int(1, 3));
        for (int i = 0; i < rank; ++i) x_shape.push_back(rng.dim(6));
        const bool bias = k % 2 == 0;
        std::vector<int> grads = {0, 1};
        if (bias) grads.push_back(2);
        cases.push_back(linear_case(x_shape, rng.dim(7), bias, grads, rng));
      }
      // Only some inputs need a gradient: the others' GEMMs are skipped.
      cases.push_back(linear_case({3, 5}, 4, true, {1}, rng));
      cases.push_back(linear_case({2, 1, 7}, 3, true, {0}, rng));
      cases.push_back(linear_case({4, 6}, 5, true, {2}, rng));
      // No rows at all: the weight and bias gradients are zero.
      cases.push_back(linear_case({0, 3}, 2, true, {1, 2}, rng));
      return cases;
    },
    [] {
      return std::vector<Malformed>{
          {"weight's in-features differ from x's",
           [] {
             linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 5}));
           },
           "weight has shape [4, 5]"},
          {"bias of the wrong length",
           [] {
             linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 3}), Tensor::zeros({3}));
           },
           "bias has shape [3], expected [4]"},
          {"weight of rank 1",
           [] {
             linear(Tensor::zeros({2, 3}), Tensor::zeros({3}));
           },
           "weight must have 2 dimensions"},
          {"x of rank 0",
           [] {
             linear(Tensor::zeros({}), Tensor::zeros({1, 1}));
           },
           "at least 1 dimension"},
          {"weight dtype differs",
           [] {
             linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 3}, DType::i32));
           },
           "weight is i32"},
          {"integer x",
           [] {
             linear(Tensor::zeros({2, 3}, DType::i64), Tensor::zeros({4, 3}, DType::i64));
           },
           "x must be floating"},
      };
    }});

}  // namespace
}  // namespace nuri::test
