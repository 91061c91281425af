// Communicators: the collectives that data parallelism needs (all-reduce, reduce-scatter,
// all-gather, broadcast, barrier) behind one interface. MPI implements it for CPU tensors and NCCL
// for GPU tensors (kernels/comm/nccl_communicator.h); a process that no launcher started gets the
// single-rank one. Launching is mpirun's or srun's job: rank and world size come from the
// environment they set.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kernels/tensor.h"

namespace nuri {

// A collective in flight. Its buffers stay alive (and must not be touched) until it completes.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  // Drives progress without blocking; true once complete.
  virtual bool done() = 0;
  // Blocks until complete. Past the communicator's timeout the job is stopped with an error
  // that names this rank and the collective (another rank died or hung).
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // This rank's index among the ranks on its node (picks the GPU).
  virtual int local_rank() const = 0;
  // "mpi", "nccl" or "single".
  virtual std::string backend() const = 0;

  // Sums `buffer` over the ranks, in place: f32, i32 or i64 (NCCL also bf16 and f16).
  virtual std::unique_ptr<PendingCollective> start_all_reduce(Tensor buffer) = 0;
  // `input` holds sum(counts) elements, rank r's part (counts[r] of them) after the parts of the
  // ranks before it; `output` [counts[rank]] receives the sum over ranks of this rank's part.
  // One count per rank; they may differ.
  virtual std::unique_ptr<PendingCollective> start_reduce_scatter(Tensor input, Tensor output,
                                                                  std::vector<int64_t> counts) = 0;
  // Every rank's `input` [counts[rank]] concatenated in rank order into `output` [sum(counts)].
  virtual std::unique_ptr<PendingCollective> start_all_gather(Tensor input, Tensor output,
                                                              std::vector<int64_t> counts) = 0;
  // Sends root's `buffer` to every rank.
  virtual std::unique_ptr<PendingCollective> start_broadcast(Tensor buffer, int root) = 0;
  // A barrier whose wait allows `timeout_s` instead of the communicator's timeout when positive
  // (ranks waiting while rank 0 prepares data).
  virtual std::unique_ptr<PendingCollective> start_barrier(double timeout_s = 0) = 0;

  // Blocking forms of the collectives above (an implementation may use faster blocking calls).
  virtual void all_reduce(const Tensor& buffer) { start_all_reduce(buffer)->wait(); }
  virtual void reduce_scatter(const Tensor& input, const Tensor& output,
                              std::vector<int64_t> counts) {
    start_reduce_scatter(input, output, std::move(counts))->wait();
  }
  virtual void all_gather(const Tensor& input, const Tensor& output, std::vector<int64_t> counts) {
    start_all_gather(input, output, std::move(counts))->wait();
  }
  void broadcast(const Tensor& buffer, int root) { start_broadcast(buffer, root)->wait(); }
  void barrier(double timeout_s = 0) { start_barrier(timeout_s)->wait(); }
  // Sums `values` over the ranks in place, blocking (double precision, for losses and counts).
  virtual void sum_doubles(std::span<double> values) = 0;

  // Stops every rank of the job at once with exit code `code`, after an error on this rank (so
  // that the others do not wait for it until their timeout).
  virtual void abort(int code) = 0;
};

// How the world communicator is made.
struct CommunicatorOptions {
  double timeout_s = 300;  // a collective waiting longer than this stops the job
};

// True when mpirun or srun started this process (OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_RANK is
// set), so that it has peers to join. srun with several tasks but no MPI plugin is an error.
bool launched_by_mpi();

// The communicator of every rank in the job: MPI when launched_by_mpi(), else a single rank.
// A launch by mpirun or srun of a build without MPI is an error that says so.
std::unique_ptr<Communicator> make_world_communicator(const CommunicatorOptions& options = {});

// One rank alone: every collective completes at once and leaves its result in place.
std::unique_ptr<Communicator> make_single_communicator();

// "all_reduce of 12 f32": how timeouts and errors name a collective on `buffer`.
std::string describe_collective(const char* op, const Tensor& buffer);

// Checks a reduce-scatter or all-gather layout: one count for each of `ranks`, `whole` holding
// sum(counts) elements and `part` (rank `rank`'s) counts[rank], both of one dtype; errors name
// `what`.
void check_parts(const Tensor& whole, const Tensor& part, const std::vector<int64_t>& counts,
                 int rank, int ranks, const char* what);

// Counts of `total` elements split over `ranks` as evenly as can be, the first ranks taking one
// more; a helper for reduce-scatter and all-gather layouts.
std::vector<int64_t> even_counts(int64_t total, int ranks);

}  // namespace nuri
