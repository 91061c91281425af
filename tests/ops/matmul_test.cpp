// Suite for matmul: both transposes, b shared by every batch or batched like a.
#include "kernels/ops/matmul.h"
#include "tests/ops/harness.h"

namespace nuri::test {
namespace {

// out[..., i, j] = sum_p op(a)[i, p] op(b)[p, j], reading the transposes by index.
Ref matmul_ref(const Ref& a, const Ref& b, bool ta, bool tb) {
  const size_t ra = a.shape.size();
  const int64_t m = a.shape[ra - (ta ? 1 : 2)], k = a.shape[ra - (ta ? 2 : 1)];
  const int64_t n = b.shape[b.shape.size() - (tb ? 2 : 1)];
  const bool shared = b.shape.size() == 2;
  Shape shape(a.shape.begin(), a.shape.end() - 2);
  const int64_t batches = shape_numel(shape);
  shape.push_back(m);
  shape.push_back(n);
  Ref out(shape);
  for (int64_t t = 0; t < batches; ++t) {
    const int64_t a0 = t * m * k, b0 = shared ? 0 : t * k * n;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double total = 0;
        for (int64_t p = 0; p < k; ++p) {
          const double av = ta ? a[a0 + p * m + i] : a[a0 + i * k + p];
          const double bv = tb ? b[b0 + j * k + p] : b[b0 + p * n + j];
          total += av * bv;
        }
        out[(t * m + i) * n + j] = total;
      }
    }
  }
  return out;
}

OpCase matmul_case(const Shape& batch, int64_t m, int64_t k, int64_t n, bool ta, bool tb,
                   bool shared, CaseRng& rng) {
  Shape a_shape = batch, b_shape = shared ? Shape{} : batch;
  a_shape.push_back(ta ? k : m);
  a_shape.push_back(ta ? m : k);
  b_shape.push_back(tb ? n : k);
  b_shape.push_back(tb ? k : n);
  OpCase c;
  c.label =
      "a" + shape_str(a_shape) + (ta ? "^T" : "") + " b" + shape_str(b_shape) + (tb ? "^T" : "");
  c.inputs = {rng.normal(a_shape), rng.normal(b_shape)};
  c.grad_inputs = {0, 1};
  c.run = [ta, tb](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{matmul(in[0], in[1], ta, tb)};
  };
  c.reference = [ta, tb](const std::vector<Ref>& in) {
    return std::vector<Ref>{matmul_ref(in[0], in[1], ta, tb)};
  };
  return c;
}

NURI_OP_SUITE(OpSuite{"matmul",
                      [](CaseRng& rng) {
                        std::vector<OpCase> cases;
                        // Every combination of the two transposes and the two batch modes.
                        for (int combo = 0; combo < 8; ++combo) {
                          const bool ta = combo & 1, tb = combo & 2, shared = combo & 4;
                          Shape batch;
                          const int rank = static_cast<int>(rng.uniform_int(0, 2));
                          for (int i = 0; i < rank; ++i) batch.push_back(rng.dim(4));
                          cases.push_back(matmul_case(batch, rng.dim(6), rng.dim(6), rng.dim(6), ta,
                                                      tb, shared, rng));
                        }
                        // Several batches, so the batch loop runs in parallel.
                        cases.push_back(matmul_case({6}, 5, 3, 4, false, true, false, rng));
                        cases.push_back(matmul_case({5}, 3, 4, 2, true, false, true, rng));
                        // A 2-D a against a shared 2-D b: one plain GEMM.
                        cases.push_back(matmul_case({}, 7, 1, 3, false, false, true, rng));
                        // No batches at all: the shared b's gradient is zero.
                        cases.push_back(matmul_case({0}, 2, 3, 2, true, false, true, rng));
                        return cases;
                      },
                      [] {
                        return std::vector<Malformed>{
                            {"inner dimensions differ",
                             [] {
                               matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 5}));
                             },
                             "inner dimensions differ"},
                            {"inner dimensions differ after transpose",
                             [] {
                               matmul(Tensor::zeros({2, 3}), Tensor::zeros({3, 5}), true);
                             },
                             "(transposed)"},
                            {"batch dimensions differ",
                             [] {
                               matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({3, 4, 5}));
                             },
                             "b has batch dimensions [3] but a has [2]"},
                            {"b of a third rank",
                             [] {
                               matmul(Tensor::zeros({2, 2, 3, 4}), Tensor::zeros({2, 4, 5}));
                             },
                             "must have 2 dimensions or as many as a"},
                            {"a of rank 1",
                             [] {
                               matmul(Tensor::zeros({3}), Tensor::zeros({3, 4}));
                             },
                             "a must have at least 2 dimensions"},
                            {"dtype mismatch",
                             [] {
                               matmul(Tensor::zeros({2, 3}), Tensor::zeros({3, 4}, DType::bf16));
                             },
                             "b is bf16"},
                        };
                      }});

}  // namespace
}  // namespace nuri::test
