#include "kernels/ops/random.h"

#include "kernels/ops/checks.h"

namespace nuri {

uint64_t Generator::take(int64_t count) {
  const uint64_t first = offset;
  offset += static_cast<uint64_t>((count + 3) / 4);
  return first;
}

void uniform_(Tensor& x, Generator& gen, float low, float high) {
  checks::defined("uniform_", x, "x");
  NURI_CHECK(x.dtype() == DType::f32, "uniform_: fills f32 tensors, x is ", dtype_name(x.dtype()));
  NURI_CHECK(low <= high, "uniform_: low ", low, " exceeds high ", high);
  NURI_DISPATCH(x.device(), random_uniform, x, gen.seed, gen.take(x.numel()), low, high);
}

void normal_(Tensor& x, Generator& gen, float mean, float stddev) {
  checks::defined("normal_", x, "x");
  NURI_CHECK(x.dtype() == DType::f32, "normal_: fills f32 tensors, x is ", dtype_name(x.dtype()));
  NURI_CHECK(stddev >= 0, "normal_: negative standard deviation ", stddev);
  NURI_DISPATCH(x.device(), random_normal, x, gen.seed, gen.take(x.numel()), mean, stddev);
}

}  // namespace nuri
