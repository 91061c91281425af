#include "kernels/parameter.h"

#include <set>

#include "kernels/autograd.h"
#include "kernels/error.h"

namespace nuri {

void load_parameters(const SafetensorsFile& file, std::vector<NamedParameter>& parameters,
                     const std::string& owner,
                     const std::function<bool(const std::string&)>& extra_allowed,
                     std::vector<std::string>* missing) {
  const std::string& path = file.path();
  std::set<std::string> unread;
  for (const std::string& name : file.names()) unread.insert(name);
  std::vector<std::pair<Tensor*, Tensor>> reads;
  for (NamedParameter& p : parameters) {
    if (missing && !file.contains(p.name)) {
      missing->push_back(p.name);
      continue;
    }
    NURI_CHECK(file.contains(p.name), path, ": missing tensor '", p.name, "' (shape ",
               shape_str(p.tensor.shape()), ") of ", owner);
    const SafetensorsEntry& entry = file.entry(p.name);
    NURI_CHECK(entry.shape == p.tensor.shape(), path, ": tensor '", p.name, "' has shape ",
               shape_str(entry.shape), ", expected ", shape_str(p.tensor.shape()));
    NURI_CHECK(entry.dtype == DType::f32 || entry.dtype == DType::bf16 || entry.dtype == DType::f16,
               path, ": tensor '", p.name, "' has dtype ", dtype_name(entry.dtype),
               ", expected a floating type");
    reads.emplace_back(&p.tensor, file.tensor(p.name));
    unread.erase(p.name);
  }
  for (const std::string& name : unread)
    NURI_CHECK(extra_allowed && extra_allowed(name), path, ": unexpected tensor '", name,
               "' (not a parameter of ", owner, ")");
  NoGradScope no_grad;
  for (auto& [param, source] : reads)
    param->copy_from(source.dtype() == DType::f32 ? source : source.to(DType::f32));
}

void move_parameters(std::vector<NamedParameter>& parameters, const Device& device) {
  NoGradScope no_grad;
  for (NamedParameter& p : parameters) {
    if (p.tensor.device() == device) continue;
    Tensor moved = p.tensor.detach().to(device);
    moved.set_requires_grad(p.tensor.requires_grad());
    p.tensor = moved;
  }
}

}  // namespace nuri
