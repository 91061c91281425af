// CPU dtype conversion and fill.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "kernels/ops/cast.h"

namespace nuri::cpu {
namespace {

// Reads element i of any dtype as double.
template <class T>
double load(const T* data, int64_t i) {
  if constexpr (std::is_same_v<T, bf16_t>) {
    return bf16_to_float(data[i]);
  } else if constexpr (std::is_same_v<T, f16_t>) {
    return f16_to_float(data[i]);
  } else {
    return static_cast<double>(data[i]);
  }
}

// Converts a double to T: floats round to nearest, integers truncate and saturate.
template <class T>
T store(double value) {
  if constexpr (std::is_same_v<T, bf16_t>) {
    return float_to_bf16(static_cast<float>(value));
  } else if constexpr (std::is_same_v<T, f16_t>) {
    return float_to_f16(static_cast<float>(value));
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(value);
  } else {
    if (std::isnan(value)) return T{0};
    const double lo = static_cast<double>(std::numeric_limits<T>::lowest());
    const double hi = static_cast<double>(std::numeric_limits<T>::max());
    return static_cast<T>(std::trunc(std::clamp(value, lo, hi)));
  }
}

}  // namespace

void cast_elements(const Tensor& src, Tensor& dst) {
  NURI_CHECK(src.numel() == dst.numel(), "cast: ", src.numel(), " elements into ", dst.numel());
  const int64_t n = src.numel();
  visit_dtype(src.dtype(), [&](auto* src_tag) {
    using Src = std::remove_pointer_t<decltype(src_tag)>;
    visit_dtype(dst.dtype(), [&](auto* dst_tag) {
      using Dst = std::remove_pointer_t<decltype(dst_tag)>;
      const Src* in = src.data<Src>();
      Dst* out = dst.data<Dst>();
      if constexpr (std::is_same_v<Src, float> && std::is_same_v<Dst, float>) {
        std::copy(in, in + n, out);
      } else {
#pragma omp parallel for if (n > (1 << 16))
        for (int64_t i = 0; i < n; ++i) out[i] = store<Dst>(load(in, i));
      }
    });
  });
}

void fill_elements(Tensor& dst, double value) {
  const int64_t n = dst.numel();
  visit_dtype(dst.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T element = store<T>(value);
    T* out = dst.data<T>();
    std::fill(out, out + n, element);
  });
}

}  // namespace nuri::cpu
