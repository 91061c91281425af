// Helpers shared by the audio and vision encoder tests: random inputs, comparisons, and the
// gradient checks (every parameter gets a finite, non-zero gradient that matches central finite
// differences).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "kernels/autograd.h"
#include "kernels/ops/elementwise.h"
#include "kernels/ops/random.h"
#include "kernels/ops/reduce.h"
#include "kernels/parameter.h"
#include "tests/common/compare.h"
#include "tests/common/temp_dir.h"

namespace nuri::test {

// Normal(0, 1) numbers of `shape` drawn from `seed`.
inline Tensor random_tensor(const Shape& shape, uint64_t seed) {
  Tensor x = Tensor::empty(shape);
  Generator gen{seed, 0};
  normal_(x, gen);
  return x;
}

// sum(forward() * cotangent) as a double, recorded nowhere.
inline double weighted_sum(const std::function<Tensor()>& forward, const Tensor& cotangent) {
  NoGradScope no_grad;
  const std::vector<float> out = forward().to_vector(), w = cotangent.to_vector();
  double total = 0;
  for (size_t i = 0; i < out.size(); ++i) total += static_cast<double>(out[i]) * w[i];
  return total;
}

// Back-propagates sum(forward() * cotangent) into `parameters`; then each parameter must have a
// finite gradient with some non-zero element, and the `checked` largest-magnitude elements of
// each must match central finite differences of the same sum.
inline void check_gradients(std::vector<NamedParameter>& parameters,
                            const std::function<Tensor()>& forward, const Shape& output_shape,
                            int checked) {
  const Tensor cotangent = random_tensor(output_shape, 99);
  for (NamedParameter& p : parameters) p.tensor.clear_grad();
  Tape tape;
  Tensor loss;
  {
    TapeScope scope(tape);
    const Tensor out = forward();
    ASSERT_EQ(out.shape(), output_shape);
    loss = sum(mul(out, cotangent));
  }
  tape.backward(loss);
  for (NamedParameter& p : parameters) {
    const Tensor grad = p.tensor.grad();
    ASSERT_TRUE(grad.defined()) << p.name << " got no gradient";
    const std::vector<float> g = grad.to_vector();
    EXPECT_TRUE(std::all_of(g.begin(), g.end(), [](float v) { return std::isfinite(v); }))
        << p.name;
    EXPECT_TRUE(std::any_of(g.begin(), g.end(), [](float v) { return v != 0.0f; }))
        << p.name << " has an all-zero gradient";
    std::vector<size_t> order(g.size());
    std::iota(order.begin(), order.end(), 0);
    const int n = std::min<int>(checked, static_cast<int>(g.size()));
    std::partial_sort(order.begin(), order.begin() + n, order.end(),
                      [&](size_t a, size_t b) { return std::abs(g[a]) > std::abs(g[b]); });
    float* w = p.tensor.data<float>();
    for (int i = 0; i < n; ++i) {
      const size_t e = order[i];
      const float saved = w[e], h = 1e-2f;
      w[e] = saved + h;
      const double up = weighted_sum(forward, cotangent);
      w[e] = saved - h;
      const double down = weighted_sum(forward, cotangent);
      w[e] = saved;
      const double numeric = (up - down) / (2.0 * h);
      EXPECT_NEAR(g[e], numeric, 2e-2 * std::abs(numeric) + 5e-4) << p.name << " element " << e;
    }
  }
}

}  // namespace nuri::test
