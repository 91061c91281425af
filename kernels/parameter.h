// A named trainable tensor: every module (decoder, encoders, projectors) lists its parameters
// this way, so checkpoints, optimizers and freezing address them by name.
#pragma once
#include <functional>
#include <string>
#include <vector>
#include "kernels/safetensors.h"
#include "kernels/tensor.h"

namespace nuri {

// A named parameter, in the order that checkpoints list them.
struct NamedParameter {
  std::string name;
  Tensor tensor;
};

// Reads every parameter from `file` (f32, bf16 or f16, converted to f32). A missing, mis-shaped or
// non-floating tensor, or one in the file that is no parameter (unless `extra_allowed` accepts
// its name), is an error naming it, the file and `owner` (the module, as "the audio encoder"),
// raised before any parameter is overwritten. With `missing` given, a parameter the file lacks
// keeps its value and its name is added there instead (a module new in a later training stage).
void load_parameters(const SafetensorsFile& file, std::vector<NamedParameter>& parameters,
                     const std::string& owner,
                     const std::function<bool(const std::string&)>& extra_allowed = {},
                     std::vector<std::string>* missing = nullptr);

// Moves every parameter to `device` (a no-op for those already there), each still requiring grad
// (or not, when frozen) as before.
// Tensors that shared a parameter before share the moved one only when they are the same entry.
void move_parameters(std::vector<NamedParameter>& parameters, const Device& device);

}  // namespace nuri
