#include "tests/ops/harness.h"
#include "kernels/cpu/blas.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "kernels/autograd.h"

namespace nuri::test {

Ref to_ref(const Tensor& t) {
  Ref out(t.shape());
  Tensor host = t.device().is_cpu() ? t : t.to(Device::cpu());
  switch (host.dtype()) {
    case DType::i32:
      for (int64_t i = 0; i < out.numel(); ++i) out[i] = host.data<int32_t>()[i];
      break;
    case DType::i64:
      for (int64_t i = 0; i < out.numel(); ++i)
        out[i] = static_cast<double>(host.data<int64_t>()[i]);
      break;
    case DType::u8:
      for (int64_t i = 0; i < out.numel(); ++i) out[i] = host.data<uint8_t>()[i];
      break;
    default: {
      const std::vector<float> values = host.to_vector();
      std::copy(values.begin(), values.end(), out.v.begin());
    }
  }
  return out;
}

int64_t CaseRng::dim(int64_t max) {
  if (max <= 1) return 1;
  switch (uniform_int(0, 2)) {
    case 0:
      return 1;
    case 1:
      return max >= 3 ? 2 * uniform_int(1, (max - 1) / 2) + 1 : 1;  // odd, at least 3
    default:
      return uniform_int(1, max);
  }
}

int64_t CaseRng::uniform_int(int64_t low, int64_t high) {
  return std::uniform_int_distribution<int64_t>(low, high)(engine_);
}

double CaseRng::uniform_real(double low, double high) {
  return std::uniform_real_distribution<double>(low, high)(engine_);
}

Tensor CaseRng::normal(const Shape& shape, float stddev) {
  Tensor t = Tensor::empty(shape);
  normal_(t, gen_, 0.0f, stddev);
  return t;
}

Tensor CaseRng::uniform(const Shape& shape, float low, float high) {
  Tensor t = Tensor::empty(shape);
  uniform_(t, gen_, low, high);
  return t;
}

Tensor CaseRng::ints(const Shape& shape, int64_t low, int64_t high, DType dtype) {
  Tensor t = Tensor::empty(shape, DType::i64);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] = uniform_int(low, high);
  return dtype == DType::i64 ? t : t.to(dtype);
}

