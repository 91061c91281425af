#include "decoder/model.h"

#include <algorithm>
#include <optional>

#include "kernels/autograd.h"
#include "kernels/ops/activation.h"
#include "kernels/ops/attention.h"
#include "kernels/ops/cross_entropy.h"
#include "kernels/ops/elementwise.h"
#include "kernels/ops/embedding.h"
#include "kernels/ops/linear.h"
#include "kernels/ops/norm.h"
#include "kernels/ops/rope.h"
#include "kernels/ops/shape.h"
#include "kernels/safetensors.h"

namespace nuri {
namespace {

constexpr const char* kEmbed = "model.embed_tokens.weight";
constexpr const char* kLmHead = "lm_head.weight";

bool is_norm(const std::string& name) {
  return name.ends_with("norm.weight");
}

}  // namespace

Tensor position_ids(int64_t start, int64_t count) {
  NURI_CHECK(start >= 0 && count >= 0 && start + count <= INT32_MAX, "position_ids: positions [",
             start, ", ", start + count, ") are not valid i32 positions");
  Tensor positions = Tensor::empty({count}, DType::i32);
  int32_t* p = positions.data<int32_t>();
  for (int64_t i = 0; i < count; ++i) p[i] = static_cast<int32_t>(start + i);
  return positions;
}

Decoder::Decoder(const DecoderConfig& config) : config_(config) {
  config_.validate();
  const int64_t d = config_.hidden_size, hd = config_.resolved_head_dim();
  const int64_t q_out = config_.num_attention_heads * hd;
  const int64_t kv_out = config_.num_key_value_heads * hd;
  const int64_t inter = config_.intermediate_size;
  embed_ = add_parameter(kEmbed, {config_.vocab_size, d});
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i) {
    const std::string prefix = cat("model.layers.", i, ".");
    Block block{};
    block.input_norm = add_parameter(prefix + "input_layernorm.weight", {d});
    block.q = add_parameter(prefix + "self_attn.q_proj.weight", {q_out, d});
    block.k = add_parameter(prefix + "self_attn.k_proj.weight", {kv_out, d});
    block.v = add_parameter(prefix + "self_attn.v_proj.weight", {kv_out, d});
    block.o = add_parameter(prefix + "self_attn.o_proj.weight", {d, q_out});
    block.post_norm = add_parameter(prefix + "post_attention_layernorm.weight", {d});
    block.gate = add_parameter(prefix + "mlp.gate_proj.weight", {inter, d});
    block.up = add_parameter(prefix + "mlp.up_proj.weight", {inter, d});
    block.down = add_parameter(prefix + "mlp.down_proj.weight", {d, inter});
    blocks_.push_back(block);
  }
  norm_ = add_parameter("model.norm.weight", {d});
  lm_head_ = config_.tie_word_embeddings ? embed_ : add_parameter(kLmHead, {config_.vocab_size, d});
}

size_t Decoder::add_parameter(const std::string& name, const Shape& shape) {
  Tensor tensor = Tensor::zeros(shape);
  tensor.set_requires_grad();
  parameters_.push_back({name, tensor});
  return parameters_.size() - 1;
}

Tensor& Decoder::parameter(const std::string& name) {
  for (NamedParameter& p : parameters_) {
    if (p.name == name) return p.tensor;
  }
  if (name == kLmHead && config_.tie_word_embeddings) {
    fail("decoder: no parameter '", name, "': the output head is tied to ", kEmbed);
  }
  fail("decoder: no parameter named '", name, "'");
}

void Decoder::init(Generator& generator) {
  NoGradScope no_grad;
  for (NamedParameter& p : parameters_) {
    if (is_norm(p.name)) {
      p.tensor.copy_from(Tensor::ones(p.tensor.shape()));
    } else {
      normal_(p.tensor, generator, 0.0f, config_.initializer_range);
    }
  }
}

void Decoder::load(const std::string& safetensors_path) {
  const SafetensorsFile file = SafetensorsFile::open(safetensors_path);
  // Some writers store a tied head as a copy of the embeddings; accept it only when it is one.
  const auto tied_copy = [&](const std::string& name) {
    if (name != kLmHead || !config_.tie_word_embeddings) return false;
    const Tensor head = file.tensor(kLmHead);
    const Tensor embed = file.tensor(kEmbed);
    NURI_CHECK(head.shape() == embed.shape() && head.dtype() == embed.dtype() &&
                   std::equal(static_cast<const std::byte*>(head.raw_data()),
                              static_cast<const std::byte*>(head.raw_data()) + head.nbytes(),
                              static_cast<const std::byte*>(embed.raw_data())),
               safetensors_path, ": tensor '", kLmHead, "' differs from '", kEmbed,
               "' but the config ties them (tie_word_embeddings)");
    return true;
  };
  load_parameters(file, parameters_, "this decoder config", tied_copy);
}

