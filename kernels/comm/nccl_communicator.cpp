// NCCL on GPU tensors: one non-blocking stream per communicator, so that collectives run beside
// the kernels on the default stream (bucket all-reduces overlap the rest of backward). Each
// collective first waits for an event recorded on the default stream (the kernels that wrote its
// buffers), and is followed by an event that its PendingCollective polls, together with NCCL's
// asynchronous error state, under the timeout.
#include "kernels/comm/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstring>
#include <exception>
#include <thread>

#include "kernels/cuda/check.h"
#include "kernels/cuda/runtime.h"
#include "kernels/error.h"
#include "kernels/log.h"

namespace nuri {
namespace {

using Clock = std::chrono::steady_clock;

void check_nccl(ncclResult_t result, const char* call) {
  if (result == ncclSuccess || result == ncclInProgress) return;
  fail("NCCL: ", call, " failed: ", ncclGetErrorString(result));
}

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return ncclFloat32;
    case DType::bf16:
      return ncclBfloat16;
    case DType::f16:
      return ncclFloat16;
    case DType::i32:
      return ncclInt32;
    case DType::i64:
      return ncclInt64;
    case DType::u8:
      return ncclUint8;
  }
  fail("NCCL: no NCCL type for ", dtype_name(dtype));
}

// Opens an NCCL group and closes it on every path, an error inside it included.
class NcclGroup {
 public:
  NcclGroup() { check_nccl(ncclGroupStart(), "ncclGroupStart"); }
  ~NcclGroup() noexcept(false) {
    const ncclResult_t result = ncclGroupEnd();
    if (std::uncaught_exceptions() == 0) check_nccl(result, "ncclGroupEnd");
  }
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;
};

class NcclCommunicator;

class NcclPending final : public PendingCollective {
 public:
  NcclPending(NcclCommunicator& owner, std::string what, std::vector<Tensor> keep,
              double timeout_s);
  ~NcclPending() override;  // waits for an unfinished collective first, under the timeout
  bool done() override;
  void wait() override;