namespace {

std::vector<OpSuite>& registry() {
  static std::vector<OpSuite> all;
  return all;
}

bool verbose() {
  return std::getenv("NURI_TEST_VERBOSE") != nullptr;
}

uint64_t seed_for(const std::string& op) {
  return std::hash<std::string>{}(op)&0xffffffffu;
}

std::vector<Tensor> clone_inputs(const std::vector<Tensor>& inputs, Device device) {
  std::vector<Tensor> out;
  for (const Tensor& t : inputs) out.push_back(t.to(device));
  return out;
}

// Float64 value of sum_o <outputs_o, seeds_o> over the floating outputs.
double weighted_sum(const std::vector<Ref>& outputs, const std::vector<Ref>& seeds) {
  double total = 0;
  for (size_t o = 0; o < outputs.size() && o < seeds.size(); ++o) {
    if (seeds[o].v.empty()) continue;
    for (int64_t i = 0; i < outputs[o].numel(); ++i) total += outputs[o][i] * seeds[o][i];
  }
  return total;
}

// Outputs and input gradients of one case on one device, with fixed output cotangents.
struct Run {
  std::vector<Ref> outputs;
  std::vector<Ref> grads;  // one per grad input, zeros where no gradient arrived
};

Run run_case(const OpCase& c, Device device, const std::vector<Tensor>& seeds, bool backward) {
  std::vector<Tensor> inputs = clone_inputs(c.inputs, device);
  for (int j : c.grad_inputs) inputs[j].set_requires_grad();
  Tape tape;
  std::vector<Tensor> outputs;
  {
    TapeScope scope(tape);
    outputs = c.run(inputs);
  }
  Run result;
  for (const Tensor& t : outputs) result.outputs.push_back(to_ref(t));
  if (!backward) return result;
  std::vector<Tensor> roots, root_seeds;
  for (size_t o = 0; o < outputs.size(); ++o) {
    if (outputs[o].requires_grad() && seeds[o].defined()) {
      roots.push_back(outputs[o]);
      root_seeds.push_back(seeds[o].to(device));
    }
  }
  if (!roots.empty()) tape.backward(roots, root_seeds);
  for (int j : c.grad_inputs) {
    const Tensor g = inputs[j].grad();
    result.grads.push_back(g.defined() ? to_ref(g) : Ref(inputs[j].shape()));
  }
  return result;
}

// Random cotangents for the floating outputs (undefined for the others).
std::vector<Tensor> make_seeds(const OpCase& c, CaseRng& rng) {
  std::vector<Tensor> inputs = clone_inputs(c.inputs, Device::cpu());
  std::vector<Tensor> outputs = c.run(inputs);
  std::vector<Tensor> seeds;
  for (const Tensor& t : outputs) {
    seeds.push_back(is_floating(t.dtype()) ? rng.normal(t.shape()) : Tensor());
  }
  return seeds;
}

std::vector<Ref> seed_refs(const std::vector<Tensor>& seeds) {
  std::vector<Ref> out;
  for (const Tensor& s : seeds) out.push_back(s.defined() ? to_ref(s) : Ref());
  return out;
}

bool has_extent(const std::vector<OpCase>& cases, bool (*pred)(int64_t)) {
  for (const OpCase& c : cases)
    for (const Tensor& t : c.inputs)
      for (int64_t e : t.shape())
        if (pred(e)) return true;
  return false;
}

void check_forward(const OpSuite& suite) {
  CaseRng rng(seed_for(suite.op));
  const std::vector<OpCase> cases = suite.cases(rng);
  ASSERT_FALSE(cases.empty()) << suite.op << ": no cases";
  EXPECT_TRUE(has_extent(cases, [](int64_t e) { return e == 1; }))
      << suite.op << ": no case has a dimension of size 1";
  EXPECT_TRUE(has_extent(cases, [](int64_t e) { return e > 1 && e % 2 == 1; }))
      << suite.op << ": no case has an odd dimension";
  for (const OpCase& c : cases) {
    const Run ours = run_case(c, Device::cpu(), {}, false);
    std::vector<Ref> inputs;
    for (const Tensor& t : c.inputs) inputs.push_back(to_ref(t));
    const std::vector<Ref> expected = c.reference(inputs);
    ASSERT_EQ(ours.outputs.size(), expected.size()) << suite.op << " " << c.label;
    for (size_t o = 0; o < expected.size(); ++o) {
      ASSERT_EQ(ours.outputs[o].shape, expected[o].shape)
          << suite.op << " " << c.label << " output " << o;
      const double err = nmse(ours.outputs[o].v, expected[o].v);
      if (verbose())
        std::printf("  forward %s %s out%zu nmse=%.3g\n", suite.op.c_str(), c.label.c_str(), o,
                    err);
      EXPECT_LE(err, c.forward_tol) << suite.op << " " << c.label << " output " << o;
    }
  }
}

void check_gradient(const OpSuite& suite) {
  CaseRng rng(seed_for(suite.op) + 1);
  const std::vector<OpCase> cases = suite.cases(rng);
  for (const OpCase& c : cases) {
    const std::vector<Tensor> seeds = make_seeds(c, rng);
    const Run ours = run_case(c, Device::cpu(), seeds, true);
    const std::vector<Ref> seed_values = seed_refs(seeds);
    std::vector<Ref> inputs;
    for (const Tensor& t : c.inputs) inputs.push_back(to_ref(t));
    for (size_t g = 0; g < c.grad_inputs.size(); ++g) {
      const int j = c.grad_inputs[g];
      const int64_t n = inputs[j].numel();
      std::vector<int64_t> picks(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) picks[i] = i;
      constexpr int64_t kMaxPicks = 256;  // finite differences cost two reference runs each
      if (n > kMaxPicks) {
        for (int64_t i = 0; i < kMaxPicks; ++i)
          std::swap(picks[i], picks[rng.uniform_int(i, n - 1)]);
        picks.resize(kMaxPicks);
      }
      std::vector<double> analytic, numeric;
      for (int64_t i : picks) {
        std::vector<Ref> probe = inputs;
        const double x = inputs[j][i];
        const double h = c.fd_step * std::max(1.0, std::abs(x));
        probe[j][i] = x + h;
        const double up = weighted_sum(c.reference(probe), seed_values);
        probe[j][i] = x - h;
        const double down = weighted_sum(c.reference(probe), seed_values);
        numeric.push_back((up - down) / (2 * h));
        analytic.push_back(ours.grads[g][i]);
      }
      const double err = nmse(analytic, numeric);
      if (verbose())
        std::printf("  gradient %s %s input%d nmse=%.3g\n", suite.op.c_str(), c.label.c_str(), j,
                    err);
      EXPECT_LE(err, c.grad_tol) << suite.op << " " << c.label << " gradient of input " << j;
    }
  }
}

void check_malformed(const OpSuite& suite) {
  ASSERT_TRUE(suite.malformed) << suite.op << ": no malformed-input cases";
  const std::vector<Malformed> calls = suite.malformed();
  ASSERT_FALSE(calls.empty()) << suite.op << ": no malformed-input cases";
  for (const Malformed& m : calls) {
    try {
      m.call();
      ADD_FAILURE() << suite.op << ": " << m.what << " was accepted";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(suite.op), std::string::npos)
          << suite.op << ": " << m.what << " gave \"" << message
          << "\", which does not name the op";
      EXPECT_NE(message.find(m.expect), std::string::npos)
          << suite.op << ": " << m.what << " gave \"" << message << "\", expected it to mention \""
          << m.expect << "\"";
    }
  }
}

