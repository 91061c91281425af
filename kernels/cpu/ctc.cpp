// CPU CTC loss (f32 logits): the forward-backward recursions over the label sequence with blanks
// interleaved, in log space and f64 over the f32 log-probabilities, one item per thread.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/ops/checks.h"
#include "kernels/ops/ctc.h"

namespace nuri::cpu {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// log(exp(a) + exp(b)), exact at -inf.
double log_add(double a, double b) {
  if (a == kNegInf) return b;
  if (b == kNegInf) return a;
  const double top = std::max(a, b);
  return top + std::log1p(std::exp(-std::abs(a - b)));
}

// One item's frames and labels, with the blank-interleaved sequence l' (blank, l1, blank, ...,
// lS, blank) and each frame's log-probabilities read as logits - logsumexp.
struct Lattice {
  const float* logits;  // [frames, classes]
  int64_t frames, classes;
  const float* lse;  // [frames]
  std::vector<int64_t> extended;

  Lattice(const float* x, int64_t t, int64_t c, const float* frame_lse,
          const std::vector<int64_t>& labels, int64_t blank)
      : logits(x), frames(t), classes(c), lse(frame_lse), extended(2 * labels.size() + 1, blank) {
    for (size_t k = 0; k < labels.size(); ++k) extended[2 * k + 1] = labels[k];
  }
  int64_t states() const { return static_cast<int64_t>(extended.size()); }
  double log_prob(int64_t t, int64_t s) const {
    return static_cast<double>(logits[t * classes + extended[s]]) - lse[t];
  }
  // Whether state s may be entered from s - 2 (skipping a blank between different labels).
  bool can_skip(int64_t s) const {
    return s >= 2 && extended[s] != extended[0] && extended[s] != extended[s - 2];
  }

  // alpha[t * L + s]: log-probability of the prefixes of alignments that are in state s at t.
  std::vector<double> forward() const {
    const int64_t l = states();
    std::vector<double> alpha(static_cast<size_t>(frames * l), kNegInf);
    alpha[0] = log_prob(0, 0);
    if (l > 1) alpha[1] = log_prob(0, 1);
    for (int64_t t = 1; t < frames; ++t) {
      const double* prev = alpha.data() + (t - 1) * l;
      double* cur = alpha.data() + t * l;
      for (int64_t s = 0; s < l; ++s) {
        double sum = prev[s];
        if (s >= 1) sum = log_add(sum, prev[s - 1]);
        if (can_skip(s)) sum = log_add(sum, prev[s - 2]);
        cur[s] = sum == kNegInf ? kNegInf : sum + log_prob(t, s);
      }
    }
    return alpha;
  }

  // beta[t * L + s]: log-probability of the suffixes from state s at t (its emission included).
  std::vector<double> backward() const {
    const int64_t l = states();
    std::vector<double> beta(static_cast<size_t>(frames * l), kNegInf);
    double* last = beta.data() + (frames - 1) * l;
    last[l - 1] = log_prob(frames - 1, l - 1);
    if (l > 1) last[l - 2] = log_prob(frames - 1, l - 2);
    for (int64_t t = frames - 2; t >= 0; --t) {
      const double* next = beta.data() + (t + 1) * l;
      double* cur = beta.data() + t * l;
      for (int64_t s = 0; s < l; ++s) {
        double sum = next[s];
        if (s + 1 < l) sum = log_add(sum, next[s + 1]);
        if (s + 2 < l && can_skip(s + 2)) sum = log_add(sum, next[s + 2]);
        cur[s] = sum == kNegInf ? kNegInf : sum + log_prob(t, s);
      }
    }
    return beta;
  }

  // log p(labels): the alignments that end in the last label or the final blank.
  double log_likelihood(const std::vector<double>& alpha) const {
    const int64_t l = states();
    const double* last = alpha.data() + (frames - 1) * l;
    return l > 1 ? log_add(last[l - 1], last[l - 2]) : last[0];
  }
};

}  // namespace

void ctc_forward(const Tensor& logits, const std::vector<std::vector<int64_t>>& labels,
                 const std::vector<int64_t>& input_lengths, int64_t blank, Tensor& lse,
                 std::vector<double>& loss) {
  checks::cpu_f32("ctc_loss", logits, "logits");
  const int64_t b = logits.size(0), t = logits.size(1), c = logits.size(2);
  const float* px = logits.data<float>();
  float* pl = lse.data<float>();
  loss.assign(static_cast<size_t>(b), 0.0);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < b; ++i) {
    const int64_t frames = input_lengths[i];
    for (int64_t f = 0; f < frames; ++f) {
      const float* row = px + (i * t + f) * c;
      const double top = *std::max_element(row, row + c);
      double sum = 0;
      for (int64_t j = 0; j < c; ++j) sum += std::exp(row[j] - top);
      pl[i * t + f] = static_cast<float>(top + std::log(sum));
    }
    if (frames == 0) {  // only the empty label sequence has an (empty) alignment
      loss[i] = labels[i].empty() ? 0.0 : std::numeric_limits<double>::infinity();
      continue;
    }
    const Lattice lattice(px + i * t * c, frames, c, pl + i * t, labels[i], blank);
    loss[i] = -lattice.log_likelihood(lattice.forward());
  }
}

void ctc_backward(const Tensor& logits, const std::vector<std::vector<int64_t>>& labels,
                  const std::vector<int64_t>& input_lengths, int64_t blank, const Tensor& lse,
                  const std::vector<double>& loss, const std::vector<double>& scale,
                  Tensor& grad_logits) {
  checks::cpu_f32("ctc_loss backward", logits, "logits");
  const int64_t b = logits.size(0), t = logits.size(1), c = logits.size(2);
  const float* px = logits.data<float>();
  const float* pl = lse.data<float>();
  float* pd = grad_logits.data<float>();
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < b; ++i) {
    float* grad = pd + i * t * c;
    std::fill(grad, grad + t * c, 0.0f);
    const int64_t frames = input_lengths[i];
    if (scale[i] == 0 || frames == 0) continue;
    const Lattice lattice(px + i * t * c, frames, c, pl + i * t, labels[i], blank);
    const std::vector<double> alpha = lattice.forward(), beta = lattice.backward();
    const int64_t l = lattice.states();
    const double log_p = -loss[i];
    std::vector<double> gradient(static_cast<size_t>(c));
    for (int64_t f = 0; f < frames; ++f) {
      const float* row = px + (i * t + f) * c;
      float* out = grad + f * c;
      for (int64_t j = 0; j < c; ++j) gradient[j] = std::exp(row[j] - pl[i * t + f]);
      // Minus the posterior of each class: alignments through a state at f, the state's
      // emission counted once.
      for (int64_t s = 0; s < l; ++s) {
        const double through = alpha[f * l + s] + beta[f * l + s];
        if (through == kNegInf) continue;
        gradient[lattice.extended[s]] -= std::exp(through - lattice.log_prob(f, s) - log_p);
      }
      for (int64_t j = 0; j < c; ++j) out[j] = static_cast<float>(scale[i] * gradient[j]);
    }
  }
}

}  // namespace nuri::cpu
