// The MPI communicator: non-blocking MPI collectives on CPU tensors, each waited for under the
// job's timeout, with MPI errors turned into nuri::Error.
#define OMPI_SKIP_MPICXX 1  // the C API only: the deprecated C++ bindings need another library
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <chrono>
#include <climits>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "kernels/comm/communicator.h"
#include "kernels/error.h"
#include "kernels/log.h"

namespace nuri {
namespace {

using Clock = std::chrono::steady_clock;

void check_mpi(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  fail("MPI: ", call, " failed: ", std::string(text, length));
}

int mpi_count(int64_t count, const char* what) {
  NURI_CHECK(count >= 0 && count <= INT_MAX, what, ": ", count,
             " elements exceed what one MPI call can carry (", INT_MAX, ")");
  return static_cast<int>(count);
}

// The MPI type that sums like `dtype`; other dtypes travel as bytes and cannot be reduced.
MPI_Datatype reduce_type(DType dtype, const char* what) {
  switch (dtype) {
    case DType::f32:
      return MPI_FLOAT;
    case DType::i32:
      return MPI_INT32_T;
    case DType::i64:
      return MPI_INT64_T;
    default:
      fail(what, ": cannot sum ", dtype_name(dtype), " tensors (f32, i32 or i64)");
  }
}

void check_cpu(const Tensor& tensor, const char* what) {
  NURI_CHECK(tensor.defined() && tensor.device().is_cpu(), what,
             ": the MPI communicator takes defined CPU tensors, got ",
             tensor.defined() ? cat(tensor.device()) : std::string("an undefined tensor"));
}

// Ends the process when a guarded call outlives its deadline: a collective that another rank
// never joins would otherwise block for ever. mpirun (or srun --kill-on-bad-exit) then stops the
// other ranks, as it does for any rank that exits with an error; without it each rank's own
// watchdog ends it in turn. Arming and disarming take an
// uncontended lock and wake no thread; the watchdog looks every 50 ms.
class Watchdog {
 public:
  explicit Watchdog(double timeout_s) : timeout_s_(timeout_s), thread_([this] { watch(); }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    stop_.notify_all();
    thread_.join();
  }

  // Runs `call`, allowing it `timeout_s` (the communicator's timeout when 0). `what` must live
  // until the call returns.
  template <class Call>
  void guard(const std::string& what, double timeout_s, Call&& call) {
    const double allowed = timeout_s > 0 ? timeout_s : timeout_s_;
    {
      std::lock_guard lock(mutex_);
      what_ = &what;
      allowed_s_ = allowed;
      deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(allowed));
    }
    struct Disarm {
      Watchdog& dog;
      ~Disarm() {
        std::lock_guard lock(dog.mutex_);
        dog.what_ = nullptr;
      }
    } disarm{*this};
    call();
  }

 private:
  void watch() {
    std::unique_lock lock(mutex_);
    while (!stop_.wait_for(lock, std::chrono::milliseconds(50), [this] { return stopping_; })) {
      if (what_ != nullptr && Clock::now() > deadline_) {
        log_line(LogLevel::error,
                 cat(*what_, " did not complete within ", allowed_s_,
                     " s (parallel.timeout_s): another rank has died or hung; stopping the job"));
        std::_Exit(1);
      }
    }
  }

  double timeout_s_;
  std::mutex mutex_;
  std::condition_variable stop_;
  bool stopping_ = false;
  const std::string* what_ = nullptr;  // the guarded call, null when none
  double allowed_s_ = 0;
  Clock::time_point deadline_;
  std::thread thread_;  // last: it starts watching once the members above exist
};

class MpiCommunicator;

class MpiPending final : public PendingCollective {
 public:
  MpiPending(const MpiCommunicator& owner, std::string what, std::vector<Tensor> keep,
             double timeout_s = 0)
      : owner_(owner), what_(std::move(what)), keep_(std::move(keep)), timeout_s_(timeout_s) {}
  // A collective dropped before it completed (an error unwinding) is waited for first, under the
  // timeout, so that MPI never writes into freed buffers.
  ~MpiPending() override {
    if (complete_ || request_ == MPI_REQUEST_NULL) return;
    try {
      wait();
    } catch (...) {  // an MPI error: the request is dead, and so are its writes
    }
  }
  MPI_Request* request() { return &request_; }
  bool done() override {
    if (complete_) return true;
    int flag = 0;
    check_mpi(MPI_Test(&request_, &flag, MPI_STATUS_IGNORE), "MPI_Test");
    complete_ = flag != 0;
    if (complete_) keep_.clear();
    return complete_;
  }
  void wait() override;

