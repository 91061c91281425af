// The world communicator of the mpi test binary, made once per process by its main().
#pragma once

#include "kernels/comm/communicator.h"

namespace nuri {

Communicator& test_world();

}  // namespace nuri
