// Suite for softmax.
#include "kernels/ops/softmax.h"

#include <cmath>

#include "tests/ops/harness.h"

namespace nuri::test {
namespace {

Ref softmax_ref(const Ref& x) {
  const int64_t d = x.shape.back();
  Ref y(x.shape);
  for (int64_t r = 0; r < x.numel() / d; ++r) {
    double top = x[r * d];
    for (int64_t j = 1; j < d; ++j) top = std::max(top, x[r * d + j]);
    double total = 0;
    for (int64_t j = 0; j < d; ++j) total += std::exp(x[r * d + j] - top);
    for (int64_t j = 0; j < d; ++j) y[r * d + j] = std::exp(x[r * d + j] - top) / total;
  }
  return y;
}

NURI_OP_SUITE(OpSuite{
    "softmax",
    [](CaseRng& rng) {
      std::vector<OpCase> cases;
      for (int k = 0; k < 10; ++k) {
        Shape s;
        const int lead = static_cast<int>(rng.uniform_int(0, 3));
        for (int i = 0; i < lead; ++i) s.push_back(rng.dim(5));
        s.push_back(k == 7 ? 3001 : rng.dim(11));  // one long row: the vector loops' tails
        // Spread: peaked rows (stddev 3), ordinary ones and near-uniform ones.
        const float stddev = k % 3 == 0 ? 3.0f : (k % 3 == 1 ? 1.0f : 0.01f);
        // An offset of 1000 overflows exp unless the row max is subtracted.
        const float offset = k % 4 == 1 ? 1000.0f : 0.0f;
        OpCase c;
        c.label = "x" + shape_str(s) + " stddev " + std::to_string(stddev) + " offset " +
                  std::to_string(offset);
        Tensor x = rng.normal(s, stddev);
        for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] += offset;
        c.inputs = {x};
        c.grad_inputs = {0};
        if (k == 9) {
          // Nearly one-hot rows (stddev 30): the forward must stay finite and exact, but the
          // gradient is O(second-largest probability), below the f32 rounding of y near 1, so
          // its relative error is not a meaningful check here.
          c.inputs = {rng.normal(s, 30.0f)};
          c.label = "x" + shape_str(s) + " stddev 30, forward only";
          c.grad_inputs = {};
        }
        c.run = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{softmax(in[0])}; };
        c.reference = [](const std::vector<Ref>& in) {
          return std::vector<Ref>{softmax_ref(in[0])};
        };
        cases.push_back(std::move(c));
      }
      return cases;
    },
    [] {
      return std::vector<Malformed>{
          {"integer x",
           [] {
             softmax(Tensor::zeros({2, 3}, DType::i32));
           },
           "softmax: x must be floating, not i32"},
          {"scalar x", [] { softmax(Tensor::scalar(2)); },
           "softmax: x must have at least 1 dimension, not []"},
          {"undefined x", [] { softmax(Tensor()); }, "softmax: x is undefined"},
      };
    }});

}  // namespace
}  // namespace nuri::test