 private:
  const MpiCommunicator& owner_;
  std::string what_;
  std::vector<Tensor> keep_;  // the buffers, alive until the collective completes
  double timeout_s_;          // 0: the communicator's
  std::vector<int> counts_, displacements_;
  MPI_Request request_ = MPI_REQUEST_NULL;
  bool complete_ = false;
  friend class MpiCommunicator;
};

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(const CommunicatorOptions& options) : watchdog_(options.timeout_s) {
    NURI_CHECK(options.timeout_s > 0, "communicator: timeout_s must be positive, got ",
               options.timeout_s);
    int initialized = 0;
    MPI_Initialized(&initialized);
    NURI_CHECK(!initialized, "MPI is already initialised: one MPI communicator per process");
    int provided = 0;
    check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    NURI_CHECK(provided >= MPI_THREAD_FUNNELED,
               "MPI: this MPI library does not support threads (MPI_THREAD_FUNNELED), which "
               "nuri's OpenMP kernels need around its calls");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
    MPI_Comm node;
    check_mpi(
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
        "MPI_Comm_split_type");
    check_mpi(MPI_Comm_rank(node, &local_rank_), "MPI_Comm_rank");
    MPI_Comm_free(&node);
    if (size_ > 1) set_log_prefix(cat("[rank ", rank_, "] "));  // every rank's lines say whose
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  std::string backend() const override { return "mpi"; }
  Watchdog& watchdog() const { return watchdog_; }

  std::unique_ptr<PendingCollective> start_all_reduce(Tensor buffer) override {
    check_cpu(buffer, "all_reduce");
    const MPI_Datatype type = reduce_type(buffer.dtype(), "all_reduce");
    auto pending = make("all_reduce", buffer, {buffer});
    check_mpi(
        MPI_Iallreduce(MPI_IN_PLACE, buffer.raw_data(), mpi_count(buffer.numel(), "all_reduce"),
                       type, MPI_SUM, MPI_COMM_WORLD, pending->request()),
        "MPI_Iallreduce");
    return pending;
  }

  // MPI's blocking all-reduce picks faster algorithms than its non-blocking one.
  void all_reduce(const Tensor& buffer) override {
    check_cpu(buffer, "all_reduce");
    const MPI_Datatype type = reduce_type(buffer.dtype(), "all_reduce");
    const std::string what = describe_collective("all_reduce", buffer);
    watchdog_.guard(what, 0, [&] {
      check_mpi(
          MPI_Allreduce(MPI_IN_PLACE, buffer.raw_data(), mpi_count(buffer.numel(), "all_reduce"),
                        type, MPI_SUM, MPI_COMM_WORLD),
          "MPI_Allreduce");
    });
  }

  std::unique_ptr<PendingCollective> start_reduce_scatter(Tensor input, Tensor output,
                                                          std::vector<int64_t> counts) override {
    check_cpu(input, "reduce_scatter");
    check_cpu(output, "reduce_scatter");
    const MPI_Datatype type = reduce_type(input.dtype(), "reduce_scatter");
    check_parts(input, output, counts, rank(), size(), "reduce_scatter");
    auto pending = make("reduce_scatter", input, {input, output});
    for (int64_t count : counts) pending->counts_.push_back(mpi_count(count, "reduce_scatter"));
    check_mpi(MPI_Ireduce_scatter(input.raw_data(), output.raw_data(), pending->counts_.data(),
                                  type, MPI_SUM, MPI_COMM_WORLD, pending->request()),
              "MPI_Ireduce_scatter");
    return pending;
  }

  std::unique_ptr<PendingCollective> start_all_gather(Tensor input, Tensor output,
                                                      std::vector<int64_t> counts) override {
    check_cpu(input, "all_gather");
    check_cpu(output, "all_gather");
    check_parts(output, input, counts, rank(), size(), "all_gather");
    auto pending = make("all_gather", output, {input, output});
    const int64_t element = static_cast<int64_t>(dtype_size(input.dtype()));
    int64_t offset = 0;
    for (int64_t count : counts) {
      pending->counts_.push_back(mpi_count(count * element, "all_gather"));
      pending->displacements_.push_back(mpi_count(offset * element, "all_gather"));
      offset += count;
    }
    check_mpi(
        MPI_Iallgatherv(input.raw_data(), pending->counts_[rank_], MPI_BYTE, output.raw_data(),
                        pending->counts_.data(), pending->displacements_.data(), MPI_BYTE,
                        MPI_COMM_WORLD, pending->request()),
        "MPI_Iallgatherv");
    return pending;
  }

  std::unique_ptr<PendingCollective> start_broadcast(Tensor buffer, int root) override {
    check_cpu(buffer, "broadcast");
    NURI_CHECK(root >= 0 && root < size_, "broadcast: root ", root, " is not a rank of ", size_);
    auto pending = make("broadcast", buffer, {buffer});
    check_mpi(MPI_Ibcast(buffer.raw_data(), mpi_count(buffer.nbytes(), "broadcast"), MPI_BYTE, root,
                         MPI_COMM_WORLD, pending->request()),
              "MPI_Ibcast");
    return pending;
  }

  std::unique_ptr<PendingCollective> start_barrier(double timeout_s) override {
    auto pending = std::make_unique<MpiPending>(*this, "barrier", std::vector<Tensor>{}, timeout_s);
    check_mpi(MPI_Ibarrier(MPI_COMM_WORLD, pending->request()), "MPI_Ibarrier");
    return pending;
  }

  void sum_doubles(std::span<double> values) override {
    const std::string what = cat("all_reduce of ", values.size(), " scalars");
    watchdog_.guard(what, 0, [&] {
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, values.data(),
                              mpi_count(static_cast<int64_t>(values.size()), "sum_doubles"),
                              MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
                "MPI_Allreduce");
    });
  }

  void abort(int code) override { MPI_Abort(MPI_COMM_WORLD, code); }

 private:
  std::unique_ptr<MpiPending> make(const char* op, const Tensor& buffer, std::vector<Tensor> keep) {
    return std::make_unique<MpiPending>(*this, describe_collective(op, buffer), std::move(keep));
  }

  mutable Watchdog watchdog_;
  int rank_ = 0, size_ = 1, local_rank_ = 0;
};

void MpiPending::wait() {
  if (complete_) return;
  owner_.watchdog().guard(what_, timeout_s_,
                          [&] { check_mpi(MPI_Wait(&request_, MPI_STATUS_IGNORE), "MPI_Wait"); });
  complete_ = true;
  keep_.clear();
}

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(const CommunicatorOptions& options) {
  return std::make_unique<MpiCommunicator>(options);
}

}  // namespace nuri
