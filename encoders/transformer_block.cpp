#include "encoders/transformer_block.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <utility>

#include "kernels/autograd.h"
#include "kernels/ops/activation.h"
#include "kernels/ops/conv.h"
#include "kernels/ops/elementwise.h"
#include "kernels/ops/linear.h"
#include "kernels/ops/norm.h"
#include "kernels/ops/shape.h"
#include "kernels/safetensors.h"

namespace nuri {

size_t ParameterList::add(const std::string& name, const Shape& shape, Init init) {
  for (const NamedParameter& p : parameters_) {
    NURI_CHECK(p.name != name, module_, ": parameter '", name, "' added twice");
  }
  Tensor tensor = Tensor::zeros(shape);
  tensor.set_requires_grad();
  parameters_.push_back({name, tensor});
  inits_.push_back(init);
  return parameters_.size() - 1;
}

Tensor& ParameterList::find(const std::string& name) {
  for (NamedParameter& p : parameters_) {
    if (p.name == name) return p.tensor;
  }
  fail(module_, ": no parameter named '", name, "'");
}

int64_t ParameterList::count() const {
  int64_t total = 0;
  for (const NamedParameter& p : parameters_) total += p.tensor.numel();
  return total;
}

void ParameterList::init(Generator& generator, float stddev) {
  NoGradScope no_grad;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    Tensor& tensor = parameters_[i].tensor;
    switch (inits_[i]) {
      case Init::normal:
        normal_(tensor, generator, 0.0f, stddev);
        break;
      case Init::fan_in:
        normal_(tensor, generator, 0.0f,
                1.0f / std::sqrt(static_cast<float>(tensor.numel() / tensor.size(0))));
        break;
      case Init::ones:
        tensor.copy_from(Tensor::ones(tensor.shape()));
        break;
      case Init::zeros:
        tensor.copy_from(Tensor::zeros(tensor.shape()));
        break;
    }
  }
}

void ParameterList::load(const std::string& path) {
  load_parameters(SafetensorsFile::open(path), parameters_, "this " + module_ + " config");
}

void ParameterList::save(const std::string& path) const {
  std::vector<std::pair<std::string, Tensor>> tensors;
  tensors.reserve(parameters_.size());
  for (const NamedParameter& p : parameters_) tensors.emplace_back(p.name, p.tensor.detach());
  save_safetensors(path, tensors, {{"format", "pt"}});
}

Linear Linear::add(ParameterList& params, const std::string& prefix, int64_t in, int64_t out) {
  Linear layer;
  layer.weight = params.add(prefix + ".weight", {out, in}, ParameterList::Init::normal);
  layer.bias = params.add(prefix + ".bias", {out}, ParameterList::Init::zeros);
  return layer;
}

Conv2d Conv2d::add(ParameterList& params, const std::string& prefix, int64_t in, int64_t out,
                   int64_t kernel) {
  NURI_CHECK(kernel > 0 && kernel % 2 == 1, prefix, ": kernel ", kernel, " must be odd");
  Conv2d conv;
  conv.weight =
      params.add(prefix + ".weight", {out, in, kernel, kernel}, ParameterList::Init::fan_in);
  conv.bias = params.add(prefix + ".bias", {out}, ParameterList::Init::zeros);
  conv.padding = kernel / 2;
  return conv;
}

Tensor Conv2d::forward(const ParameterList& params, const Tensor& x) const {
  return conv2d(x, params[weight], params[bias], {1, 1}, {padding, padding});
}

Tensor Linear::forward(const ParameterList& params, const Tensor& x) const {
  return linear(x, params[weight], params[bias]);
}

LayerNorm LayerNorm::add(ParameterList& params, const std::string& prefix, int64_t dim, float eps) {
  LayerNorm norm;
  norm.weight = params.add(prefix + ".weight", {dim}, ParameterList::Init::ones);
  norm.bias = params.add(prefix + ".bias", {dim}, ParameterList::Init::zeros);
  norm.eps = eps;
  return norm;
}

Tensor LayerNorm::forward(const ParameterList& params, const Tensor& x) const {
  return layer_norm(x, params[weight], params[bias], eps);
}

Mlp Mlp::add(ParameterList& params, const std::string& prefix, int64_t in, int64_t hidden,
             int64_t out) {
  Mlp mlp;
  mlp.fc1 = Linear::add(params, prefix + ".fc1", in, hidden);
  mlp.fc2 = Linear::add(params, prefix + ".fc2", hidden, out);
  return mlp;
}

Tensor Mlp::forward(const ParameterList& params, const Tensor& x) const {
  return fc2.forward(params, gelu(fc1.forward(params, x)));
}

Projector Projector::add(ParameterList& params, const std::string& prefix, int64_t in,
                         int64_t hidden, int64_t out) {
  Projector projector;
  projector.mlp = Mlp::add(params, prefix, in, hidden, out);
  projector.norm = params.add(prefix + ".norm.weight", {out}, ParameterList::Init::ones);
  return projector;
}

Tensor Projector::forward(const ParameterList& params, const Tensor& x,
                          const Tensor& context) const {
  Tensor y = mlp.forward(params, x);
  if (context.defined()) {
    const int64_t n = y.size(0), s = y.size(1), d = y.size(2);
    NURI_CHECK(context.dim() == 2 && context.size(0) == n && context.size(1) == d,
               "projector: context must be [", n, ", ", d, "], not ", shape_str(context.shape()));
    const Tensor row = reshape(context, {n, 1, d});
    y = nuri::add(y, concat(std::vector<Tensor>(static_cast<size_t>(s), row), 1));
  }
  return rms_norm(y, params[norm], eps);
}