 private:
  NcclCommunicator& owner_;
  std::string what_;
  std::vector<Tensor> keep_;  // the buffers, alive until the collective completes
  double timeout_s_;
  cudaEvent_t event_ = nullptr;
  bool complete_ = false;
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& bootstrap, const CommunicatorOptions& options)
      : bootstrap_(bootstrap), timeout_s_(options.timeout_s) {
    NURI_CHECK(options.timeout_s > 0, "NCCL communicator: timeout_s must be positive, got ",
               options.timeout_s);
    const int devices = cuda::device_count();
    NURI_CHECK(devices > 0, "NCCL communicator: this machine has no GPU");
    device_ = bootstrap.local_rank() % devices;
    NURI_CUDA_CHECK(cudaSetDevice(device_));
    // Non-blocking: the default stream's kernels do not wait for collectives, nor collectives
    // for them; order_after_compute() orders each collective after the kernels queued before it.
    NURI_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    NURI_CUDA_CHECK(cudaEventCreateWithFlags(&compute_done_, cudaEventDisableTiming));
    try {
      connect();
    } catch (...) {
      release(/*abort=*/true);
      throw;
    }
    if (bootstrap.size() > 1) set_log_prefix(cat("[rank ", bootstrap.rank(), "] "));
  }

  ~NcclCommunicator() override { release(/*abort=*/false); }

  int rank() const override { return bootstrap_.rank(); }
  int size() const override { return bootstrap_.size(); }
  int local_rank() const override { return bootstrap_.local_rank(); }
  std::string backend() const override { return "nccl"; }
  cudaStream_t stream() const { return stream_; }

  std::unique_ptr<PendingCollective> start_all_reduce(Tensor buffer) override {
    check_gpu(buffer, "all_reduce");
    NURI_CHECK(buffer.dtype() != DType::u8, "all_reduce: cannot sum u8 tensors");
    order_after_compute();
    check_nccl(ncclAllReduce(buffer.raw_data(), buffer.raw_data(), buffer.numel(),
                             nccl_type(buffer.dtype()), ncclSum, comm_, stream_),
               "ncclAllReduce");
    return finish(describe_collective("all_reduce", buffer), {buffer});
  }

  // Unequal parts: one ncclReduce per rank, rooted at that rank, in one group.
  std::unique_ptr<PendingCollective> start_reduce_scatter(Tensor input, Tensor output,
                                                          std::vector<int64_t> counts) override {
    check_gpu(input, "reduce_scatter");
    check_gpu(output, "reduce_scatter");
    NURI_CHECK(input.dtype() != DType::u8, "reduce_scatter: cannot sum u8 tensors");
    check_parts(input, output, counts, rank(), size(), "reduce_scatter");
    const size_t element = dtype_size(input.dtype());
    const auto* in = static_cast<const char*>(input.raw_data());
    order_after_compute();
    {
      NcclGroup group;
      int64_t offset = 0;
      for (int r = 0; r < size(); ++r) {
        check_nccl(ncclReduce(in + offset * element, output.raw_data(), counts[r],
                              nccl_type(input.dtype()), ncclSum, r, comm_, stream_),
                   "ncclReduce");
        offset += counts[r];
      }
    }
    return finish(describe_collective("reduce_scatter", input), {input, output});
  }

  // Unequal parts: one ncclBroadcast per rank, from that rank, in one group.
  std::unique_ptr<PendingCollective> start_all_gather(Tensor input, Tensor output,
                                                      std::vector<int64_t> counts) override {
    check_gpu(input, "all_gather");
    check_gpu(output, "all_gather");
    check_parts(output, input, counts, rank(), size(), "all_gather");
    const size_t element = dtype_size(output.dtype());
    auto* out = static_cast<char*>(output.raw_data());
    order_after_compute();
    {
      NcclGroup group;
      int64_t offset = 0;
      for (int r = 0; r < size(); ++r) {
        check_nccl(ncclBroadcast(input.raw_data(), out + offset * element, counts[r],
                                 nccl_type(output.dtype()), r, comm_, stream_),
                   "ncclBroadcast");
        offset += counts[r];
      }
    }
    return finish(describe_collective("all_gather", output), {input, output});
  }

  std::unique_ptr<PendingCollective> start_broadcast(Tensor buffer, int root) override {
    check_gpu(buffer, "broadcast");
    NURI_CHECK(root >= 0 && root < size(), "broadcast: root ", root, " is not a rank of ", size());
    order_after_compute();
    check_nccl(ncclBroadcast(buffer.raw_data(), buffer.raw_data(), buffer.numel(),
                             nccl_type(buffer.dtype()), root, comm_, stream_),
               "ncclBroadcast");
    return finish(describe_collective("broadcast", buffer), {buffer});
  }

  // NCCL has no barrier: an all-reduce of one value stands for it.
  std::unique_ptr<PendingCollective> start_barrier(double timeout_s) override {
    NURI_CUDA_CHECK(cudaSetDevice(device_));
    order_after_compute();
    check_nccl(ncclAllReduce(scratch_, scratch_, 1, ncclFloat64, ncclSum, comm_, stream_),
               "ncclAllReduce");
    return finish("barrier", {}, timeout_s);
  }

  void sum_doubles(std::span<double> values) override {
    NURI_CHECK(values.size() <= kScratch, "sum_doubles: at most ", kScratch, " values, got ",
               values.size());
    NURI_CUDA_CHECK(cudaSetDevice(device_));
    NURI_CUDA_CHECK(cudaMemcpyAsync(scratch_, values.data(), values.size_bytes(),
                                    cudaMemcpyHostToDevice, stream_));
    check_nccl(
        ncclAllReduce(scratch_, scratch_, values.size(), ncclFloat64, ncclSum, comm_, stream_),
        "ncclAllReduce");
    finish(cat("all_reduce of ", values.size(), " scalars"), {})->wait();
    NURI_CUDA_CHECK(
        cudaMemcpy(values.data(), scratch_, values.size_bytes(), cudaMemcpyDeviceToHost));
  }

  void abort(int code) override {
    if (comm_ != nullptr) ncclCommAbort(comm_);
    comm_ = nullptr;
    bootstrap_.abort(code);
  }

  // Makes the next collective on stream_ wait for every kernel queued so far on the default
  // stream (which wrote its buffers), without blocking the host or the default stream.
  void order_after_compute() {
    NURI_CUDA_CHECK(cudaEventRecord(compute_done_, cudaStreamLegacy));
    NURI_CUDA_CHECK(cudaStreamWaitEvent(stream_, compute_done_, 0));
  }

  // Waits until NCCL has taken a non-blocking call (its state leaves ncclInProgress); a wait past
  // the timeout stops the job. An error state aborts the communicator, which stops its kernels
  // before the buffers they use go back to the pool, and is a nuri::Error.
  void settle(const std::string& what, double timeout_s) {
    NURI_CHECK(comm_ != nullptr, "NCCL: ", what, ": the communicator was aborted after an error");
    const auto start = Clock::now();
    ncclResult_t state = ncclInProgress;
    while (true) {
      check_nccl(ncclCommGetAsyncError(comm_, &state), "ncclCommGetAsyncError");
      if (state != ncclInProgress) break;
      give_up_after(what, start, timeout_s);
      std::this_thread::yield();
    }
    if (state != ncclSuccess) {
      ncclCommAbort(comm_);
      comm_ = nullptr;
      fail("NCCL: ", what, " failed: ", ncclGetErrorString(state));
    }
  }

  // Past the timeout: says which collective waited, aborts NCCL and ends the process, so that
  // the launcher stops the other ranks.
  void give_up_after(const std::string& what, Clock::time_point start, double timeout_s) {
    const double allowed = timeout_s > 0 ? timeout_s : timeout_s_;
    if (std::chrono::duration<double>(Clock::now() - start).count() <= allowed) return;
    log_line(LogLevel::error,
             cat(what, " did not complete within ", allowed,
                 " s (parallel.timeout_s): another rank has died or hung; stopping the job"));
    ncclCommAbort(comm_);
    std::_Exit(1);
  }

 private:
  static constexpr size_t kScratch = 64;  // doubles for sum_doubles and the barrier

  // Rank 0's id reaches every rank over the bootstrap communicator; then the communicator and
  // the scratch buffer.
  void connect() {
    ncclUniqueId id{};
    if (bootstrap_.rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    Tensor bytes = Tensor::empty({static_cast<int64_t>(sizeof(id))}, DType::u8);
    std::memcpy(bytes.raw_data(), &id, sizeof(id));
    bootstrap_.broadcast(bytes, 0);
    std::memcpy(&id, bytes.raw_data(), sizeof(id));
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;  // calls return at once; settle() and the events bound every wait
    check_nccl(ncclCommInitRankConfig(&comm_, bootstrap_.size(), id, bootstrap_.rank(), &config),
               "ncclCommInitRankConfig");
    settle("ncclCommInitRankConfig", 0);
    scratch_ = static_cast<double*>(cuda::malloc_device(device_, kScratch * sizeof(double)));
  }

  // Frees everything. The communicator is finalized first (bounded by the timeout), or aborted
  // when `abort` is set or NCCL is in an error state. Never throws.
  void release(bool abort) noexcept {
    cudaSetDevice(device_);
    if (comm_ != nullptr) {
      ncclResult_t state = ncclSuccess;
      if (!abort) {
        ncclCommFinalize(comm_);
        const auto start = Clock::now();
        while (ncclCommGetAsyncError(comm_, &state) == ncclSuccess && state == ncclInProgress &&
               std::chrono::duration<double>(Clock::now() - start).count() < timeout_s_) {
          std::this_thread::yield();
        }
      }
      if (abort || state != ncclSuccess) {
        ncclCommAbort(comm_);
      } else {
        ncclCommDestroy(comm_);
      }
      comm_ = nullptr;
    }
    if (scratch_ != nullptr) cuda::free_device(device_, scratch_);
    scratch_ = nullptr;
    if (compute_done_ != nullptr) cudaEventDestroy(compute_done_);
    compute_done_ = nullptr;
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
    stream_ = nullptr;
  }

  std::unique_ptr<PendingCollective> finish(std::string what, std::vector<Tensor> keep,
                                            double timeout_s = 0) {
    settle(what, timeout_s);
    return std::make_unique<NcclPending>(*this, std::move(what), std::move(keep), timeout_s);
  }

  void check_gpu(const Tensor& tensor, const char* what) const {
    NURI_CHECK(tensor.defined() && tensor.device() == Device::cuda(device_), what,
               ": the NCCL communicator takes tensors on cuda:", device_, ", got ",
               tensor.defined() ? tensor.device().str() : std::string("an undefined tensor"));
    NURI_CUDA_CHECK(cudaSetDevice(device_));
  }

  Communicator& bootstrap_;
  double timeout_s_;
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t compute_done_ = nullptr;  // recorded on the default stream before each collective
  ncclComm_t comm_ = nullptr;
  double* scratch_ = nullptr;
};

