// Tensor: a contiguous n-d array with a dtype, a device and shared storage, plus its autograd slot.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "kernels/device.h"
#include "kernels/dtype.h"
#include "kernels/error.h"

namespace nuri {

// Extents of each dimension, outermost first.
using Shape = std::vector<int64_t>;

// Product of the extents (1 for a scalar); throws nuri::Error on a negative extent or overflow.
int64_t shape_numel(const Shape& shape);
// Bytes that shape_numel(shape) elements of dtype take; throws nuri::Error on overflow.
size_t shape_nbytes(const Shape& shape, DType dtype);
// "[2, 3, 4]".
std::string shape_str(const Shape& shape);

// A block of device memory that tensors share; freed when the last tensor lets go.
class Storage {
 public:
  // Fresh, uninitialised memory.
  static std::shared_ptr<Storage> allocate(Device device, size_t bytes);
  // Memory owned elsewhere (a file mapping, say), kept alive by `owner`.
  static std::shared_ptr<Storage> wrap(void* data, size_t bytes, Device device,
                                       std::shared_ptr<const void> owner);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  Storage(void* data, size_t bytes, Device device, std::shared_ptr<const void> owner)
      : data_(data), bytes_(bytes), device_(device), owner_(std::move(owner)) {}
  void* data_;
  size_t bytes_;
  Device device_;
  std::shared_ptr<const void> owner_;  // null when this storage allocated the memory itself
};

struct GradSlot;

// Maps a C++ element type to its DType.
template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::f32;
}
template <>
constexpr DType dtype_of<bf16_t>() {
  return DType::bf16;
}
template <>
constexpr DType dtype_of<f16_t>() {
  return DType::f16;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::i32;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::i64;
}
template <>
constexpr DType dtype_of<uint8_t>() {
  return DType::u8;
}

// A contiguous array. Copying a Tensor copies the handle: both names refer to the same tensor.
class Tensor {
 public:
  // An undefined tensor (defined() is false).
  Tensor() = default;

  // Uninitialised memory of the given shape.
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  // Every element set to `value` (converted to dtype).
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
                     Device device = Device::cpu());
  // A CPU copy of `values`, which must hold shape_numel(shape) elements.
  template <class T>
  static Tensor from_data(std::span<const T> values, const Shape& shape);
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape) {
    return from_data<float>(values, shape);
  }
  // A one-element f32 tensor of shape [].
  static Tensor scalar(float value) { return from_vector({value}, {}); }
  // A tensor over memory owned elsewhere, kept alive by `storage`.
  static Tensor from_storage(std::shared_ptr<Storage> storage, size_t offset_bytes,
                             const Shape& shape, DType dtype);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int dim() const { return static_cast<int>(shape().size()); }
  // Extent of dimension d; negative d counts from the end.
  int64_t size(int d) const;
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  size_t nbytes() const { return shape_nbytes(shape(), dtype()); }
  size_t offset_bytes() const;
  const std::shared_ptr<Storage>& storage() const;

  // Address of the first element, on the tensor's device.
  void* raw_data() const;
  // Typed pointer; checks that T matches the dtype (device memory is not checked).
  template <class T>
  T* data() const {
    NURI_CHECK(dtype_of<T>() == dtype(), "tensor of dtype ", dtype_name(dtype()), " accessed as ",
               dtype_name(dtype_of<T>()));
    return static_cast<T*>(raw_data());
  }

  // Same storage, new shape with the same element count; one extent may be -1. No autograd.
  Tensor view(const Shape& shape) const;
  // Rows [begin, end) of dimension 0, sharing storage. No autograd.
  Tensor outer_slice(int64_t begin, int64_t end) const;
  // Same storage without the autograd slot.
  Tensor detach() const;

  // Converted copy (a new tensor even when the dtype already matches).
  Tensor to(DType dtype) const;
  // Copy on another device (a new tensor even when the device already matches).
  Tensor to(Device device) const;
  // This tensor when it is on `device` already, otherwise a copy there (not differentiable).
  Tensor on(Device device) const { return this->device() == device ? *this : to(device); }
  Tensor clone() const;
  // Overwrites this tensor's elements with src's (same shape and dtype, any devices).
  void copy_from(const Tensor& src);
  // Elements converted to f32 on the CPU (reads across devices and dtypes).
  std::vector<float> to_vector() const;
  // Elements of an integer tensor (i32 or i64) as int64 on the CPU, from any device.
  std::vector<int64_t> to_int_vector() const;
  // The single element as float; the tensor must have exactly one element.
  float item() const;

  // Autograd: a leaf that requires grad accumulates its gradient in grad().
  bool requires_grad() const;
  Tensor& set_requires_grad(bool enabled = true);
  // The accumulated gradient, or an undefined tensor before any backward.
  Tensor grad() const;
  void set_grad(const Tensor& grad);
  // Forgets the accumulated gradient.
  void clear_grad();
  // The autograd slot (null when the tensor does not require grad); for op implementations.
  const std::shared_ptr<GradSlot>& grad_slot() const;
  void set_grad_slot(std::shared_ptr<GradSlot> slot);
  // True when this handle is the only one to the tensor and nothing else shares its storage.
  bool is_sole_owner() const;
  // True when both handles name the same tensor.
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  struct Impl {
    std::shared_ptr<Storage> storage;
    size_t offset = 0;
    Shape shape;
    DType dtype = DType::f32;
    std::shared_ptr<GradSlot> grad_slot;
  };
  explicit Tensor(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  const Impl& impl() const;
  std::shared_ptr<Impl> impl_;
};

// "Tensor(f32, cpu, [2, 3])".
std::ostream& operator<<(std::ostream& out, const Tensor& tensor);

template <class T>
Tensor Tensor::from_data(std::span<const T> values, const Shape& shape) {
  Tensor out = empty(shape, dtype_of<T>());
  NURI_CHECK(static_cast<int64_t>(values.size()) == out.numel(), "from_data: ", values.size(),
             " values do not fill shape ", shape_str(shape));
  std::copy(values.begin(), values.end(), out.data<T>());
  return out;
}

}  // namespace nuri