std::pair<Tensor, Tensor> KeyValueBuffer::append(const Tensor& k, const Tensor& v) {
  NURI_CHECK(k.dim() == 4 && k.size(0) == 1 && v.shape() == k.shape(),
             "key/value buffer: expected keys and values [1, T, H, Dh] of one shape, got ",
             shape_str(k.shape()), " and ", shape_str(v.shape()));
  const int64_t t = k.size(1), h = k.size(2), d = k.size(3);
  if (keys_.defined()) {
    NURI_CHECK(keys_.size(1) == h && keys_.size(2) == d, "key/value buffer: keys of shape ",
               shape_str(k.shape()), " do not match the earlier [1, T, ", keys_.size(1), ", ",
               keys_.size(2), "]");
  }
  if (!keys_.defined() || length_ + t > keys_.size(0)) {
    const int64_t capacity =
        std::max<int64_t>(length_ + t, keys_.defined() ? 2 * keys_.size(0) : 0);
    Tensor keys = Tensor::empty({capacity, h, d}, k.dtype(), k.device());
    Tensor values = Tensor::empty({capacity, h, d}, v.dtype(), v.device());
    if (length_ > 0) {
      keys.outer_slice(0, length_).copy_from(keys_.outer_slice(0, length_));
      values.outer_slice(0, length_).copy_from(values_.outer_slice(0, length_));
    }
    keys_ = keys;
    values_ = values;
  }
  keys_.outer_slice(length_, length_ + t).copy_from(k.detach().view({t, h, d}));
  values_.outer_slice(length_, length_ + t).copy_from(v.detach().view({t, h, d}));
  length_ += t;
  return {keys_.outer_slice(0, length_).view({1, length_, h, d}),
          values_.outer_slice(0, length_).view({1, length_, h, d})};
}

TransformerBlock TransformerBlock::add(ParameterList& params, const std::string& prefix,
                                       int64_t dim, int64_t heads, int64_t intermediate,
                                       float eps) {
  TransformerBlock block;
  block.input_norm = LayerNorm::add(params, prefix + ".input_layernorm", dim, eps);
  block.q = Linear::add(params, prefix + ".self_attn.q_proj", dim, dim);
  block.k = Linear::add(params, prefix + ".self_attn.k_proj", dim, dim);
  block.v = Linear::add(params, prefix + ".self_attn.v_proj", dim, dim);
  block.o = Linear::add(params, prefix + ".self_attn.o_proj", dim, dim);
  block.post_attention_norm =
      LayerNorm::add(params, prefix + ".post_attention_layernorm", dim, eps);
  block.mlp = Mlp::add(params, prefix + ".mlp", dim, intermediate, dim);
  block.heads = heads;
  return block;
}

Tensor TransformerBlock::forward(const ParameterList& params, const Tensor& x,
                                 const Rotation& rotate, const AttentionOptions& attention_options,
                                 KeyValueBuffer* cache) const {
  const int64_t b = x.size(0), t = x.size(1), d = x.size(2), hd = d / heads;
  const Tensor h = input_norm.forward(params, x);
  const Tensor queries = rotate(reshape(q.forward(params, h), {b, t, heads, hd}));
  Tensor keys = rotate(reshape(k.forward(params, h), {b, t, heads, hd}));
  Tensor values = reshape(v.forward(params, h), {b, t, heads, hd});
  if (cache) std::tie(keys, values) = cache->append(keys, values);
  const Tensor a = attention(queries, keys, values, attention_options);
  const Tensor y = nuri::add(x, o.forward(params, reshape(a, {b, t, d})));
  return nuri::add(y, mlp.forward(params, post_attention_norm.forward(params, y)));
}

Tensor permute(const Tensor& x, const std::vector<int>& order) {
  NURI_CHECK(static_cast<int>(order.size()) == x.dim(), "permute: order of ", order.size(),
             " dimensions for a tensor of shape ", shape_str(x.shape()));
  std::vector<int> current(order.size());
  for (size_t i = 0; i < current.size(); ++i) current[i] = static_cast<int>(i);
  NURI_CHECK(std::is_permutation(order.begin(), order.end(), current.begin()),
             "permute: the order is not a permutation of 0..", x.dim() - 1);
  Tensor out = x;
  // Selection by swaps: after step i, dimension i holds x's dimension order[i].
  for (int i = 0; i < x.dim(); ++i) {
    const int j =
        static_cast<int>(std::find(current.begin(), current.end(), order[i]) - current.begin());
    if (j != i) {
      out = transpose(out, i, j);
      std::swap(current[i], current[j]);
    }
  }
  return out;
}

Tensor arange_i32(int64_t start, int64_t count) {
  NURI_CHECK(start >= 0 && count >= 0 && start + count <= INT32_MAX, "positions [", start, ", ",
             start + count, ") are not valid i32 positions");
  Tensor positions = Tensor::empty({count}, DType::i32);
  int32_t* p = positions.data<int32_t>();
  for (int64_t i = 0; i < count; ++i) p[i] = static_cast<int32_t>(start + i);
  return positions;
}

}  // namespace nuri