NcclPending::NcclPending(NcclCommunicator& owner, std::string what, std::vector<Tensor> keep,
                         double timeout_s)
    : owner_(owner), what_(std::move(what)), keep_(std::move(keep)), timeout_s_(timeout_s) {
  NURI_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
  NURI_CUDA_CHECK(cudaEventRecord(event_, owner.stream()));
}

NcclPending::~NcclPending() {
  if (!complete_) {
    try {
      wait();
    } catch (...) {  // an NCCL or CUDA error: nothing is in flight any more
    }
  }
  if (event_ != nullptr) cudaEventDestroy(event_);
}

bool NcclPending::done() {
  if (complete_) return true;
  const cudaError_t status = cudaEventQuery(event_);
  if (status == cudaErrorNotReady) {
    cudaGetLastError();  // "not ready" is no error; no later launch check may report it
    owner_.settle(what_, timeout_s_);  // an asynchronous NCCL error surfaces here
    return false;
  }
  NURI_CUDA_CHECK(status);
  complete_ = true;
  keep_.clear();
  return true;
}

void NcclPending::wait() {
  const auto start = Clock::now();
  while (!done()) {
    owner_.give_up_after(what_, start, timeout_s_);
    std::this_thread::yield();
  }
}

}  // namespace

bool nccl_compiled() {
  return true;
}

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap,
                                                     const CommunicatorOptions& options) {
  return std::make_unique<NcclCommunicator>(bootstrap, options);
}

}  // namespace nuri
