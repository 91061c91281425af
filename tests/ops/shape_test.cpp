// Suites for reshape, transpose, slice, concat and split.
#include "kernels/ops/shape.h"

#include <gtest/gtest.h>

#include "kernels/device.h"
#include "tests/ops/harness.h"

namespace nuri::test {
namespace {

Shape random_shape(CaseRng& rng, int min_rank, int max_rank, int64_t max_extent = 5) {
  Shape s;
  const int rank = static_cast<int>(rng.uniform_int(min_rank, max_rank));
  for (int i = 0; i < rank; ++i) s.push_back(rng.dim(max_extent));
  return s;
}

// Row-major index of `index` in `shape`.
int64_t flat(const Shape& shape, const std::vector<int64_t>& index) {
  int64_t offset = 0;
  for (size_t i = 0; i < shape.size(); ++i) offset = offset * shape[i] + index[i];
  return offset;
}

// Calls fn(index) for every multi-index of shape, in row-major order.
template <class Fn>
void for_each_index(const Shape& shape, Fn fn) {
  const int64_t n = shape_numel(shape);
  std::vector<int64_t> index(shape.size(), 0);
  for (int64_t count = 0; count < n; ++count) {
    fn(index);
    for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
}

NURI_OP_SUITE(OpSuite{"reshape",
                      [](CaseRng& rng) {
                        std::vector<OpCase> cases;
                        for (int k = 0; k < 5; ++k) {
                          const Shape s = random_shape(rng, 1, 4);
                          const int64_t n = shape_numel(s);
                          const Shape target = k % 2 ? Shape{n} : Shape{1, -1, 1};
                          OpCase c;
                          c.label = "x" + shape_str(s) + " -> " + shape_str(target);
                          c.inputs = {rng.normal(s)};
                          c.grad_inputs = {0};
                          c.run = [target](const std::vector<Tensor>& in) {
                            return std::vector<Tensor>{reshape(in[0], target)};
                          };
                          c.reference = [target, n](const std::vector<Ref>& in) {
                            Ref out = in[0];
                            out.shape = target.size() == 3 ? Shape{1, n, 1} : target;
                            return std::vector<Ref>{out};
                          };
                          cases.push_back(std::move(c));
                        }
                        return cases;
                      },
                      [] {
                        return std::vector<Malformed>{
                            {"wrong element count",
                             [] {
                               reshape(Tensor::zeros({2, 3}), {4, 2});
                             },
                             "reshape"},
                            {"two inferred extents",
                             [] {
                               reshape(Tensor::zeros({2, 3}), {-1, -1});
                             },
                             "-1"},
                            {"undefined input", [] { reshape(Tensor(), {1}); }, "undefined"}};
                      }});

NURI_OP_SUITE(OpSuite{
    "transpose",
    [](CaseRng& rng) {
      std::vector<OpCase> cases;
      for (int k = 0; k < 6; ++k) {
        const Shape s = random_shape(rng, 2, 5, 4);
        const int rank = static_cast<int>(s.size());
        const int a = static_cast<int>(rng.uniform_int(0, rank - 1));
        const int b = static_cast<int>(rng.uniform_int(0, rank - 1)) - (k % 2 ? rank : 0);
        OpCase c;
        c.label = "x" + shape_str(s) + " dims " + std::to_string(a) + "," + std::to_string(b);
        c.inputs = {rng.normal(s)};
        c.grad_inputs = {0};
        c.run = [a, b](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{transpose(in[0], a, b)};
        };
        c.reference = [a, b](const std::vector<Ref>& in) {
          const int rank = static_cast<int>(in[0].shape.size());
          const int i = a < 0 ? a + rank : a, j = b < 0 ? b + rank : b;
          Shape out_shape = in[0].shape;
          std::swap(out_shape[i], out_shape[j]);
          Ref out(out_shape);
          for_each_index(in[0].shape, [&](const std::vector<int64_t>& index) {
            std::vector<int64_t> swapped = index;
            std::swap(swapped[i], swapped[j]);
            out[flat(out_shape, swapped)] = in[0][flat(in[0].shape, index)];
          });
          return std::vector<Ref>{out};
        };
        cases.push_back(std::move(c));
      }
      return cases;
    },
    [] {
      return std::vector<Malformed>{
          {"dimension out of range",
           [] {
             transpose(Tensor::zeros({2, 3}), 0, 2);
           },
           "out of range"},
          {"negative dimension out of range",
           [] {
             transpose(Tensor::zeros({2, 3}), -3, 0);
           },
           "out of range"},
          {"undefined input", [] { transpose(Tensor(), 0, 1); }, "undefined"}};
    }});

// Reference slice of `in` along axis: elements [start, end).
Ref slice_ref(const Ref& in, int axis, int64_t start, int64_t end) {
  Shape out_shape = in.shape;
  out_shape[axis] = end - start;
  Ref out(out_shape);
  for_each_index(out_shape, [&](const std::vector<int64_t>& index) {
    std::vector<int64_t> source = index;
    source[axis] += start;
    out[flat(out_shape, index)] = in[flat(in.shape, source)];
  });
  return out;
}

NURI_OP_SUITE(OpSuite{
    "slice",
    [](CaseRng& rng) {
      std::vector<OpCase> cases;
      for (int k = 0; k < 6; ++k) {
        const Shape s = random_shape(rng, 1, 4, 6);
        const int axis = static_cast<int>(rng.uniform_int(0, static_cast<int64_t>(s.size()) - 1));
        const int64_t start = rng.uniform_int(0, s[axis]);
        const int64_t end = rng.uniform_int(start, s[axis]);
        OpCase c;
        c.label = "x" + shape_str(s) + " dim " + std::to_string(axis) + " [" +
                  std::to_string(start) + ", " + std::to_string(end) + ")";
        c.inputs = {rng.normal(s)};
        c.grad_inputs = {0};
        c.run = [axis, start, end](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{slice(in[0], axis, start, end)};
        };
        c.reference = [axis, start, end](const std::vector<Ref>& in) {
          return std::vector<Ref>{slice_ref(in[0], axis, start, end)};
        };
        cases.push_back(std::move(c));
      }
      return cases;
    },
    [] {
      return std::vector<Malformed>{
          {"end past the extent",
           [] {
             slice(Tensor::zeros({2, 3}), 1, 0, 4);
           },
           "out of bounds"},
          {"start after end",
           [] {
             slice(Tensor::zeros({2, 3}), 1, 2, 1);
           },
           "out of bounds"},
          {"negative start",
           [] {
             slice(Tensor::zeros({2, 3}), 0, -1, 1);
           },
           "out of bounds"},
          {"dimension out of range", [] { slice(Tensor::zeros({2}), 1, 0, 1); }, "out of range"}};
    }});

NURI_OP_SUITE(OpSuite{"concat",
                      [](CaseRng& rng) {
                        std::vector<OpCase> cases;
                        for (int k = 0; k < 6; ++k) {
                          const Shape s = random_shape(rng, 1, 4, 5);
                          const int axis = static_cast<int>(
                              rng.uniform_int(0, static_cast<int64_t>(s.size()) - 1));
                          const int count = static_cast<int>(rng.uniform_int(1, 3));
                          OpCase c;
                          c.label = "dim " + std::to_string(axis) + ":";
                          for (int i = 0; i < count; ++i) {
                            Shape part = s;
                            part[axis] = rng.uniform_int(0, 3);
                            c.inputs.push_back(rng.normal(part));
                            c.grad_inputs.push_back(i);
                            c.label += " " + shape_str(part);
                          }
                          c.run = [axis](const std::vector<Tensor>& in) {
                            return std::vector<Tensor>{concat(in, axis)};
                          };
                          c.reference = [axis](const std::vector<Ref>& in) {
                            Shape out_shape = in[0].shape;
                            out_shape[axis] = 0;
                            for (const Ref& part : in) out_shape[axis] += part.shape[axis];
                            Ref out(out_shape);
                            int64_t offset = 0;
                            for (const Ref& part : in) {
                              for_each_index(part.shape, [&](const std::vector<int64_t>& index) {
                                std::vector<int64_t> target = index;
                                target[axis] += offset;
                                out[flat(out_shape, target)] = part[flat(part.shape, index)];
                              });
                              offset += part.shape[axis];
                            }
                            return std::vector<Ref>{out};
                          };
                          cases.push_back(std::move(c));
                        }
                        return cases;
                      },
                      [] {
                        return std::vector<Malformed>{
                            {"no parts", [] { concat({}, 0); }, "no tensors"},
                            {"shapes differ outside the axis",
                             [] {
                               concat({Tensor::zeros({2, 3}), Tensor::zeros({3, 3})}, 1);
                             },
                             "differs"},
                            {"ranks differ",
                             [] {
                               concat({Tensor::zeros({2, 3}), Tensor::zeros({2})}, 0);
                             },
                             "differs"},
                            {"dtypes differ",
                             [] {
                               concat({Tensor::zeros({2}), Tensor::zeros({2}, DType::i32)}, 0);
                             },
                             "i32"}};
                      }});

NURI_OP_SUITE(OpSuite{
    "split",
    [](CaseRng& rng) {
      std::vector<OpCase> cases;
      for (int k = 0; k < 6; ++k) {
        const Shape s = random_shape(rng, 1, 4, 7);
        const int axis = static_cast<int>(rng.uniform_int(0, static_cast<int64_t>(s.size()) - 1));
        std::vector<int64_t> sizes;
        int64_t left = s[axis];
        while (left > 0) {
          sizes.push_back(rng.uniform_int(1, left));
          left -= sizes.back();
        }
        OpCase c;
        c.label = "x" + shape_str(s) + " dim " + std::to_string(axis) + " into " +
                  std::to_string(sizes.size());
        c.inputs = {rng.normal(s)};
        c.grad_inputs = {0};
        c.run = [sizes, axis](const std::vector<Tensor>& in) { return split(in[0], sizes, axis); };
        c.reference = [sizes, axis](const std::vector<Ref>& in) {
          std::vector<Ref> out;
          int64_t start = 0;
          for (int64_t size : sizes) {
            out.push_back(slice_ref(in[0], axis, start, start + size));
            start += size;
          }
          return out;
        };
        cases.push_back(std::move(c));
      }
      return cases;
    },
    [] {
      return std::vector<Malformed>{
          {"sizes do not add up",
           [] {
             split(Tensor::zeros({5}), {2, 2}, 0);
           },
           "add up"},
          {"negative size",
           [] {
             split(Tensor::zeros({5}), {6, -1}, 0);
           },
           "negative"},
          {"dimension out of range", [] { split(Tensor::zeros({5}), {5}, 1); }, "out of range"}};
    }});

// The GPU's block copies take the widest word that the addresses, rows and strides allow: rows of
// 1-, 2-, 4- and 8-byte elements, odd and even, sliced, joined and split, match the CPU exactly.
TEST(OpParityCuda, BlockCopiesOfEveryElementWidthMatchTheCpu) {
  if (!cuda_compiled()) GTEST_SKIP() << "built without CUDA: block copies not checked";
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: block copies not checked";
  CaseRng rng(11);
  for (const DType dtype : {DType::u8, DType::bf16, DType::f32, DType::i64}) {
    for (const int64_t width : {5, 8, 16}) {
      const Tensor x = rng.ints({7, 13, width}, 0, 100).to(dtype);
      const Tensor y = rng.ints({7, 13, 3}, 0, 100).to(dtype);
      const auto on_both = [&](const auto& op) {
        const Tensor cpu = op(x, y), gpu = op(x.to(Device::cuda(0)), y.to(Device::cuda(0)));
        EXPECT_EQ(gpu.to_vector(), cpu.to_vector())
            << dtype_name(dtype) << " width " << width << " " << shape_str(cpu.shape());
      };
      on_both([](const Tensor& a, const Tensor&) { return slice(a, 1, 3, 10); });
      on_both([](const Tensor& a, const Tensor&) { return slice(a, 2, 1, a.size(2)); });
      on_both([](const Tensor& a, const Tensor& b) { return concat({a, b}, 2); });
      on_both([](const Tensor& a, const Tensor& b) { return concat({b, a, b}, 2); });
      on_both([](const Tensor& a, const Tensor&) { return split(a, {1, a.size(2) - 1}, 2)[1]; });
    }
  }
}

}  // namespace
}  // namespace nuri::test
