// The NCCL communicator: the collectives of kernels/comm/communicator.h on GPU tensors, over the
// ranks of a bootstrap communicator (MPI, or a single rank) that carries rank 0's ncclUniqueId.
#pragma once

#include <memory>

#include "kernels/comm/communicator.h"

namespace nuri {

// True when this build has the NCCL communicator (CUDA on and NCCL found).
bool nccl_compiled();

// NCCL over the ranks of `bootstrap`, which must outlive it: each rank uses GPU
// local_rank % device count, and collectives take tensors on that GPU. The communicator is
// non-blocking: a wait that outlives options.timeout_s aborts it (ncclCommAbort) and ends the
// process, as the MPI one does. Throws nuri::Error when the build has no NCCL or no GPU.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap,
                                                     const CommunicatorOptions& options = {});

}  // namespace nuri