void check_parity(const OpSuite& suite, Device device) {
  if (!cuda_compiled()) GTEST_SKIP() << "built without CUDA: " << device << " parity not checked";
  if (cuda_device_count() == 0)
    GTEST_SKIP() << "no CUDA device: " << device << " parity not checked";
  CaseRng rng(seed_for(suite.op) + 2);
  const std::vector<OpCase> cases = suite.cases(rng);
  constexpr double kParityTol = 1e-8;  // f32 kernels on both sides
  for (const OpCase& c : cases) {
    const std::vector<Tensor> seeds =
        suite.differentiable ? make_seeds(c, rng) : std::vector<Tensor>{};
    const Run cpu = run_case(c, Device::cpu(), seeds, suite.differentiable);
    const Run other = run_case(c, device, seeds, suite.differentiable);
    for (size_t o = 0; o < cpu.outputs.size(); ++o) {
      EXPECT_LE(nmse(other.outputs[o].v, cpu.outputs[o].v), kParityTol)
          << suite.op << " " << c.label << " output " << o << " on " << device;
    }
    for (size_t g = 0; g < cpu.grads.size(); ++g) {
      EXPECT_LE(nmse(other.grads[g].v, cpu.grads[g].v), kParityTol)
          << suite.op << " " << c.label << " gradient " << g << " on " << device;
    }
  }
}

// A gtest test that runs one check of one suite.
class SuiteTest : public testing::Test {
 public:
  explicit SuiteTest(std::function<void()> body) : body_(std::move(body)) {}
  void TestBody() override { body_(); }

 private:
  std::function<void()> body_;
};

template <class Fn>
void add_test(const char* group, const std::string& name, Fn fn) {
  testing::RegisterTest(group, name.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                        [fn]() -> testing::Test* { return new SuiteTest(fn); });
}

}  // namespace

bool register_suite(OpSuite suite) {
  registry().push_back(std::move(suite));
  return true;
}

const std::vector<OpSuite>& suites() {
  return registry();
}

double nmse(const std::vector<double>& x, const std::vector<double>& ref) {
  if (x.size() != ref.size()) return INFINITY;
  double err = 0, norm = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = x[i] - ref[i];
    if (!std::isfinite(x[i]) || !std::isfinite(ref[i])) return INFINITY;
    err += d * d;
    norm += ref[i] * ref[i];
  }
  if (x.empty()) return 0;
  return norm > 1e-30 ? err / norm : err / static_cast<double>(x.size());
}

}  // namespace nuri::test

int main(int argc, char** argv) {
  nuri::cpu::reexec_for_blas_core(argv);
  testing::InitGoogleTest(&argc, argv);
  using namespace nuri::test;
  for (const OpSuite& suite : suites()) {
    const OpSuite* s = &suite;
    add_test("OpForward", suite.op, [s] { check_forward(*s); });
    if (suite.differentiable) add_test("OpGradient", suite.op, [s] { check_gradient(*s); });
    add_test("OpMalformed", suite.op, [s] { check_malformed(*s); });
    add_test("OpParityCuda", suite.op, [s] { check_parity(*s, nuri::Device::cuda(0)); });
  }
  return RUN_ALL_TESTS();
}
