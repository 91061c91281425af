// nuri's own CPU reductions do not depend on the number of OpenMP threads: each adds in a fixed
// order. Each check runs the same computation on 1, 2 and 5 threads and compares the bits.
// (GEMMs are OpenBLAS's, whose blocking, and so its last bits, can change with the thread count.)
#include <gtest/gtest.h>

#include <cstring>
#include <functional>

#include "kernels/autograd.h"
#include "kernels/ops/cross_entropy.h"
#include "kernels/ops/linear.h"
#include "kernels/ops/random.h"
#include "kernels/ops/reduce.h"
#include "tests/unit/thread_count.h"

namespace nuri {
namespace {

// Runs `compute` on 1, 2 and 5 threads and expects bit-identical tensors each time.
void expect_thread_independent(const std::function<std::vector<Tensor>()>& compute) {
  std::vector<Tensor> reference;
  {
    test::ThreadCount one(1);
    reference = compute();
  }
  for (int threads : {2, 5}) {
    test::ThreadCount count(threads);
    const std::vector<Tensor> other = compute();
    ASSERT_EQ(other.size(), reference.size());
    for (size_t i = 0; i < other.size(); ++i) {
      ASSERT_EQ(other[i].nbytes(), reference[i].nbytes());
      EXPECT_EQ(std::memcmp(other[i].raw_data(), reference[i].raw_data(), other[i].nbytes()), 0)
          << "result " << i << " differs on " << threads << " threads";
    }
  }
}

Tensor random_tensor(const Shape& shape, uint64_t seed) {
  Tensor t = Tensor::empty(shape);
  Generator gen{seed, 0};
  normal_(t, gen);
  return t;
}

TEST(Determinism, Sums) {
  const Tensor x = random_tensor({3, 200003}, 1);
  const Tensor y = random_tensor({100, 300}, 2);
  expect_thread_independent([&] {
    return std::vector<Tensor>{sum(x), mean(x, 1), sum(y, 0), sum(x, 0)};
  });
}

TEST(Determinism, LinearBiasGradient) {
  const Tensor x = random_tensor({513, 64}, 3), w = random_tensor({96, 64}, 4);
  const Tensor b = random_tensor({96}, 5), g = random_tensor({513, 96}, 6);
  expect_thread_independent([&] {
    Tensor xc = x.clone(), wc = w.clone(), bc = b.clone();
    for (Tensor* t : {&xc, &wc, &bc}) t->set_requires_grad();
    Tape tape;
    Tensor y;
    {
      TapeScope scope(tape);
      y = linear(xc, wc, bc);
    }
    tape.backward({y}, {g});
    return std::vector<Tensor>{bc.grad()};  // the one linear gradient that nuri itself sums
  });
}

TEST(Determinism, CrossEntropy) {
  const Tensor logits = random_tensor({37, 5003}, 7);
  Tensor targets = Tensor::zeros({37}, DType::i64);
  for (int64_t i = 0; i < 37; ++i) targets.data<int64_t>()[i] = (i * 131) % 5003;
  expect_thread_independent([&] {
    Tensor l = logits.clone();
    l.set_requires_grad();
    Tape tape;
    Tensor loss;
    {
      TapeScope scope(tape);
      loss = cross_entropy(l, targets);
    }
    tape.backward(loss);
    return std::vector<Tensor>{loss, l.grad()};
  });
}

}  // namespace
}  // namespace nuri
