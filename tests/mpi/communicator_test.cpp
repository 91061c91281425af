// The world communicator under mpirun (or alone): every collective against the sums and layouts
// computed here from what each rank contributes.
#include "kernels/comm/communicator.h"

#include <gtest/gtest.h>

#include <numeric>

#include "kernels/cpu/blas.h"
#include "tests/mpi/world.h"

namespace nuri {
namespace {

Communicator* world = nullptr;

class WorldEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    communicator_ = make_world_communicator({.timeout_s = 60});
    world = communicator_.get();
  }
  void TearDown() override {
    world = nullptr;
    communicator_.reset();
  }

 private:
  std::unique_ptr<Communicator> communicator_;
};

// Rank r's value for element i: distinct per rank and element.
float value(int rank, int64_t i) {
  return static_cast<float>(rank + 1) * 0.5f + static_cast<float>(i);
}

TEST(Communicator, KnowsItsPlaceInTheJob) {
  const char* launched = std::getenv("OMPI_COMM_WORLD_SIZE");
  EXPECT_EQ(world->size(), launched ? std::atoi(launched) : 1);
  EXPECT_EQ(world->backend(), launched ? "mpi" : "single");
  EXPECT_GE(world->rank(), 0);
  EXPECT_LT(world->rank(), world->size());
  EXPECT_GE(world->local_rank(), 0);
  EXPECT_LE(world->local_rank(), world->rank());  // all ranks of a test share one node
}

TEST(Communicator, AllReduceSumsEveryDtype) {
  const int n = world->size(), r = world->rank();
  Tensor f = Tensor::empty({5});
  for (int64_t i = 0; i < 5; ++i) f.data<float>()[i] = value(r, i);
  Tensor counts = Tensor::full({3}, r + 1, DType::i64);
  Tensor small = Tensor::full({2}, 2 * r, DType::i32);
  auto first = world->start_all_reduce(f);
  auto second = world->start_all_reduce(counts);
  world->all_reduce(small);
  first->wait();
  second->wait();
  for (int64_t i = 0; i < 5; ++i) {
    float expected = 0;
    for (int q = 0; q < n; ++q) expected += value(q, i);
    EXPECT_FLOAT_EQ(f.data<float>()[i], expected) << i;
  }
  EXPECT_EQ(counts.data<int64_t>()[2], int64_t{n} * (n + 1) / 2);
  EXPECT_EQ(small.data<int32_t>()[0], n * (n - 1));
  std::vector<double> scalars = {1.5, double(r)};
  world->sum_doubles(scalars);
  EXPECT_DOUBLE_EQ(scalars[0], 1.5 * n);
  EXPECT_DOUBLE_EQ(scalars[1], n * (n - 1) / 2.0);
}

TEST(Communicator, ReduceScatterWithUnequalParts) {
  const int n = world->size(), r = world->rank();
  std::vector<int64_t> counts(n);
  for (int q = 0; q < n; ++q) counts[q] = 3 + q;  // rank q owns 3 + q elements
  const int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t{0});
  Tensor input = Tensor::empty({total});
  for (int64_t i = 0; i < total; ++i) input.data<float>()[i] = value(r, i);
  Tensor output = Tensor::zeros({counts[r]});
  world->reduce_scatter(input, output, counts);
  const int64_t begin = std::accumulate(counts.begin(), counts.begin() + r, int64_t{0});
  for (int64_t i = 0; i < counts[r]; ++i) {
    float expected = 0;
    for (int q = 0; q < n; ++q) expected += value(q, begin + i);
    EXPECT_FLOAT_EQ(output.data<float>()[i], expected) << i;
  }
}

TEST(Communicator, AllGatherConcatenatesInRankOrder) {
  const int n = world->size(), r = world->rank();
  const std::vector<int64_t> counts = even_counts(2 * n + 1, n);
  Tensor input = Tensor::full({counts[r]}, r, DType::i32);
  Tensor output = Tensor::zeros({2 * n + 1}, DType::i32);
  world->all_gather(input, output, counts);
  int64_t i = 0;
  for (int q = 0; q < n; ++q) {
    for (int64_t k = 0; k < counts[q]; ++k, ++i) EXPECT_EQ(output.data<int32_t>()[i], q) << i;
  }
}

TEST(Communicator, BroadcastSendsTheRootsBuffer) {
  const int n = world->size(), r = world->rank();
  const int root = n - 1;
  Tensor buffer = Tensor::full({4}, r == root ? 7.25 : -1.0, DType::bf16);
  world->broadcast(buffer, root);
  for (float v : buffer.to_vector()) EXPECT_EQ(v, 7.25f);
  world->barrier();
}

TEST(Communicator, MalformedCallsAreErrorsNamingTheCollective) {
  const int n = world->size();
  Tensor half = Tensor::zeros({2}, DType::f16);
  try {
    world->all_reduce(half);
    if (n > 1) ADD_FAILURE() << "summing f16 over MPI must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("all_reduce"), std::string::npos) << e.what();
  }
  EXPECT_THROW(
      world->reduce_scatter(Tensor::zeros({4}), Tensor::zeros({1}), std::vector<int64_t>(n + 1, 1)),
      Error);
  EXPECT_THROW(world->broadcast(Tensor::zeros({1}), n), Error);
  // A negative count is refused on every rank, not only on the rank that it belongs to (whose
  // part could not hold it): counts {-2, 1, ..., 4} sum to the whole's n elements.
  std::vector<int64_t> counts(n, 1);
  counts[0] = -2;
  if (n > 1) counts[n - 1] = 4;
  const int r = world->rank();
  try {
    world->reduce_scatter(Tensor::zeros({n}), Tensor::zeros({std::max<int64_t>(counts[r], 0)}),
                          counts);
    ADD_FAILURE() << "a negative count must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("reduce_scatter: a count of -2 elements is negative"),
              std::string::npos)
        << e.what();
  }
}

TEST(EvenCounts, SplitsAsEvenlyAsCanBe) {
  EXPECT_EQ(even_counts(10, 3), (std::vector<int64_t>{4, 3, 3}));
  EXPECT_EQ(even_counts(2, 4), (std::vector<int64_t>{1, 1, 0, 0}));
  EXPECT_THROW(even_counts(3, 0), Error);
}

}  // namespace

Communicator& test_world() {
  return *world;
}

}  // namespace nuri

int main(int argc, char** argv) {
  nuri::cpu::reexec_for_blas_core(argv);
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new nuri::WorldEnvironment);
  return RUN_ALL_TESTS();
}
