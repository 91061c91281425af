// Element types and the conversions between them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>
#include <type_traits>

namespace nuri {

// Element type of a tensor.
enum class DType : uint8_t { f32, bf16, f16, i32, i64, u8 };

// Bytes per element.
size_t dtype_size(DType dtype);
// Short lowercase name ("f32", "bf16", ...).
std::string_view dtype_name(DType dtype);
// Parses a name from dtype_name(); throws nuri::Error on anything else.
DType parse_dtype(std::string_view name);
// True for f32, bf16 and f16.
bool is_floating(DType dtype);

// Raw 16-bit storage of a bfloat16 value.
struct bf16_t {
  uint16_t bits;
};
// Raw 16-bit storage of an IEEE half value.
struct f16_t {
  uint16_t bits;
};

// Rounds to nearest even; NaN stays a quiet NaN.
inline bf16_t float_to_bf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return bf16_t{static_cast<uint16_t>((bits >> 16) | 0x40)};
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return bf16_t{static_cast<uint16_t>(bits >> 16)};
}

inline float bf16_to_float(bf16_t value) {
  uint32_t bits = static_cast<uint32_t>(value.bits) << 16;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

// Rounds to nearest even, with subnormals, infinities and NaN handled as IEEE 754 says.
inline f16_t float_to_f16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return f16_t{static_cast<uint16_t>(sign | 0x7e00u)};   // NaN
  if (abs >= 0x477ff000u) return f16_t{static_cast<uint16_t>(sign | 0x7c00u)};  // overflow to inf
  if (abs < 0x38800000u) {  // result is subnormal or zero: scale into the subnormal range
    if (abs < 0x33000000u) return f16_t{static_cast<uint16_t>(sign)};
    const uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
    // mantissa * 2^(e - 150) in units of 2^-24 (the smallest subnormal) is mantissa * 2^(e - 126).
    const int shift = 126 - static_cast<int>(abs >> 23);
    uint32_t half = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1u))) ++half;
    return f16_t{static_cast<uint16_t>(sign | half)};
  }
  uint32_t rebased = abs - 0x38000000u;  // exponent bias 127 -> 15
  rebased += 0xfffu + ((rebased >> 13) & 1u);
  return f16_t{static_cast<uint16_t>(sign | (rebased >> 13))};
}

inline float f16_to_float(f16_t value) {
  const uint32_t sign = static_cast<uint32_t>(value.bits & 0x8000u) << 16;
  const uint32_t exponent = (value.bits >> 10) & 0x1fu;
  uint32_t mantissa = value.bits & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    int e = -1;
    do {
      ++e;
      mantissa <<= 1;
    } while ((mantissa & 0x400u) == 0);
    bits = sign | (static_cast<uint32_t>(112 - e) << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

// The largest double that converts to the integer type T without overflow: T's maximum, or the
// double just below 2^63 for i64 (2^63 - 1 itself rounds up to 2^63 as a double).
template <class T>
constexpr double integer_max_as_double() {
  return std::is_same_v<T, int64_t> ? 9223372036854774784.0
                                    : static_cast<double>(std::numeric_limits<T>::max());
}

// An element of any dtype as double.
template <class T>
double element_to_double(T value) {
  if constexpr (std::is_same_v<T, bf16_t>) {
    return bf16_to_float(value);
  } else if constexpr (std::is_same_v<T, f16_t>) {
    return f16_to_float(value);
  } else {
    return static_cast<double>(value);
  }
}

// A double converted to an element of T the way every nuri cast converts: floating types round
// to nearest even; integers truncate toward zero and saturate, and NaN becomes 0.
template <class T>
T element_from_double(double value) {
  if constexpr (std::is_same_v<T, bf16_t>) {
    return float_to_bf16(static_cast<float>(value));
  } else if constexpr (std::is_same_v<T, f16_t>) {
    return float_to_f16(static_cast<float>(value));
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(value);
  } else {
    if (std::isnan(value)) return T{0};
    const double lo = static_cast<double>(std::numeric_limits<T>::lowest());
    return static_cast<T>(std::trunc(std::clamp(value, lo, integer_max_as_double<T>())));
  }
}

// Calls fn with a null pointer of the C++ element type of `dtype` (float*, bf16_t*, ...), so that
// a generic lambda can recover the type: visit_dtype(t.dtype(), [&](auto* tag) { ... }).
template <class Fn>
void visit_dtype(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::f32:
      return fn(static_cast<float*>(nullptr));
    case DType::bf16:
      return fn(static_cast<bf16_t*>(nullptr));
    case DType::f16:
      return fn(static_cast<f16_t*>(nullptr));
    case DType::i32:
      return fn(static_cast<int32_t*>(nullptr));
    case DType::i64:
      return fn(static_cast<int64_t*>(nullptr));
    case DType::u8:
      return fn(static_cast<uint8_t*>(nullptr));
  }
}

}  // namespace nuri
