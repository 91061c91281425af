// The pieces the audio and vision encoders share: a named parameter list with initialisation and
// safetensors checkpoints, a 2-D convolution layer, a two-layer GELU MLP (block MLPs and the
// projectors to the decoder width), a pre-LayerNorm transformer block, a growable key/value buffer
// for streaming, and a permutation composed of transposes.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "kernels/ops/attention.h"
#include "kernels/ops/random.h"
#include "kernels/parameter.h"
#include "kernels/tensor.h"

namespace nuri {

// The parameters of one module in a fixed order, each f32 (made on the CPU; to() moves them) and
// requiring grad.
class ParameterList {
 public:
  // How init() fills a parameter: fan_in is Normal(0, 1 / sqrt(fan in)), the scale that keeps a
  // convolution's activations near unit size whatever its kernel and channels.
  enum class Init { normal, fan_in, ones, zeros };

  // `module` names the owner in error messages ("audio encoder").
  explicit ParameterList(std::string module) : module_(std::move(module)) {}

  // Appends a zero-filled parameter and returns its position.
  size_t add(const std::string& name, const Shape& shape, Init init);
  const Tensor& operator[](size_t index) const { return parameters_[index].tensor; }
  std::vector<NamedParameter>& all() { return parameters_; }
  const std::vector<NamedParameter>& all() const { return parameters_; }
  // The parameter called `name`; an unknown name is an error naming it.
  Tensor& find(const std::string& name);
  // Sum of the parameters' element counts.
  int64_t count() const;
  // Moves every parameter to `device`, and where they are (the CPU while the list is empty).
  void to(const Device& device) { move_parameters(parameters_, device); }
  Device device() const {
    return parameters_.empty() ? Device::cpu() : parameters_.front().tensor.device();
  }

  // Normal(0, stddev) for Init::normal, the fan-in scale for Init::fan_in, ones and zeros for the
  // others, drawn in list order.
  void init(Generator& generator, float stddev);
  // Reads every parameter from a safetensors file (f32, bf16 or f16 converted to f32). A missing,
  // extra, mis-shaped or non-floating tensor is an error naming it, raised before any parameter
  // is overwritten.
  void load(const std::string& path);
  // Writes every parameter to a safetensors file atomically.
  void save(const std::string& path) const;

 private:
  std::string module_;
  std::vector<NamedParameter> parameters_;
  std::vector<Init> inits_;
};

// A 2-D convolution with bias, stride 1 and "same" zero padding: positions of its weight
// [out, in, kernel, kernel] (fan-in initialised) and bias [out].
struct Conv2d {
  size_t weight = 0, bias = 0;
  int64_t padding = 0;

  // Adds `prefix`.weight and `prefix`.bias; `kernel` must be odd.
  static Conv2d add(ParameterList& params, const std::string& prefix, int64_t in, int64_t out,
                    int64_t kernel);
  // x [B, in, H, W] -> [B, out, H, W].
  Tensor forward(const ParameterList& params, const Tensor& x) const;
};

// A linear layer with bias: positions of its weight [out, in] and bias [out].
struct Linear {
  size_t weight = 0, bias = 0;

  // Adds `prefix`.weight and `prefix`.bias.
  static Linear add(ParameterList& params, const std::string& prefix, int64_t in, int64_t out);
  Tensor forward(const ParameterList& params, const Tensor& x) const;
};

// A LayerNorm with weight and bias [dim].
struct LayerNorm {
  size_t weight = 0, bias = 0;
  float eps = 1e-5f;

  // Adds `prefix`.weight (ones) and `prefix`.bias (zeros).
  static LayerNorm add(ParameterList& params, const std::string& prefix, int64_t dim, float eps);
  Tensor forward(const ParameterList& params, const Tensor& x) const;
};

// fc2(gelu(fc1(x))): the transformer MLP.
struct Mlp {
  Linear fc1, fc2;

  // Adds `prefix`.fc1 (in -> hidden) and `prefix`.fc2 (hidden -> out).
  static Mlp add(ParameterList& params, const std::string& prefix, int64_t in, int64_t hidden,
                 int64_t out);
  Tensor forward(const ParameterList& params, const Tensor& x) const;
};

// The projector to the decoder width: an Mlp whose output is RMS-normalised per token with a
// learned gain. The decoder normalises its inputs, so nothing else bounds an encoder token's
// scale; left free, training grows a shared component of every token until what the image or
// sound adds is a vanishing part of it. An optional context row per item (for example a summary
// of the whole image) is added to each of the item's tokens before the norm.
struct Projector {
  Mlp mlp;
  size_t norm = 0;
  float eps = 1e-6f;
  // Adds `prefix`.fc1, `prefix`.fc2 and `prefix`.norm.weight (ones).
  static Projector add(ParameterList& params, const std::string& prefix, int64_t in, int64_t hidden,
                       int64_t out);
  // x [N, S, in] -> [N, S, out]; context, when defined, is [N, out].
  Tensor forward(const ParameterList& params, const Tensor& x, const Tensor& context = {}) const;
};

// Keys and values of earlier inputs for one layer of a single stream (batch 1), grown by
// doubling so that appending a chunk copies only the chunk.
class KeyValueBuffer {
 public:
  // Appends k and v [1, T, H, Dh] and returns every key and value so far, [1, length, H, Dh].
  std::pair<Tensor, Tensor> append(const Tensor& k, const Tensor& v);
  int64_t length() const { return length_; }

 private:
  Tensor keys_, values_;  // [capacity, H, Dh]
  int64_t length_ = 0;
};

// Rotates queries or keys [B, T, H, Dh] by their positions (RoPE for audio, 2D RoPE for images).
using Rotation = std::function<Tensor(const Tensor&)>;

// A pre-LayerNorm transformer block with biased projections and a GELU MLP:
// x + o(attention(rot(q(ln1 x)), rot(k(ln1 x)), v(ln1 x))), then h + mlp(ln2 h).
struct TransformerBlock {
  LayerNorm input_norm, post_attention_norm;
  Linear q, k, v, o;
  Mlp mlp;
  int64_t heads = 1;

  // Adds `prefix`.{input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm,
  // mlp.fc1, mlp.fc2}.
  static TransformerBlock add(ParameterList& params, const std::string& prefix, int64_t dim,
                              int64_t heads, int64_t intermediate, float eps);
  // x [B, T, D] -> [B, T, D]. With a cache (batch 1, inference), the keys and values of x are
  // appended to it and the queries attend over everything it holds.
  Tensor forward(const ParameterList& params, const Tensor& x, const Rotation& rotate,
                 const AttentionOptions& attention_options, KeyValueBuffer* cache = nullptr) const;
};

// x with its dimensions reordered: dimension i of the result is dimension order[i] of x. Built
// from transposes, so it is differentiable and runs wherever transpose does.
Tensor permute(const Tensor& x, const std::vector<int>& order);

// i32 [count] holding start, start + 1, ...
Tensor arange_i32(int64_t start, int64_t count);

}  // namespace nuri
