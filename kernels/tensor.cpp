#include "kernels/tensor.h"

#include <limits>

#include "kernels/allocator.h"
#include "kernels/autograd.h"
#include "kernels/dispatch.h"
#include "kernels/ops/cast.h"
#ifdef NURI_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace nuri {

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t extent : shape) {
    NURI_CHECK(extent >= 0, "negative extent in shape ", shape_str(shape));
    NURI_CHECK(extent == 0 || n <= std::numeric_limits<int64_t>::max() / extent, "shape ",
               shape_str(shape), " has too many elements");
    n *= extent;
  }
  return n;
}

size_t shape_nbytes(const Shape& shape, DType dtype) {
  size_t bytes = 0;
  NURI_CHECK(
      !__builtin_mul_overflow(static_cast<size_t>(shape_numel(shape)), dtype_size(dtype), &bytes),
      "shape ", shape_str(shape), " of ", dtype_name(dtype),
      " needs more bytes than fit in memory");
  return bytes;
}

std::string shape_str(const Shape& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

std::shared_ptr<Storage> Storage::allocate(Device device, size_t bytes) {
  void* data = device_alloc(device, bytes);
  return std::shared_ptr<Storage>(new Storage(data, bytes, device, nullptr));
}

std::shared_ptr<Storage> Storage::wrap(void* data, size_t bytes, Device device,
                                       std::shared_ptr<const void> owner) {
  NURI_CHECK(owner != nullptr, "Storage::wrap needs an owner to keep the memory alive");
  return std::shared_ptr<Storage>(new Storage(data, bytes, device, std::move(owner)));
}

Storage::~Storage() {
  if (!owner_) device_free(device_, data_, bytes_);
}

const Tensor::Impl& Tensor::impl() const {
  NURI_CHECK(impl_ != nullptr, "use of an undefined tensor");
  return *impl_;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  auto impl = std::make_shared<Impl>();
  impl->storage = Storage::allocate(device, shape_nbytes(shape, dtype));
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}

Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor out = empty(shape, dtype, device);
  NURI_DISPATCH(device, fill_elements, out, value);
  return out;
}

Tensor Tensor::from_storage(std::shared_ptr<Storage> storage, size_t offset_bytes,
                            const Shape& shape, DType dtype) {
  const size_t bytes = shape_nbytes(shape, dtype);
  NURI_CHECK(storage != nullptr, "from_storage: null storage");
  NURI_CHECK(offset_bytes <= storage->bytes() && bytes <= storage->bytes() - offset_bytes,
             "from_storage: ", bytes, " bytes at offset ", offset_bytes,
             " do not fit a storage of ", storage->bytes(), " bytes");
  auto impl = std::make_shared<Impl>();
  impl->storage = std::move(storage);
  impl->offset = offset_bytes;
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

const Shape& Tensor::shape() const {
  return impl().shape;
}

int64_t Tensor::size(int d) const {
  const int rank = dim();
  const int index = d < 0 ? d + rank : d;
  NURI_CHECK(index >= 0 && index < rank, "dimension ", d, " out of range for shape ",
             shape_str(shape()));
  return shape()[index];
}

int64_t Tensor::numel() const {
  return shape_numel(impl().shape);
}
DType Tensor::dtype() const {
  return impl().dtype;
}
Device Tensor::device() const {
  return impl().storage->device();
}
size_t Tensor::offset_bytes() const {
  return impl().offset;
}
const std::shared_ptr<Storage>& Tensor::storage() const {
  return impl().storage;
}

void* Tensor::raw_data() const {
  return static_cast<char*>(impl().storage->data()) + impl().offset;
}

Tensor Tensor::view(const Shape& new_shape) const {
  Shape resolved = new_shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < resolved.size(); ++i) {
    if (resolved[i] == -1) {
      NURI_CHECK(infer < 0, "view ", shape_str(new_shape), ": more than one -1");
      infer = static_cast<int>(i);
    } else {
      NURI_CHECK(resolved[i] >= 0, "view ", shape_str(new_shape), ": negative extent");
      NURI_CHECK(!__builtin_mul_overflow(known, resolved[i], &known), "view ", shape_str(new_shape),
                 " has too many elements");
    }
  }
  if (infer >= 0) {
    NURI_CHECK(known != 0 && numel() % known == 0, "view ", shape_str(new_shape),
               " cannot hold the ", numel(), " elements of ", shape_str(shape()));
    resolved[infer] = numel() / known;
  }
  NURI_CHECK(shape_numel(resolved) == numel(), "view ", shape_str(new_shape), " cannot hold the ",
             numel(), " elements of ", shape_str(shape()));
  auto impl =
      std::make_shared<Impl>(Impl{impl_->storage, impl_->offset, resolved, impl_->dtype, {}});
  return Tensor(std::move(impl));
}

