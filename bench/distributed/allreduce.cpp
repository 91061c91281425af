// nuri-bench-allreduce, run under mpirun: the bus bandwidth of nuri's MPI communicator against
// MPI's own MPI_Allreduce on the same buffers, each pair timed in alternation. Two forms of
// nuri's: the blocking all_reduce (MPI_Allreduce under the job's timeout watchdog) and
// start_all_reduce + wait, the non-blocking form that training overlaps with backward. Bus
// bandwidth is NCCL's measure: bytes / time x 2 (ranks - 1) / ranks, what each link carries.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "bench/timing.h"
#include "kernels/comm/communicator.h"

namespace nuri {
namespace {

int run(int argc, char** argv) {
  CLI::App app{"All-reduce bus bandwidth: nuri's communicator against MPI_Allreduce"};
  int64_t max_mib = 64;
  app.add_option("--max-mib", max_mib, "the largest buffer, in MiB");
  CLI11_PARSE(app, argc, argv);
  const std::unique_ptr<Communicator> world = make_world_communicator();
  const int ranks = world->size();
  if (world->rank() == 0) {
    std::printf("all-reduce (sum, f32) over %d ranks, %s; bus bandwidth in GB/s\n", ranks,
                world->backend().c_str());
    std::printf("  %10s %7s %8s %9s %9s %12s %9s\n", "bytes", "calls", "MPI", "blocking", "/MPI",
                "non-blocking", "/MPI");
  }
  for (int64_t bytes = 4 << 10; bytes <= (max_mib << 20); bytes *= 4) {
    const int64_t n = bytes / 4;
    Tensor buffer = Tensor::full({n}, 1.0);
    // The same number of calls on every rank (a collective count decided by a clock could
    // differ between ranks): about 64 MiB of traffic per timed round.
    const int calls = static_cast<int>(std::max<int64_t>(1, (int64_t{64} << 20) / bytes));
    const auto with_mpi = [&] {
      for (int i = 0; i < calls; ++i)
        MPI_Allreduce(MPI_IN_PLACE, buffer.raw_data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM,
                      MPI_COMM_WORLD);
    };
    const auto blocking = [&] {
      for (int i = 0; i < calls; ++i) world->all_reduce(buffer);
    };
    const auto non_blocking = [&] {
      for (int i = 0; i < calls; ++i) world->start_all_reduce(buffer)->wait();
    };
    world->barrier();
    const bench::Paired first = bench::paired_seconds_per_call(with_mpi, blocking, 7);
    const bench::Paired second = bench::paired_seconds_per_call(with_mpi, non_blocking, 7);
    const double gigabytes = 2.0 * (ranks - 1) / ranks * static_cast<double>(bytes) * calls / 1e9;
    if (world->rank() == 0) {
      std::printf("  %10lld %7d %8.2f %9.2f %9.2f %12.2f %9.2f\n", static_cast<long long>(bytes),
                  calls, gigabytes / first.a_seconds, gigabytes / first.b_seconds,
                  1.0 / first.b_over_a, gigabytes / second.b_seconds, 1.0 / second.b_over_a);
    }
  }
  return 0;
}

}  // namespace
}  // namespace nuri

int main(int argc, char** argv) {
  return nuri::run(argc, argv);
}