void Decoder::save(const std::string& safetensors_path) const {
  std::vector<std::pair<std::string, Tensor>> tensors;
  tensors.reserve(parameters_.size());
  for (const NamedParameter& p : parameters_) tensors.emplace_back(p.name, p.tensor.detach());
  save_safetensors(safetensors_path, tensors, {{"format", "pt"}});
}

Tensor Decoder::embed(const Tensor& ids) const {
  NURI_CHECK(ids.dim() == 2, "decoder: ids must be [B, T], not ", shape_str(ids.shape()));
  return embedding(ids, at(embed_));  // host ids are checked where they are, then uploaded
}

Tensor Decoder::logits(const Tensor& hidden) const {
  return linear(hidden, at(lm_head_));
}

Tensor Decoder::forward_hidden(const Tensor& embeddings, const Tensor& positions,
                               KvCache* cache) const {
  NURI_CHECK(embeddings.dim() == 3 && embeddings.size(2) == config_.hidden_size,
             "decoder: embeddings must be [B, T, ", config_.hidden_size, "], not ",
             shape_str(embeddings.shape()));
  const int64_t b = embeddings.size(0), t = embeddings.size(1);
  const int64_t hq = config_.num_attention_heads, hkv = config_.num_key_value_heads;
  const int64_t hd = config_.resolved_head_dim();
  // A cached step is inference: the cache keeps no gradients, so nothing is recorded.
  std::optional<NoGradScope> no_grad;
  if (cache) {
    NURI_CHECK(cache->batch() == b, "decoder: the KV cache holds ", cache->batch(),
               " sequences but the input has batch ", b);
    NURI_CHECK(cache->length() + t <= cache->capacity(), "decoder: ", t,
               " new tokens do not fit the KV cache (", cache->length(), " of ", cache->capacity(),
               " used)");
    no_grad.emplace();
  }
  const float eps = config_.rms_norm_eps, theta = config_.rope_theta;
  const bool multimodal = config_.uses_mrope();
  const Tensor rotary_positions = positions.on(embeddings.device());
  NURI_CHECK(!multimodal || (positions.dim() >= 2 && positions.size(0) == 3),
             "decoder: a multimodal-RoPE model takes positions [3, T] or [3, B, T], not ",
             shape_str(positions.shape()));
  // Rotates queries or keys [B, T, H, Dh] by this model's rotary positions.
  const auto rotate = [&](const Tensor& x) {
    return multimodal ? mrope(x, rotary_positions, config_.mrope_section, theta)
                      : rope(x, rotary_positions, theta);
  };
  // Each residual add is fused with the norm that reads its sum (the block's post-attention norm,
  // then the next block's input norm or the final norm).
  Tensor x = embeddings;
  Tensor h = rms_norm(x, at(blocks_.empty() ? norm_ : blocks_.front().input_norm), eps);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Block& blk = blocks_[i];
    const Tensor q = rotate(reshape(linear(h, at(blk.q)), {b, t, hq, hd}));
    Tensor k = rotate(reshape(linear(h, at(blk.k)), {b, t, hkv, hd}));
    Tensor v = reshape(linear(h, at(blk.v)), {b, t, hkv, hd});
    if (cache) std::tie(k, v) = cache->append(static_cast<int>(i), k, v);
    const Tensor a = attention(q, k, v, {.mask = AttentionMask::causal});
    Tensor h2;
    std::tie(x, h2) =
        add_rms_norm(x, linear(reshape(a, {b, t, hq * hd}), at(blk.o)), at(blk.post_norm), eps);
    const Tensor mlp =
        linear(swiglu(linear(h2, at(blk.gate)), linear(h2, at(blk.up))), at(blk.down));
    const size_t next_norm = i + 1 < blocks_.size() ? blocks_[i + 1].input_norm : norm_;
    std::tie(x, h) = add_rms_norm(x, mlp, at(next_norm), eps);
  }
  if (cache) cache->commit(t);
  return h;
}

Tensor Decoder::forward(const Tensor& ids, KvCache* cache) const {
  std::optional<NoGradScope> no_grad;
  if (cache) no_grad.emplace();
  const Tensor embeddings = embed(ids);
  const int64_t start = cache ? cache->length() : 0, t = ids.size(1);
  NURI_CHECK(start + t <= config_.max_position_embeddings, "decoder: positions up to ",
             start + t - 1, " exceed max_position_embeddings ", config_.max_position_embeddings);
  Tensor positions = position_ids(start, t);
  // Text alone sits at equal temporal, height and width ids.
  if (config_.uses_mrope()) positions = concat({positions, positions, positions}, 0).view({3, t});
  return logits(forward_hidden(embeddings, positions, cache));
}

Tensor Decoder::loss(const Tensor& ids, const Tensor& targets) const {
  NURI_CHECK(targets.shape() == ids.shape(), "decoder loss: targets have shape ",
             shape_str(targets.shape()), " but ids have shape ", shape_str(ids.shape()));
  const Tensor out = forward(ids);
  return cross_entropy(reshape(out, {-1, config_.vocab_size}), targets.on(out.device()).view({-1}));
}

}  // namespace nuri