Tensor Tensor::outer_slice(int64_t begin, int64_t end) const {
  NURI_CHECK(dim() >= 1, "outer_slice of a scalar");
  const int64_t rows = shape()[0];
  NURI_CHECK(0 <= begin && begin <= end && end <= rows, "outer_slice [", begin, ", ", end,
             ") out of range for ", rows, " rows");
  Shape sliced = shape();
  sliced[0] = end - begin;
  const size_t row_bytes = rows == 0 ? 0 : nbytes() / static_cast<size_t>(rows);
  auto impl = std::make_shared<Impl>(Impl{impl_->storage,
                                          impl_->offset + static_cast<size_t>(begin) * row_bytes,
                                          sliced,
                                          impl_->dtype,
                                          {}});
  return Tensor(std::move(impl));
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<Impl>(this->impl());
  impl->grad_slot.reset();
  return Tensor(std::move(impl));
}

Tensor Tensor::to(DType target) const {
  Tensor out = empty(shape(), target, device());
  NURI_DISPATCH(device(), cast_elements, *this, out);
  return out;
}

Tensor Tensor::to(Device target) const {
  Tensor out = empty(shape(), dtype(), target);
  out.copy_from(*this);
  return out;
}

Tensor Tensor::clone() const {
  return to(device());
}

void Tensor::copy_from(const Tensor& src) {
  NURI_CHECK(src.shape() == shape() && src.dtype() == dtype(), "copy_from: source ",
             dtype_name(src.dtype()), shape_str(src.shape()), " does not match destination ",
             dtype_name(dtype()), shape_str(shape()));
  if (nbytes() == 0) return;
  if (device().is_cpu() && src.device().is_cpu()) {
    std::memcpy(raw_data(), src.raw_data(), nbytes());
    return;
  }
#ifdef NURI_WITH_CUDA
  const int gpu = src.device().is_cuda() ? src.device().index : device().index;
  cuda::copy(gpu, raw_data(), device().is_cuda(), src.raw_data(), src.device().is_cuda(), nbytes());
#else
  fail("copy_from between ", src.device(), " and ", device(), ": this build has no CUDA backend");
#endif
}

std::vector<float> Tensor::to_vector() const {
  Tensor host = device().is_cpu() ? *this : to(Device::cpu());
  if (host.dtype() != DType::f32) host = host.to(DType::f32);
  const float* values = host.data<float>();
  return std::vector<float>(values, values + host.numel());
}

std::vector<int64_t> Tensor::to_int_vector() const {
  NURI_CHECK(dtype() == DType::i32 || dtype() == DType::i64,
             "to_int_vector() of a tensor of dtype ", dtype_name(dtype()), ", not i32 or i64");
  const Tensor host = device().is_cpu() ? *this : to(Device::cpu());
  std::vector<int64_t> out(static_cast<size_t>(host.numel()));
  if (host.dtype() == DType::i64) {
    std::copy(host.data<int64_t>(), host.data<int64_t>() + host.numel(), out.begin());
  } else {
    std::copy(host.data<int32_t>(), host.data<int32_t>() + host.numel(), out.begin());
  }
  return out;
}

float Tensor::item() const {
  NURI_CHECK(numel() == 1, "item() of a tensor with ", numel(), " elements");
  return to_vector()[0];
}

bool Tensor::requires_grad() const {
  return impl_ && impl_->grad_slot != nullptr;
}

Tensor& Tensor::set_requires_grad(bool enabled) {
  NURI_CHECK(impl_ != nullptr, "set_requires_grad on an undefined tensor");
  if (!enabled) {
    impl_->grad_slot.reset();
  } else if (!impl_->grad_slot) {
    NURI_CHECK(is_floating(dtype()), "only floating tensors can require grad, not ",
               dtype_name(dtype()));
    impl_->grad_slot = std::make_shared<GradSlot>();
    impl_->grad_slot->is_leaf = true;
  }
  return *this;
}

Tensor Tensor::grad() const {
  return requires_grad() ? impl_->grad_slot->grad : Tensor();
}

void Tensor::set_grad(const Tensor& grad) {
  NURI_CHECK(requires_grad(), "set_grad on a tensor that does not require grad");
  if (grad.defined()) {
    NURI_CHECK(grad.shape() == shape() && grad.dtype() == dtype() && grad.device() == device(),
               "set_grad: gradient ", grad, " does not match tensor ", *this);
  }
  impl_->grad_slot->grad = grad;
}

void Tensor::clear_grad() {
  if (requires_grad()) impl_->grad_slot->grad = Tensor();
}

const std::shared_ptr<GradSlot>& Tensor::grad_slot() const {
  return impl().grad_slot;
}

void Tensor::set_grad_slot(std::shared_ptr<GradSlot> slot) {
  NURI_CHECK(impl_ != nullptr, "set_grad_slot on an undefined tensor");
  impl_->grad_slot = std::move(slot);
}

bool Tensor::is_sole_owner() const {
  return impl_ && impl_.use_count() == 1 && impl_->storage.use_count() == 1;
}

std::ostream& operator<<(std::ostream& out, const Tensor& tensor) {
  if (!tensor.defined()) return out << "Tensor(undefined)";
  return out << "Tensor(" << dtype_name(tensor.dtype()) << ", " << tensor.device() << ", "
             << shape_str(tensor.shape()) << ")";
}

}  // namespace nuri
