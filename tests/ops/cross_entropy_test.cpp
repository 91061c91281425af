// Suite for cross_entropy.
#include "kernels/ops/cross_entropy.h"

#include <cmath>

#include "tests/ops/harness.h"

namespace nuri::test {
namespace {

Ref cross_entropy_ref(const Ref& logits, const Ref& targets, int64_t ignore_index) {
  const int64_t n = logits.shape[0], v = logits.shape[1];
  double total = 0;
  int64_t count = 0;
  for (int64_t r = 0; r < n; ++r) {
    const int64_t t = static_cast<int64_t>(targets[r]);
    if (t == ignore_index) continue;
    double top = logits[r * v];
    for (int64_t j = 1; j < v; ++j) top = std::max(top, logits[r * v + j]);
    double sum = 0;
    for (int64_t j = 0; j < v; ++j) sum += std::exp(logits[r * v + j] - top);
    total += top + std::log(sum) - logits[r * v + t];
    ++count;
  }
  Ref loss(Shape{});
  loss[0] = count > 0 ? total / count : 0.0;
  return loss;
}

NURI_OP_SUITE(OpSuite{
    "cross_entropy",
    [](CaseRng& rng) {
      std::vector<OpCase> cases;
      for (int k = 0; k < 10; ++k) {
        const bool wide = k == 1 || k == 2;
        const int64_t n = k == 0 ? 1 : (wide ? 2 + k : rng.dim(9));
        // Wide vocabularies cover several blocks of the streaming logsumexp and vector tails.
        const int64_t v = k == 1 ? 5003 : (k == 2 ? 2048 : rng.dim(13));
        const float stddev = k % 3 == 0 ? 8.0f : 1.5f;
        const float offset = k % 4 == 3 ? 300.0f : 0.0f;  // exp overflows without the max
        // -100 by default, sometimes -1 or a token id inside [0, V) (a padding token).
        const int64_t ignore_index = k % 5 == 4 ? (k == 4 ? -1 : v / 2) : -100;
        const DType target_dtype = k % 2 == 0 ? DType::i64 : DType::i32;
        Tensor targets = rng.ints({n}, 0, v - 1, DType::i64);
        int64_t* pt = targets.data<int64_t>();
        for (int64_t r = 0; r < n; ++r) {
          const bool ignored = k == 6 || (!wide && rng.uniform_int(0, 3) == 0);  // 6: all ignored
          if (ignored) pt[r] = ignore_index;
        }
        Tensor logits = rng.normal({n, v}, stddev);
        for (int64_t i = 0; i < logits.numel(); ++i) logits.data<float>()[i] += offset;
        OpCase c;
        c.label = "logits" + shape_str({n, v}) + " targets " +
                  std::string(dtype_name(target_dtype)) + " ignore_index " +
                  std::to_string(ignore_index) + " stddev " + std::to_string(stddev) + " offset " +
                  std::to_string(offset) + (k == 6 ? " all ignored" : "");
        c.inputs = {logits, targets.to(target_dtype)};
        c.grad_inputs = {0};
        c.run = [ignore_index](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{cross_entropy(in[0], in[1], ignore_index)};
        };
        c.reference = [ignore_index](const std::vector<Ref>& in) {
          return std::vector<Ref>{cross_entropy_ref(in[0], in[1], ignore_index)};
        };
        cases.push_back(std::move(c));
      }
      return cases;
    },
    [] {
      const Tensor logits = Tensor::zeros({3, 5});
      return std::vector<Malformed>{
          {"target past the vocabulary",
           [logits] {
             cross_entropy(logits, Tensor::from_data<int64_t>(std::vector<int64_t>{0, 7, 1}, {3}));
           },
           "cross_entropy: target 7 at row 1 is outside [0, 5)"},
          {"negative target that is not ignore_index",
           [logits] {
             cross_entropy(logits, Tensor::from_data<int32_t>(std::vector<int32_t>{0, 1, -3}, {3}),
                           -1);
           },
           "cross_entropy: target -3 at row 2 is outside [0, 5)"},
          {"target equal to V",
           [logits] {
             cross_entropy(logits, Tensor::from_data<int64_t>(std::vector<int64_t>{5, 1, 1}, {3}));
           },
           "target 5 at row 0"},
          {"targets of the wrong length",
           [logits] { cross_entropy(logits, Tensor::zeros({4}, DType::i64)); },
           "cross_entropy: targets has shape [4], expected [3]"},
          {"float targets", [logits] { cross_entropy(logits, Tensor::zeros({3})); },
           "cross_entropy: targets must be i32 or i64, not f32"},
          {"logits of rank 3",
           [] {
             cross_entropy(Tensor::zeros({2, 3, 5}), Tensor::zeros({2}, DType::i64));
           },
           "cross_entropy: logits must be [N, V], not [2, 3, 5]"},
          {"integer logits",
           [] {
             cross_entropy(Tensor::zeros({3, 5}, DType::i32), Tensor::zeros({3}, DType::i64));
           },
           "cross_entropy: logits must be floating, not i32"},
          {"empty vocabulary",
           [] {
             cross_entropy(Tensor::zeros({3, 0}), Tensor::zeros({3}, DType::i64));
           },
           "cross_entropy: logits have an empty vocabulary"},
      };
    }});

}  // namespace
}  // namespace nuri::test
