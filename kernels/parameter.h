// A named trainable tensor: every module (decoder, encoders, projectors) lists its parameters
// this way, so checkpoints, optimizers and freezing address them by name.
#pragma once
#include <string>
#include "kernels/tensor.h"

namespace nuri {

// A named parameter, in the order that checkpoints list them.
struct NamedParameter {
  std::string name;
  Tensor tensor;
};

}  // namespace nuri
