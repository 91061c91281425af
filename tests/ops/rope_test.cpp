// Suites for rope and mrope, and a check that M-RoPE with equal position streams is RoPE.
#include "kernels/ops/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "tests/ops/harness.h"

namespace nuri::test {
namespace {

// Rotate-half RoPE in float64: frequency i of x[b, t, h] turns by the position that
// position_of(b, t, i) returns.
template <class PositionOf>
Ref rotate_ref(const Ref& x, double theta, PositionOf position_of) {
  const int64_t bs = x.shape[0], ts = x.shape[1], hs = x.shape[2], dh = x.shape[3];
  const int64_t half = dh / 2;
  Ref y(x.shape);
  for (int64_t b = 0; b < bs; ++b)
    for (int64_t t = 0; t < ts; ++t)
      for (int64_t h = 0; h < hs; ++h)
        for (int64_t i = 0; i < half; ++i) {
          const double angle = position_of(b, t, i) * std::pow(theta, -2.0 * i / dh);
          const int64_t base = ((b * ts + t) * hs + h) * dh;
          const double x1 = x[base + i], x2 = x[base + half + i];
          y[base + i] = x1 * std::cos(angle) - x2 * std::sin(angle);
          y[base + half + i] = x2 * std::cos(angle) + x1 * std::sin(angle);
        }
  return y;
}

Ref rope_ref(const Ref& x, const Ref& positions, double theta) {
  const int64_t ts = x.shape[1];
  const bool shared = positions.shape.size() == 1;
  return rotate_ref(
      x, theta, [&](int64_t b, int64_t t, int64_t) { return positions[shared ? t : b * ts + t]; });
}

Ref mrope_ref(const Ref& x, const Ref& positions, std::array<int64_t, 3> sections, double theta) {
  const int64_t bs = x.shape[0], ts = x.shape[1];
  const bool shared = positions.shape.size() == 2;
  return rotate_ref(x, theta, [&](int64_t b, int64_t t, int64_t i) {
    const int64_t stream = i < sections[0] ? 0 : (i < sections[0] + sections[1] ? 1 : 2);
    return positions[shared ? stream * ts + t : (stream * bs + b) * ts + t];
  });
}

Shape rope_shape(CaseRng& rng) {
  return {rng.dim(3), rng.dim(5), rng.dim(3), 2 * rng.dim(5)};
}

float pick_theta(CaseRng& rng) {
  const float choices[] = {10000.0f, 1000000.0f, 500.0f};
  return choices[rng.uniform_int(0, 2)];
}

NURI_OP_SUITE(OpSuite{
    "rope",
    [](CaseRng& rng) {
      std::vector<OpCase> cases;
      for (int k = 0; k < 8; ++k) {
        // Positions up to 131072 in some cases (with several frequencies): angles must stay
        // accurate there.
        const bool far = k % 3 == 2;
        Shape s = k == 0 ? Shape{2, 3, 1, 8} : rope_shape(rng);
        if (far) s[3] = 12;
        const float theta = pick_theta(rng);
        const bool shared = k % 2 == 0;
        const int64_t max_pos = far ? 131072 : 64;
        const DType pos_dtype = k % 4 < 2 ? DType::i64 : DType::i32;
        const Shape ps = shared ? Shape{s[1]} : Shape{s[0], s[1]};
        OpCase c;
        c.label = "x" + shape_str(s) + " positions" + shape_str(ps) +
                  std::string(dtype_name(pos_dtype)) + " max " + std::to_string(max_pos) +
                  " theta=" + std::to_string(theta);
        c.inputs = {rng.normal(s), rng.ints(ps, 0, max_pos, pos_dtype)};
        c.grad_inputs = {0};
        c.run = [theta](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{rope(in[0], in[1], theta)};
        };
        c.reference = [theta](const std::vector<Ref>& in) {
          return std::vector<Ref>{rope_ref(in[0], in[1], theta)};
        };
        cases.push_back(std::move(c));
      }
      return cases;
    },
    [] {
      const Tensor pos = Tensor::zeros({3}, DType::i64);
      return std::vector<Malformed>{
          {"odd head dim",
           [pos] {
             rope(Tensor::zeros({1, 3, 2, 5}), pos, 1e4f);
           },
           "rope: head dim 5 must be even"},
          {"x of rank 3",
           [pos] {
             rope(Tensor::zeros({3, 2, 4}), pos, 1e4f);
           },
           "rope: x must be [B, T, H, Dh], not [3, 2, 4]"},
          {"positions of the wrong length",
           [] {
             rope(Tensor::zeros({1, 3, 2, 4}), Tensor::zeros({4}, DType::i64), 1e4f);
           },
           "rope: positions have shape [4], expected [3] or [1, 3]"},
          {"M-RoPE positions given to rope",
           [] {
             rope(Tensor::zeros({2, 3, 2, 4}), Tensor::zeros({3, 3}, DType::i64), 1e4f);
           },
           "rope: positions have shape [3, 3]"},
          {"float positions",
           [] {
             rope(Tensor::zeros({1, 3, 2, 4}), Tensor::zeros({3}), 1e4f);
           },
           "rope: positions must be i32 or i64, not f32"},
          {"integer x",
           [pos] {
             rope(Tensor::zeros({1, 3, 2, 4}, DType::i32), pos, 1e4f);
           },
           "rope: x must be floating"},
          {"zero theta",
           [pos] {
             rope(Tensor::zeros({1, 3, 2, 4}), pos, 0.0f);
           },
           "rope: theta must be finite and > 0"},
      };
    }});

NURI_OP_SUITE(OpSuite{
    "mrope",
    [](CaseRng& rng) {
      std::vector<OpCase> cases;
      for (int k = 0; k < 8; ++k) {
        const bool far = k % 3 == 2;  // positions up to 100000, with several frequencies
        Shape s = k == 0 ? Shape{1, 5, 2, 16} : rope_shape(rng);
        if (far) s[3] = 14;
        const int64_t half = s[3] / 2;
        std::array<int64_t, 3> sections{2, 3, 3};
        if (k != 0) {
          sections[0] = rng.uniform_int(0, half);
          sections[1] = rng.uniform_int(0, half - sections[0]);
          sections[2] = half - sections[0] - sections[1];
        }
        const float theta = pick_theta(rng);
        const bool shared = k % 2 == 1;
        const bool text = k % 4 == 3;  // three equal streams: must match plain RoPE
        const int64_t max_pos = far ? 100000 : 40;
        const DType pos_dtype = k % 3 == 0 ? DType::i32 : DType::i64;
        const Shape ps = shared ? Shape{3, s[1]} : Shape{3, s[0], s[1]};
        Tensor positions = rng.ints(ps, 0, max_pos, DType::i64);
        if (text) {
          const int64_t n = positions.numel() / 3;
          int64_t* p = positions.data<int64_t>();
          for (int64_t i = 0; i < n; ++i) p[n + i] = p[2 * n + i] = p[i];
        }
        OpCase c;
        c.label = "x" + shape_str(s) + " positions" + shape_str(ps) +
                  std::string(dtype_name(pos_dtype)) + " sections [" + std::to_string(sections[0]) +
                  ", " + std::to_string(sections[1]) + ", " + std::to_string(sections[2]) + "]" +
                  (text ? " text" : "");
        c.inputs = {rng.normal(s), positions.to(pos_dtype)};
        c.grad_inputs = {0};
        c.run = [sections, theta](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{mrope(in[0], in[1], sections, theta)};
        };
        c.reference = [sections, theta, text](const std::vector<Ref>& in) {
          if (!text) return std::vector<Ref>{mrope_ref(in[0], in[1], sections, theta)};
          // Equal streams: plain RoPE with the temporal stream.
          Ref first(Shape(in[1].shape.begin() + 1, in[1].shape.end()));
          std::copy(in[1].v.begin(), in[1].v.begin() + first.numel(), first.v.begin());
          return std::vector<Ref>{rope_ref(in[0], first, theta)};
        };
        cases.push_back(std::move(c));
      }
      return cases;
    },
    [] {
      const Tensor pos = Tensor::zeros({3, 3}, DType::i64);
      const std::array<int64_t, 3> sections{1, 0, 1};
      return std::vector<Malformed>{
          {"sections not summing to Dh/2",
           [pos] {
             mrope(Tensor::zeros({1, 3, 2, 8}), pos, {1, 1, 1}, 1e4f);
           },
           "mrope: sections [1, 1, 1] sum to 3, expected Dh/2 = 4"},
          {"negative section",
           [pos] {
             mrope(Tensor::zeros({1, 3, 2, 4}), pos, {3, -1, 0}, 1e4f);
           },
           "mrope: sections [3, -1, 0] include a negative size"},
          {"odd head dim",
           [pos, sections] {
             mrope(Tensor::zeros({1, 3, 2, 3}), pos, sections, 1e4f);
           },
           "mrope: head dim 3 must be even"},
          {"plain positions",
           [sections] {
             mrope(Tensor::zeros({1, 3, 2, 4}), Tensor::zeros({3}, DType::i64), sections, 1e4f);
           },
           "mrope: positions have shape [3], expected [3, 3] or [3, 1, 3]"},
          {"two position streams",
           [sections] {
             mrope(Tensor::zeros({1, 3, 2, 4}), Tensor::zeros({2, 3}, DType::i32), sections, 1e4f);
           },
           "mrope: positions have shape [2, 3]"},
          {"u8 positions",
           [sections] {
             mrope(Tensor::zeros({1, 3, 2, 4}), Tensor::zeros({3, 3}, DType::u8), sections, 1e4f);
           },
           "mrope: positions must be i32 or i64, not u8"},
      };
    }});

TEST(Mrope, EqualStreamsGiveRope) {
  CaseRng rng(11);
  const Tensor x = rng.normal({2, 7, 3, 32});
  const Tensor positions = rng.ints({2, 7}, 0, 100000);
  Tensor streams = Tensor::empty({3, 2, 7}, DType::i64);
  for (int s = 0; s < 3; ++s) {
    std::memcpy(streams.data<int64_t>() + s * 14, positions.data<int64_t>(), 14 * sizeof(int64_t));
  }
  const Tensor a = rope(x, positions, 1e6f);
  const Tensor b = mrope(x, streams, {4, 6, 6}, 1e6f);
  EXPECT_EQ(std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()), 0);
}

}  // namespace
}  // namespace nuri::test
