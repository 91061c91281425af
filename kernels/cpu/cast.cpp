// CPU dtype conversion and fill.
#include <algorithm>
#include <type_traits>

#include "kernels/cpu/parallel.h"
#include "kernels/ops/cast.h"

namespace nuri::cpu {

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
#pragma omp parallel for if (n > 2 * kParallelElements)
        for (int64_t i = 0; i < n; ++i) out[i] = element_from_double<Dst>(element_to_double(in[i]));
      }
    });
  });
}

void fill_elements(Tensor& dst, double value) {
  const int64_t n = dst.numel();
  visit_dtype(dst.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T element = element_from_double<T>(value);
    T* out = dst.data<T>();
    std::fill(out, out + n, element);
  });
}

}  // namespace nuri::cpu
