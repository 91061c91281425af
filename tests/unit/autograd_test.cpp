// The autograd tape: recording scopes, accumulation, aliasing and memory release.
#include <gtest/gtest.h>

#include "kernels/allocator.h"
#include "kernels/autograd.h"
#include "kernels/ops/elementwise.h"
#include "kernels/ops/reduce.h"
#include "kernels/ops/shape.h"

namespace nuri {
namespace {

Tensor parameter(std::vector<float> values) {
  Tensor t = Tensor::from_vector(values, {static_cast<int64_t>(values.size())});
  t.set_requires_grad();
  return t;
}

TEST(Autograd, RecordsOnlyInsideATapeScope) {
  Tensor w = parameter({1, 2});
  EXPECT_FALSE(mul(w, w).requires_grad());  // no tape on this thread
  Tape tape;
  {
    TapeScope scope(tape);
    EXPECT_TRUE(mul(w, w).requires_grad());
    {
      NoGradScope no_grad;
      EXPECT_FALSE(mul(w, w).requires_grad());
    }
    EXPECT_TRUE(mul(w, w).requires_grad());
  }
  EXPECT_EQ(tape.size(), 2u);
  EXPECT_EQ(Tape::active(), nullptr);
}

TEST(Autograd, ReusedTensorGetsTheSumOfItsGradients) {
  Tensor w = parameter({3, -1});
  Tape tape;
  Tensor loss;
  {
    TapeScope scope(tape);
    loss = sum(add(mul(w, w), w));  // d/dw = 2w + 1
  }
  tape.backward(loss);
  EXPECT_EQ(w.grad().to_vector(), (std::vector<float>{7, -1}));
  EXPECT_EQ(tape.size(), 0u);  // backward clears the tape
}

TEST(Autograd, LeafGradientsAccumulateAcrossBackwardPasses) {
  Tensor w = parameter({1, 2});
  for (int pass = 0; pass < 3; ++pass) {
    Tape tape;
    Tensor loss;
    {
      TapeScope scope(tape);
      loss = sum(scale(w, 2.0f));
    }
    tape.backward(loss);
  }
  EXPECT_EQ(w.grad().to_vector(), (std::vector<float>{6, 6}));
  w.clear_grad();
  EXPECT_FALSE(w.grad().defined());
}

TEST(Autograd, LeavesNeverShareGradientBuffers) {
  // add hands the same gradient tensor to both inputs; each leaf must still own its buffer.
  Tensor a = parameter({1, 2}), b = parameter({3, 4});
  Tape tape;
  Tensor out;
  {
    TapeScope scope(tape);
    out = add(a, b);
  }
  tape.backward({out}, {Tensor::from_vector({1, 1}, {2})});
  EXPECT_NE(a.grad().raw_data(), b.grad().raw_data());
  a.grad().data<float>()[0] = 100;  // an optimizer may clip in place
  EXPECT_EQ(b.grad().to_vector(), (std::vector<float>{1, 1}));
}

TEST(Autograd, UnusedOutputsOfAMultiOutputOpGetZeroGradients) {
  Tensor x = parameter({1, 2, 3, 4, 5});
  Tape tape;
  Tensor loss;
  {
    TapeScope scope(tape);
    std::vector<Tensor> pieces = split(x, {2, 3}, 0);
    loss = sum(pieces[1]);
  }
  tape.backward(loss);
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{0, 0, 1, 1, 1}));
}

TEST(Autograd, BackwardReleasesSavedActivations) {
  Tensor w = parameter(std::vector<float>(1 << 16, 1.0f));
  const size_t before = cpu_memory().stats().current_bytes;
  {
    Tape tape;
    Tensor loss;
    {
      TapeScope scope(tape);
      Tensor h = w;
      for (int i = 0; i < 8; ++i) h = mul(h, w);  // each mul saves its inputs
      loss = sum(h);
    }
    EXPECT_GE(cpu_memory().stats().current_bytes, before + 7 * (1 << 18));  // 7 saved products
    tape.backward(loss);
  }
  // Only the gradient of w remains.
  EXPECT_EQ(cpu_memory().stats().current_bytes, before + (1 << 18));
}

TEST(Autograd, RejectsBadBackwardCalls) {
  Tensor w = parameter({1, 2});
  Tape tape;
  Tensor out;
  {
    TapeScope scope(tape);
    out = mul(w, w);
    EXPECT_THROW(tape.backward(sum(out)), Error);  // still recording
  }
  EXPECT_THROW(tape.backward(out), Error);                         // two elements
  EXPECT_THROW(tape.backward(Tensor::scalar(1.0f)), Error);        // not produced from a parameter
  EXPECT_THROW(tape.backward({out}, {Tensor::ones({3})}), Error);  // gradient of the wrong shape
  EXPECT_THROW(Tensor::zeros({2}, DType::i32).set_requires_grad(), Error);
}

TEST(Autograd, AThrowingBackwardLeavesAnEmptyTape) {
  Tensor w = parameter({1, 2});
  Tape tape;
  Tensor out;
  {
    TapeScope scope(tape);
    out = mul(w, w);
    autograd::record("broken", {out}, {&out}, [](const auto&, const auto&) -> std::vector<Tensor> {
      fail("broken: backward failed");
    });
  }
  EXPECT_THROW(tape.backward({out}, {Tensor::ones({2})}), Error);
  EXPECT_EQ(tape.size(), 0u);
  EXPECT_FALSE(w.grad().defined());
}

TEST(Autograd, GradientReadyHearsOfEachLeafOnceItsGradientIsComplete) {
  // loss = sum(b * (a * x) + a): a is used first and last, b in between, c never.
  Tensor a = parameter({2, 3}), b = parameter({-1, 4}), c = parameter({5});
  const Tensor x = Tensor::from_vector({1, 2}, {2});
  Tape tape;
  Tensor loss;
  {
    TapeScope scope(tape);
    loss = sum(add(mul(b, mul(a, x)), a));
  }
  std::vector<std::pair<std::string, std::vector<float>>> heard;
  tape.backward(loss, [&](const GradSlot& leaf) {
    const std::string name = &leaf == a.grad_slot().get()   ? "a"
                             : &leaf == b.grad_slot().get() ? "b"
                                                            : "other";
    heard.emplace_back(name, leaf.grad.to_vector());
  });
  // b completes before a, and each is heard once with its final gradient: db = a x, da = b x + 1.
  ASSERT_EQ(heard.size(), 2u);
  EXPECT_EQ(heard[0], (std::pair<std::string, std::vector<float>>{"b", {2, 6}}));
  EXPECT_EQ(heard[1], (std::pair<std::string, std::vector<float>>{"a", {0, 9}}));
  EXPECT_EQ(a.grad().to_vector(), (std::vector<float>{0, 9}));
  EXPECT_FALSE(c.grad().defined());
}

}  // namespace
}  // namespace nuri
