// Suite for embedding: i32 and i64 ids of several ranks, with repeated ids whose gradients add.
#include <gtest/gtest.h>

#include <omp.h>

#include <cstring>

#include "kernels/autograd.h"
#include "kernels/ops/embedding.h"
#include "tests/ops/harness.h"

namespace nuri::test {
namespace {

// out[..., d] = table[ids[...], d].
Ref embedding_ref(const Ref& ids, const Ref& table) {
  const int64_t d = table.shape[1];
  Shape shape = ids.shape;
  shape.push_back(d);
  Ref out(shape);
  for (int64_t i = 0; i < ids.numel(); ++i) {
    const auto row = static_cast<int64_t>(ids[i]);
    for (int64_t j = 0; j < d; ++j) out[i * d + j] = table[row * d + j];
  }
  return out;
}

NURI_OP_SUITE(OpSuite{
    "embedding",
    [](CaseRng& rng) {
      std::vector<OpCase> cases;
      for (int k = 0; k < 8; ++k) {
        const DType id_dtype = k % 2 == 0 ? DType::i32 : DType::i64;
        Shape id_shape;
        const int rank = static_cast<int>(rng.uniform_int(0, 3));
        for (int i = 0; i < rank; ++i) id_shape.push_back(rng.dim(5));
        // Few rows and many ids: rows repeat, and some rows are never read.
        const int64_t vocab = rng.dim(6), d = rng.dim(7);
        OpCase c;
        c.label = "ids" + shape_str(id_shape) + " " + std::string(dtype_name(id_dtype)) +
                  " table[" + std::to_string(vocab) + ", " + std::to_string(d) + "]";
        c.inputs = {rng.ints(id_shape, 0, vocab - 1, id_dtype), rng.normal({vocab, d})};
        c.grad_inputs = {1};
        c.run = [](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{embedding(in[0], in[1])};
        };
        c.reference = [](const std::vector<Ref>& in) {
          return std::vector<Ref>{embedding_ref(in[0], in[1])};
        };
        cases.push_back(std::move(c));
      }
      // One id repeated many times over a wide row: a long accumulation in one table row.
      OpCase c;
      c.label = "ids[37] all 2, table[3, 300]";
      c.inputs = {rng.ints({37}, 2, 2, DType::i64), rng.normal({3, 300})};
      c.grad_inputs = {1};
      c.run = [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{embedding(in[0], in[1])};
      };
      c.reference = [](const std::vector<Ref>& in) {
        return std::vector<Ref>{embedding_ref(in[0], in[1])};
      };
      cases.push_back(std::move(c));
      return cases;
    },
    [] {
      auto out_of_range = [] {
        const std::vector<int32_t> ids = {0, 1, 4, 2, 7, 1};
        embedding(Tensor::from_data<int32_t>(ids, {2, 3}), Tensor::zeros({5, 4}));
      };
      return std::vector<Malformed>{
          {"id past the table names the id", out_of_range, "id 7"},
          {"id past the table names its position", out_of_range, "position [1, 1]"},
          {"id past the table names the table size", out_of_range, "table of 5 rows"},
          {"negative id",
           [] {
             const std::vector<int64_t> ids = {3, -1};
             embedding(Tensor::from_data<int64_t>(ids, {2}), Tensor::zeros({5, 4}));
           },
           "id -1 at position [1]"},
          {"float ids",
           [] {
             embedding(Tensor::zeros({3}), Tensor::zeros({5, 4}));
           },
           "ids must be i32 or i64"},
          {"table of rank 1", [] { embedding(Tensor::zeros({3}, DType::i64), Tensor::zeros({5})); },
           "table must have 2 dimensions"},
          {"integer table",
           [] {
             embedding(Tensor::zeros({3}, DType::i64), Tensor::zeros({5, 4}, DType::i32));
           },
           "table must be floating"},
      };
    }});

// The table gradient is the same bit for bit on every run, whatever the thread count: many
// positions share each row, so a racy or order-dependent scatter would show.
TEST(EmbeddingBackward, DeterministicWithRepeatedIds) {
  CaseRng rng(7);
  const Tensor ids = rng.ints({4000}, 0, 9, DType::i64);
  Tensor table = rng.normal({10, 600});
  const Tensor seed = rng.normal({4000, 600});
  auto table_grad = [&] {
    table.clear_grad();
    table.set_requires_grad();
    Tape tape;
    Tensor out;
    {
      TapeScope scope(tape);
      out = embedding(ids, table);
    }
    tape.backward({out}, {seed});
    return table.grad().to_vector();
  };
  const std::vector<float> first = table_grad();
  const int threads = omp_get_max_threads();
  for (int run = 0; run < 3; ++run) {
    omp_set_num_threads(run == 0 ? 1 : threads + run);
    const std::vector<float> again = table_grad();
    omp_set_num_threads(threads);
    ASSERT_EQ(std::memcmp(first.data(), again.data(), first.size() * sizeof(float)), 0)
        << "run " << run;
  }
}

}  // namespace
}  // namespace nuri::test
