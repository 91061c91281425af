// The NCCL communicator over one rank (the single-rank bootstrap) on the first GPU: every
// collective runs through NCCL for real and leaves one rank's data as it was; misuse is an error
// naming the collective. Suites named Cuda* carry the cuda label and skip without a GPU.
#include <gtest/gtest.h>

#include "kernels/comm/nccl_communicator.h"
#include "kernels/device.h"
#include "kernels/error.h"

namespace nuri {
namespace {

class CudaNccl : public testing::Test {
 protected:
  void SetUp() override {
    if (!nccl_compiled()) GTEST_SKIP() << "built without NCCL (-DNURI_NCCL=OFF)";
    if (cuda_device_count() == 0) GTEST_SKIP() << "no GPU on this machine";
    nccl_ = make_nccl_communicator(*bootstrap_, {.timeout_s = 60});
  }
  std::unique_ptr<Communicator> bootstrap_ = make_single_communicator();
  std::unique_ptr<Communicator> nccl_;
};

Tensor on_gpu(const std::vector<float>& values, DType dtype = DType::f32) {
  return Tensor::from_vector(values, {static_cast<int64_t>(values.size())})
      .to(dtype)
      .to(Device::cuda(0));
}

TEST_F(CudaNccl, OneRankKeepsItsDataThroughEveryCollective) {
  EXPECT_EQ(nccl_->backend(), "nccl");
  EXPECT_EQ(nccl_->size(), 1);
  const std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f};
  for (DType dtype : {DType::f32, DType::bf16, DType::i64}) {
    Tensor buffer = on_gpu(values, dtype);
    nccl_->all_reduce(buffer);
    const std::vector<float> expected =
        dtype == DType::i64 ? std::vector<float>{1, -2, 3, 0, 7} : values;
    EXPECT_EQ(buffer.to_vector(), expected) << dtype_name(dtype);
  }
  Tensor input = on_gpu(values), output = on_gpu({0, 0, 0, 0, 0});
  auto pending = nccl_->start_reduce_scatter(input, output, {5});
  pending->wait();
  EXPECT_TRUE(pending->done());
  EXPECT_EQ(output.to_vector(), values);
  Tensor gathered = on_gpu({0, 0, 0, 0, 0});
  nccl_->all_gather(output, gathered, {5});
  EXPECT_EQ(gathered.to_vector(), values);
  nccl_->broadcast(gathered, 0);
  EXPECT_EQ(gathered.to_vector(), values);
  nccl_->barrier();
  std::vector<double> scalars = {2.5, -1.0};
  nccl_->sum_doubles(scalars);
  EXPECT_EQ(scalars, (std::vector<double>{2.5, -1.0}));
}

// Asking whether a collective is done while it still runs (as the data-parallel backward does
// between buckets) leaves no error behind for the next kernel launch's check.
TEST_F(CudaNccl, PollingARunningCollectiveLeavesNoErrorBehind) {
  Tensor big = Tensor::full({int64_t{1} << 26}, 1.0, DType::f32, Device::cuda(0));
  auto pending = nccl_->start_all_reduce(big);
  while (!pending->done()) {
    const Tensor small = Tensor::full({4}, 2.0, DType::f32, Device::cuda(0));  // a launch between
    EXPECT_EQ(small.to_vector()[0], 2.0f);
  }
  EXPECT_EQ(big.to_vector()[(int64_t{1} << 26) - 1], 1.0f);
}

TEST_F(CudaNccl, MisuseIsAnErrorNamingTheCollective) {
  const auto expect_error = [](auto&& call, const std::string& words) {
    try {
      call();
      ADD_FAILURE() << "no error; expected one saying " << words;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  expect_error([&] { nccl_->all_reduce(Tensor::zeros({4})); },
               "all_reduce: the NCCL communicator takes tensors on cuda:0, got cpu");
  expect_error(
      [&] {
        nccl_->all_gather(on_gpu({1, 2}), on_gpu({0, 0, 0}), {2});
      },
      "all_gather: buffers of 3 and 2");
  expect_error([&] { nccl_->broadcast(on_gpu({1}), 1); }, "broadcast: root 1 is not a rank of 1");
}

}  // namespace
}  // namespace nuri
