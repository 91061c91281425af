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
// What the MPI communicator sums, refused here too, so that a mistake shows with one rank.
void check_summable(const Tensor& buffer, const char* what) {
  const DType dtype = buffer.defined() ? buffer.dtype() : DType::u8;
  NURI_CHECK(dtype == DType::f32 || dtype == DType::i32 || dtype == DType::i64, what,
             ": cannot sum ", buffer.defined() ? dtype_name(dtype) : "undefined",
             " tensors (f32, i32 or i64)");
}

std::unique_ptr<PendingCollective> copy_alone(const Tensor& input, Tensor output,
                                              const std::vector<int64_t>& counts,
                                              const char* what) {
  check_parts(input, output, counts, 0, 1, what);
  if (!input.same(output)) output.copy_from(input.view(output.shape()));
  return std::make_unique<Completed>();
}

class SingleCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string backend() const override { return "single"; }
  std::unique_ptr<PendingCollective> start_all_reduce(Tensor buffer) override {
    check_summable(buffer, "all_reduce");
    return std::make_unique<Completed>();
  }
  std::unique_ptr<PendingCollective> start_reduce_scatter(Tensor input, Tensor output,
                                                          std::vector<int64_t> counts) override {
    check_summable(input, "reduce_scatter");
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
  // srun without an MPI plugin starts independent processes that would all train alone.
  const char* tasks = std::getenv("SLURM_STEP_NUM_TASKS");
  NURI_CHECK(tasks == nullptr || std::atoi(tasks) <= 1, "srun started ", tasks,
             " tasks without MPI's environment (no PMIX_RANK or PMI_RANK): run srun --mpi=pmix, "
             "or set MpiDefault=pmix in slurm.conf");
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

std::string describe_collective(const char* op, const Tensor& buffer) {
  return cat(op, " of ", buffer.numel(), " ", dtype_name(buffer.dtype()));
}

void check_parts(const Tensor& whole, const Tensor& part, const std::vector<int64_t>& counts,
                 int rank, int ranks, const char* what) {
  NURI_CHECK(static_cast<int>(counts.size()) == ranks, what, ": ", counts.size(), " counts for ",
             ranks, " rank(s)");
  int64_t total = 0;
  for (int64_t count : counts) {
    NURI_CHECK(count >= 0, what, ": a count of ", count, " elements is negative");
    total += count;
  }
  NURI_CHECK(whole.dtype() == part.dtype(), what, ": dtypes ", dtype_name(whole.dtype()), " and ",
             dtype_name(part.dtype()), " differ");
  NURI_CHECK(whole.numel() == total && part.numel() == counts[rank], what, ": buffers of ",
             whole.numel(), " and ", part.numel(), " elements do not fit counts summing to ", total,
             " with ", counts[rank], " for rank ", rank);
}

std::vector<int64_t> even_counts(int64_t total, int ranks) {
  NURI_CHECK(ranks > 0 && total >= 0, "even_counts: ", total, " elements over ", ranks, " ranks");
  std::vector<int64_t> counts(ranks, total / ranks);
  for (int64_t r = 0; r < total % ranks; ++r) ++counts[r];
  return counts;
}

}  // namespace nuri
