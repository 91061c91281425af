#include "kernels/comm/communicator.h"

#include <cstdlib>

#include "kernels/comm/nccl_communicator.h"
#include "kernels/error.h"

namespace nuri {

#if NURI_WITH_MPI
std::unique_ptr<Communicator> make_mpi_communicator(const CommunicatorOptions& options);
#endif

namespace {

class Completed final : public PendingCollective {
 public:
  bool done() override { return true; }
  void wait() override {}
};

// One rank's reduce-scatter or all-gather: its input is the whole result.
std::unique_ptr<PendingCollective> copy_alone(const Tensor& input, Tensor output,
                                              const std::vector<int64_t>& counts,
                                              const char* what) {
  NURI_CHECK(counts.size() == 1 && counts[0] == output.numel(), what, ": ", counts.size(),
             " counts for 1 rank, or a count that is not the output's ", output.numel(),
             " elements");
  NURI_CHECK(input.dtype() == output.dtype() && input.numel() == output.numel(), what,
             ": one rank's input ", shape_str(input.shape()), " ", dtype_name(input.dtype()),
             " does not match the output ", shape_str(output.shape()), " ",
             dtype_name(output.dtype()));
  if (!input.same(output)) output.copy_from(input.view(output.shape()));
  return std::make_unique<Completed>();
}

class SingleCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string backend() const override { return "single"; }
  std::unique_ptr<PendingCollective> start_all_reduce(Tensor) override {
    return std::make_unique<Completed>();
  }
  std::unique_ptr<PendingCollective> start_reduce_scatter(Tensor input, Tensor output,
                                                          std::vector<int64_t> counts) override {
    return copy_alone(input, output, counts, "reduce_scatter");
  }
  std::unique_ptr<PendingCollective> start_all_gather(Tensor input, Tensor output,
                                                      std::vector<int64_t> counts) override {
    return copy_alone(input, output, counts, "all_gather");
  }
  std::unique_ptr<PendingCollective> start_broadcast(Tensor, int root) override {
    NURI_CHECK(root == 0, "broadcast: root ", root, " is not a rank of a 1-rank job");
    return std::make_unique<Completed>();
  }
  std::unique_ptr<PendingCollective> start_barrier(double) override {
    return std::make_unique<Completed>();
  }
  void sum_doubles(std::span<double>) override {}
  void abort(int code) override { std::_Exit(code); }
};

}  // namespace

bool launched_by_mpi() {
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"}) {
    if (std::getenv(variable) != nullptr) return true;
  }
  return false;
}

std::unique_ptr<Communicator> make_single_communicator() {
  return std::make_unique<SingleCommunicator>();
}

std::unique_ptr<Communicator> make_world_communicator(const CommunicatorOptions& options) {
  if (!launched_by_mpi()) return make_single_communicator();
#if NURI_WITH_MPI
  return make_mpi_communicator(options);
#else
  (void)options;
  fail(
      "this process was started by mpirun or srun, but nuri was built without MPI "
      "(-DNURI_MPI=OFF); rebuild with -DNURI_MPI=ON, or run it without the launcher");
#endif
}

#if !NURI_WITH_NCCL
bool nccl_compiled() {
  return false;
}

std::unique_ptr<Communicator> make_nccl_communicator(Communicator&, const CommunicatorOptions&) {
  fail("this build has no NCCL communicator (it needs -DNURI_CUDA=ON and NCCL; -DNURI_NCCL=ON)");
}
#endif

std::vector<int64_t> even_counts(int64_t total, int ranks) {
  NURI_CHECK(ranks > 0 && total >= 0, "even_counts: ", total, " elements over ", ranks, " ranks");
  std::vector<int64_t> counts(ranks, total / ranks);
  for (int64_t r = 0; r < total % ranks; ++r) ++counts[r];
  return counts;
}

}  // namespace nuri
