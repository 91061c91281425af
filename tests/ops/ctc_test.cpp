// Suite for ctc_loss. The reference is the definition itself where that is small enough: every
// frame-level path of the item's frames is enumerated, collapsed (repeats merged, blanks
// dropped) and its probability added when it spells the labels. Longer items use the
// probability-space forward recursion in f64.
#include "kernels/ops/ctc.h"

#include <gtest/gtest.h>

#include <cmath>
#include <span>

#include "tests/ops/harness.h"

namespace nuri::test {
namespace {

// Softmax of one frame's logits, in f64.
std::vector<double> frame_probs(const Ref& logits, int64_t item, int64_t frame) {
  const int64_t t = logits.shape[1], c = logits.shape[2];
  std::vector<double> p(static_cast<size_t>(c));
  double top = -INFINITY, sum = 0;
  for (int64_t j = 0; j < c; ++j) top = std::max(top, logits[(item * t + frame) * c + j]);
  for (int64_t j = 0; j < c; ++j) sum += p[j] = std::exp(logits[(item * t + frame) * c + j] - top);
  for (double& x : p) x /= sum;
  return p;
}

// p(labels) by enumerating the c^frames paths.
double enumerated_probability(const std::vector<std::vector<double>>& probs,
                              const std::vector<int64_t>& labels, int64_t blank) {
  const int64_t frames = static_cast<int64_t>(probs.size()),
                c = frames > 0 ? static_cast<int64_t>(probs[0].size()) : 1;
  int64_t paths = 1;
  for (int64_t f = 0; f < frames; ++f) paths *= c;
  double total = 0;
  for (int64_t code = 0; code < paths; ++code) {
    std::vector<int64_t> spelled;
    double p = 1;
    int64_t rest = code, previous = -1;
    for (int64_t f = 0; f < frames; ++f) {
      const int64_t k = rest % c;
      rest /= c;
      p *= probs[f][k];
      if (k != blank && k != previous) spelled.push_back(k);
      previous = k;
    }
    if (spelled == labels) total += p;
  }
  return total;
}

// p(labels) by the forward recursion over blank-interleaved states, in probability space.
double recursive_probability(const std::vector<std::vector<double>>& probs,
                             const std::vector<int64_t>& labels, int64_t blank) {
  std::vector<int64_t> ext(2 * labels.size() + 1, blank);
  for (size_t k = 0; k < labels.size(); ++k) ext[2 * k + 1] = labels[k];
  const size_t l = ext.size();
  std::vector<double> alpha(l, 0.0);
  alpha[0] = probs[0][blank];
  if (l > 1) alpha[1] = probs[0][ext[1]];
  for (size_t f = 1; f < probs.size(); ++f) {
    std::vector<double> next(l, 0.0);
    for (size_t s = 0; s < l; ++s) {
      double sum = alpha[s] + (s >= 1 ? alpha[s - 1] : 0.0);
      if (s >= 2 && ext[s] != blank && ext[s] != ext[s - 2]) sum += alpha[s - 2];
      next[s] = sum * probs[f][ext[s]];
    }
    alpha = next;
  }
  return l > 1 ? alpha[l - 1] + alpha[l - 2] : alpha[0];
}

Ref ctc_ref(const Ref& logits, const Ref& targets, const Ref& input_lengths,
            const Ref& target_lengths, int64_t blank) {
  const int64_t b = logits.shape[0], c = logits.shape[2], s = targets.shape[1];
  double total = 0;
  for (int64_t i = 0; i < b; ++i) {
    const int64_t frames = static_cast<int64_t>(input_lengths[i]);
    std::vector<int64_t> labels;
    for (int64_t j = 0; j < static_cast<int64_t>(target_lengths[i]); ++j)
      labels.push_back(static_cast<int64_t>(targets[i * s + j]));
    std::vector<std::vector<double>> probs;
    for (int64_t f = 0; f < frames; ++f) probs.push_back(frame_probs(logits, i, f));
    const bool small = std::pow(static_cast<double>(c), static_cast<double>(frames)) <= 5e4;
    const double p = frames == 0 ? (labels.empty() ? 1.0 : 0.0)
                     : small     ? enumerated_probability(probs, labels, blank)
                                 : recursive_probability(probs, labels, blank);
    if (p > 0) total += -std::log(p) / std::max<int64_t>(1, labels.size());
  }
  Ref loss(Shape{});
  loss[0] = total / b;
  return loss;
}

NURI_OP_SUITE(OpSuite{
    "ctc_loss",
    [](CaseRng& rng) {
      std::vector<OpCase> cases;
      for (int k = 0; k < 12; ++k) {
        const bool long_case = k >= 9;  // the recursion reference
        const int64_t b = k == 0 ? 1 : rng.uniform_int(1, 3);
        const int64_t t = long_case ? rng.uniform_int(20, 40) : rng.uniform_int(1, 7);
        const int64_t c = long_case ? rng.uniform_int(5, 12) : rng.uniform_int(2, 4);
        const int64_t s = long_case ? rng.uniform_int(1, 12) : rng.uniform_int(1, 4);
        const int64_t blank = k % 3 == 1 ? c - 1 : 0;
        std::vector<int64_t> targets(static_cast<size_t>(b * s)), frames, lengths;
        for (int64_t i = 0; i < b; ++i) {
          frames.push_back(k == 4 && i == 0 ? 0 : rng.uniform_int(std::min<int64_t>(t, 1), t));
          lengths.push_back(k == 5 ? 0 : rng.uniform_int(0, s));
          for (int64_t j = 0; j < s; ++j) {
            int64_t label = rng.uniform_int(0, c - 2);  // any class but the blank
            if (label >= blank) ++label;
            // Case 6 repeats labels, which need a blank between them.
            targets[i * s + j] = k == 6 && j > 0 ? targets[i * s + j - 1] : label;
          }
        }
        Tensor logits = rng.normal({b, t, c}, k % 4 == 3 ? 4.0f : 1.0f);
        OpCase ca;
        ca.label = "logits" + shape_str({b, t, c}) + " labels up to " + std::to_string(s) +
                   " blank " + std::to_string(blank) + (k == 4 ? " an item of no frames" : "") +
                   (k == 5 ? " empty labels" : "") + (k == 6 ? " repeated labels" : "");
        ca.inputs = {logits, Tensor::from_data<int64_t>(targets, {b, s}),
                     Tensor::from_data<int64_t>(frames, {b}).to(DType::i32),
                     Tensor::from_data<int64_t>(lengths, {b})};
        ca.grad_inputs = {0};
        ca.run = [blank](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{ctc_loss(in[0], in[1], in[2], in[3], blank)};
        };
        ca.reference = [blank](const std::vector<Ref>& in) {
          return std::vector<Ref>{ctc_ref(in[0], in[1], in[2], in[3], blank)};
        };
        cases.push_back(std::move(ca));
      }
      {  // Impossible items (more labels than frames) add 0 and get no gradient.
        OpCase ca;
        ca.label = "an item with more labels than frames";
        ca.inputs = {
            rng.normal({2, 4, 3}),
            Tensor::from_data<int64_t>(std::vector<int64_t>{1, 2, 1, 2, 1, 1, 2, 2}, {2, 4}),
            Tensor::from_data<int64_t>(std::vector<int64_t>{3, 4}, {2}),
            Tensor::from_data<int64_t>(std::vector<int64_t>{4, 2}, {2})};
        ca.grad_inputs = {0};
        ca.run = [](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{ctc_loss(in[0], in[1], in[2], in[3])};
        };
        ca.reference = [](const std::vector<Ref>& in) {
          return std::vector<Ref>{ctc_ref(in[0], in[1], in[2], in[3], 0)};
        };
        cases.push_back(std::move(ca));
      }
      return cases;
    },
    [] {
      const Tensor logits = Tensor::zeros({2, 5, 4});
      const Tensor targets = Tensor::from_data<int64_t>(std::vector<int64_t>{1, 2, 3, 1}, {2, 2});
      const Tensor frames = Tensor::from_data<int64_t>(std::vector<int64_t>{5, 4}, {2});
      const Tensor lengths = Tensor::from_data<int64_t>(std::vector<int64_t>{2, 1}, {2});
      return std::vector<Malformed>{
          {"logits of rank 2",
           [] {
             ctc_loss(Tensor::zeros({5, 4}), Tensor::zeros({1, 1}, DType::i64),
                      Tensor::zeros({1}, DType::i64), Tensor::zeros({1}, DType::i64));
           },
           "ctc_loss: logits must be [B, T, C], not [5, 4]"},
          {"blank outside the classes", [=] { ctc_loss(logits, targets, frames, lengths, 4); },
           "ctc_loss: blank 4 is outside the 4 classes"},
          {"a label equal to the blank",
           [=] {
             ctc_loss(logits, Tensor::from_data<int64_t>(std::vector<int64_t>{1, 0, 3, 1}, {2, 2}),
                      frames, lengths);
           },
           "ctc_loss: label 0 at item 0, position 1 is outside [0, 4) or is the blank 0"},
          {"a label past the classes",
           [=] {
             ctc_loss(logits, Tensor::from_data<int64_t>(std::vector<int64_t>{1, 2, 9, 1}, {2, 2}),
                      frames, lengths);
           },
           "ctc_loss: label 9 at item 1, position 0"},
          {"an input length past the frames",
           [=] {
             ctc_loss(logits, targets, Tensor::from_data<int64_t>(std::vector<int64_t>{5, 6}, {2}),
                      lengths);
           },
           "ctc_loss: input length 6 of item 1 is outside [0, 5]"},
          {"a target length past the targets",
           [=] {
             ctc_loss(logits, targets, frames,
                      Tensor::from_data<int64_t>(std::vector<int64_t>{3, 1}, {2}));
           },
           "ctc_loss: target length 3 of item 0 is outside [0, 2]"},
          {"lengths of the wrong size",
           [=] { ctc_loss(logits, targets, Tensor::zeros({3}, DType::i64), lengths); },
           "ctc_loss: input_lengths has shape [3], expected [2]"},
          {"float targets",
           [=] {
             ctc_loss(logits, Tensor::zeros({2, 2}), frames, lengths);
           },
           "ctc_loss: targets must be i32 or i64, not f32"},
          {"targets of another batch",
           [=] {
             ctc_loss(logits, Tensor::zeros({3, 2}, DType::i64), frames, lengths);
           },
           "ctc_loss: targets must be [2, S], not [3, 2]"},
      };
    }});

// ctc_frames_needed is the feasibility rule ctc_loss applies: with that many frames an item has a
// finite loss, with one fewer it has none (and adds 0).
TEST(CtcFramesNeeded, IsTheFewestFramesWithAnAlignment) {
  EXPECT_EQ(ctc_frames_needed(std::span<const int32_t>()), 0);
  for (const std::vector<int64_t>& labels :
       std::vector<std::vector<int64_t>>{{1}, {1, 2, 3}, {1, 1}, {2, 2, 2, 1, 1}, {1, 2, 1}}) {
    const int64_t needed = ctc_frames_needed(std::span<const int64_t>(labels));
    const int64_t s = static_cast<int64_t>(labels.size());
    const Tensor targets = Tensor::from_data<int64_t>(labels, {1, s});
    const Tensor lengths = Tensor::from_data<int64_t>(std::vector<int64_t>{s}, {1});
    for (const int64_t frames : {needed - 1, needed}) {
      const float loss =
          ctc_loss(Tensor::zeros({1, needed, 4}), targets,
                   Tensor::from_data<int64_t>(std::vector<int64_t>{frames}, {1}), lengths)
              .item();
      if (frames < needed) {
        EXPECT_EQ(loss, 0.0f) << shape_str(labels);
      } else {
        EXPECT_GT(loss, 0.0f) << shape_str(labels);
        EXPECT_TRUE(std::isfinite(loss)) << shape_str(labels);
      }
    }
  }
}

}  // namespace
}  // namespace nuri::test
