#include "kernels/ops/rope.h"

#include <cmath>

#include "kernels/autograd.h"
#include "kernels/ops/checks.h"

namespace nuri {
namespace {

// Checks x [B, T, H, Dh] with an even Dh and a usable theta.
void check_x(const char* op, const Tensor& x, float theta) {
  checks::floating(op, x, "x");
  NURI_CHECK(x.dim() == 4, op, ": x must be [B, T, H, Dh], not ", shape_str(x.shape()));
  NURI_CHECK(x.size(3) > 0 && x.size(3) % 2 == 0, op, ": head dim ", x.size(3),
             " must be even and positive");
  NURI_CHECK(theta > 0 && std::isfinite(theta), op, ": theta must be finite and > 0, not ", theta);
}

void check_positions(const char* op, const Tensor& x, const Tensor& positions) {
  checks::integer(op, positions, "positions");
  NURI_CHECK(positions.device() == x.device(), op, ": positions are on ", positions.device(),
             " but x is on ", x.device());
}

// Applies the rotation and records its backward; positions are already [S, 1 or B, T]. The
// backward keeps a copy of them, so a caller may refill its position buffer in between.
Tensor rotate(const char* op, const Tensor& x, const Tensor& positions,
              std::array<int64_t, 3> sections, float theta) {
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  NURI_DISPATCH(x.device(), rope_forward, x, positions, sections, theta, out);
  if (autograd::needed(x)) {
    autograd::record(
        op, {x}, {&out},
        [positions = positions.clone(), sections, theta](const auto& grads, const auto&) {
          const Tensor& dy = grads[0];
          Tensor dx = Tensor::empty(dy.shape(), dy.dtype(), dy.device());
          NURI_DISPATCH(dy.device(), rope_backward, dy, positions, sections, theta, dx);
          return std::vector<Tensor>{dx};
        });
  }
  return out;
}

}  // namespace

Tensor rope(const Tensor& x, const Tensor& positions, float theta) {
  check_x("rope", x, theta);
  check_positions("rope", x, positions);
  const int64_t b = x.size(0), t = x.size(1);
  const bool shared = positions.shape() == Shape{t};
  const bool per_batch = positions.shape() == Shape{b, t};
  NURI_CHECK(shared || per_batch, "rope: positions have shape ", shape_str(positions.shape()),
             ", expected [", t, "] or [", b, ", ", t, "] for x of shape ", shape_str(x.shape()));
  const Tensor streams = positions.view({1, shared ? 1 : b, t});
  return rotate("rope", x, streams, {x.size(3) / 2, 0, 0}, theta);
}

Tensor mrope(const Tensor& x, const Tensor& positions, std::array<int64_t, 3> sections,
             float theta) {
  check_x("mrope", x, theta);
  check_positions("mrope", x, positions);
  const int64_t half = x.size(3) / 2;
  for (int64_t s : sections) {
    NURI_CHECK(s >= 0, "mrope: sections [", sections[0], ", ", sections[1], ", ", sections[2],
               "] include a negative size");
  }
  NURI_CHECK(sections[0] + sections[1] + sections[2] == half, "mrope: sections [", sections[0],
             ", ", sections[1], ", ", sections[2], "] sum to ",
             sections[0] + sections[1] + sections[2], ", expected Dh/2 = ", half);
  const int64_t b = x.size(0), t = x.size(1);
  const bool shared = positions.shape() == Shape{3, t};
  const bool per_batch = positions.shape() == Shape{3, b, t};
  NURI_CHECK(shared || per_batch, "mrope: positions have shape ", shape_str(positions.shape()),
             ", expected [3, ", t, "] or [3, ", b, ", ", t, "] for x of shape ",
             shape_str(x.shape()));
  const Tensor streams = positions.view({3, shared ? 1 : b, t});
  return rotate("mrope", x, streams, sections, theta);
}

}  // namespace nuri
