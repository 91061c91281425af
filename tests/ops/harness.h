// The op-test harness: every op registers a suite of cases once, and the harness checks each
// case on every backend this build has (in the spirit of ggml's test-backend-ops):
//   forward   against a float64 reference implementation,
//   gradient  against central finite differences of that reference, in float64,
//   malformed calls that must throw a nuri::Error naming the op,
//   parity    of every other backend (cuda) against the CPU, forward and backward.
// Errors are normalised MSE: sum((x - ref)^2) / sum(ref^2).
//
// Tolerances (normalised MSE) for f32 kernels:
//   forward 1e-10  (f32 rounding accumulates to ~1e-13 here; 1e-10 leaves room for long sums)
//   gradient 1e-8  (f32 backward against an f64 finite difference with step 1e-5 or smaller)
//   parity  1e-8 for f32; a backend adding reduced-precision dtypes states its own below.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/ops/random.h"
#include "kernels/tensor.h"

namespace nuri::test {

// Float64 copy of a tensor's elements, with its shape: what the references compute on.
struct Ref {
  Shape shape;
  std::vector<double> v;

  Ref() = default;
  explicit Ref(Shape s) : shape(std::move(s)), v(static_cast<size_t>(shape_numel(shape)), 0.0) {}
  int64_t numel() const { return static_cast<int64_t>(v.size()); }
  double& operator[](int64_t i) { return v[static_cast<size_t>(i)]; }
  double operator[](int64_t i) const { return v[static_cast<size_t>(i)]; }
};

// Reads any tensor (any dtype or device) as float64.
Ref to_ref(const Tensor& t);

// Runs the op under test on inputs already placed on the backend's device.
using RunFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& inputs)>;
// Computes the same outputs in float64 from the same inputs.
using RefFn = std::function<std::vector<Ref>(const std::vector<Ref>& inputs)>;

// One concrete call of an op.
struct OpCase {
  std::string label;             // shown in failures, e.g. "x[3, 1, 7]"
  std::vector<Tensor> inputs;    // CPU tensors; floating ones may be differentiated
  std::vector<int> grad_inputs;  // indices of the inputs whose gradients are checked
  RunFn run;
  RefFn reference;
  double forward_tol = 1e-10;
  double grad_tol = 1e-8;
  double fd_step = 1e-5;  // finite-difference step, relative to max(1, |x|)
};

// A call that must be rejected: `call` must throw nuri::Error whose message holds `expect`.
struct Malformed {
  std::string what;
  std::function<void()> call;
  std::string expect;
};

// Random shapes and values for building cases; seeded from the op's name so runs repeat.
class CaseRng {
 public:
  explicit CaseRng(uint64_t seed) : engine_(seed), gen_{seed, 0} {}
  // An extent in [1, max]: 1, an odd number or any number, each about a third of the time.
  int64_t dim(int64_t max);
  int64_t uniform_int(int64_t low, int64_t high);  // in [low, high]
  double uniform_real(double low, double high);
  // f32 CPU tensors.
  Tensor normal(const Shape& shape, float stddev = 1.0f);
  Tensor uniform(const Shape& shape, float low, float high);
  // i64 CPU tensor of integers in [low, high].
  Tensor ints(const Shape& shape, int64_t low, int64_t high, DType dtype = DType::i64);

 private:
  std::mt19937_64 engine_;
  Generator gen_;
};

// Everything the harness checks for one op.
struct OpSuite {
  std::string op;
  std::function<std::vector<OpCase>(CaseRng&)> cases;
  std::function<std::vector<Malformed>()> malformed;
  bool differentiable = true;  // false for ops without a backward (optimizer steps)
};

// Adds a suite; called from static initialisers through NURI_OP_SUITE.
bool register_suite(OpSuite suite);
// Every registered suite.
const std::vector<OpSuite>& suites();

// Normalised MSE of x against ref (absolute MSE when ref is all zeros).
double nmse(const std::vector<double>& x, const std::vector<double>& ref);

}  // namespace nuri::test

#define NURI_OP_SUITE_CONCAT_(a, b) a##b
#define NURI_OP_SUITE_CONCAT(a, b) NURI_OP_SUITE_CONCAT_(a, b)
// Registers an OpSuite built by the braced expression that follows.
#define NURI_OP_SUITE(...)                                                            \
  static const bool NURI_OP_SUITE_CONCAT(nuri_op_suite_, __LINE__) [[maybe_unused]] = \
      ::nuri::test::register_suite(__VA_ARGS__)
