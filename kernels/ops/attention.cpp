#include "kernels/ops/attention.h"

#include <cmath>

#include "kernels/autograd.h"
#include "kernels/ops/checks.h"
#include "kernels/ops/linear.h"

namespace nuri {
namespace {

constexpr const char* kOp = "attention";

const char* mask_name(AttentionMask mask) {
  switch (mask) {
    case AttentionMask::full:
      return "full";
    case AttentionMask::causal:
      return "causal";
    case AttentionMask::block_causal:
      return "block_causal";
  }
  return "unknown";
}

// Validates shapes, dtypes, devices and options; returns the options with the scale resolved.
AttentionOptions check_arguments(const Tensor& q, const Tensor& k, const Tensor& v,
                                 const AttentionOptions& options) {
  checks::floating(kOp, q, "q");
  checks::same_device_dtype(kOp, q, "q", k, "k");
  checks::same_device_dtype(kOp, q, "q", v, "v");
  checks::rank(kOp, q, "q", 4);
  checks::rank(kOp, k, "k", 4);
  checks::shape(kOp, v, "v", k.shape());
  const int64_t batch = q.size(0), tq = q.size(1), hq = q.size(2), dim = q.size(3);
  const int64_t tk = k.size(1), hkv = k.size(2);
  NURI_CHECK(k.size(0) == batch, kOp, ": k has batch ", k.size(0), " but q has batch ", batch,
             " (q ", shape_str(q.shape()), ", k ", shape_str(k.shape()), ")");
  NURI_CHECK(k.size(3) == dim, kOp, ": k has head dim ", k.size(3), " but q has head dim ", dim,
             " (q ", shape_str(q.shape()), ", k ", shape_str(k.shape()), ")");
  NURI_CHECK(dim > 0, kOp, ": head dim must be positive, q has shape ", shape_str(q.shape()));
  NURI_CHECK(hkv > 0, kOp, ": k has no heads, shape ", shape_str(k.shape()));
  NURI_CHECK(hq % hkv == 0, kOp, ": q has ", hq, " heads, not a multiple of the ", hkv,
             " kv heads of k");
  NURI_CHECK(tk > 0, kOp, ": k has no keys, shape ", shape_str(k.shape()));
  const AttentionMask mask = options.mask;
  NURI_CHECK(mask == AttentionMask::full || mask == AttentionMask::causal ||
                 mask == AttentionMask::block_causal,
             kOp, ": unknown mask ", static_cast<int>(mask));
  NURI_CHECK(mask != AttentionMask::block_causal || options.block_size > 0, kOp,
             ": block_causal needs a positive block_size, not ", options.block_size);
  NURI_CHECK(mask == AttentionMask::full || tq <= tk, kOp, ": a ", mask_name(mask),
             " mask needs no more queries than keys, got ", tq, " queries and ", tk,
             " keys (the first queries would see no key)");
  NURI_CHECK(std::isfinite(options.scale), kOp, ": scale must be finite, not ", options.scale);
  AttentionOptions resolved = options;
  if (resolved.scale == 0) resolved.scale = 1.0f / std::sqrt(static_cast<float>(dim));
  if (gemm_precision() == GemmPrecision::bf16 && q.dtype() == DType::f32)
    resolved.bf16_products = true;
  return resolved;
}

}  // namespace

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v,
                 const AttentionOptions& options) {
  const AttentionOptions resolved = check_arguments(q, k, v, options);
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  Tensor lse = Tensor::empty({q.size(0), q.size(2), q.size(1)}, DType::f32, q.device());
  NURI_DISPATCH(q.device(), attention_forward, q, k, v, resolved, out, lse);
  if (autograd::needed(q, k, v)) {
    const Tensor saved_q = q.detach(), saved_k = k.detach(), saved_v = v.detach();
    const Tensor saved_out = out.detach();
    autograd::record(
        kOp, {q, k, v}, {&out},
        [saved_q, saved_k, saved_v, saved_out, lse, resolved](const auto& grads,
                                                              const auto& needs) {
          const Tensor& grad_out = grads[0];
          Tensor grad_q = Tensor::empty(saved_q.shape(), grad_out.dtype(), grad_out.device());
          Tensor grad_k = Tensor::empty(saved_k.shape(), grad_out.dtype(), grad_out.device());
          Tensor grad_v = Tensor::empty(saved_v.shape(), grad_out.dtype(), grad_out.device());
          NURI_DISPATCH(grad_out.device(), attention_backward, grad_out, saved_q, saved_k, saved_v,
                        saved_out, lse, resolved, grad_q, grad_k, grad_v);
          return std::vector<Tensor>{needs[0] ? grad_q : Tensor(), needs[1] ? grad_k : Tensor(),
                                     needs[2] ? grad_v : Tensor()};
        });
  }
  return out;
}

Tensor rounded_to_bf16(const Tensor& t) {
  return t.to(DType::bf16).to(DType::f32);
}

AttentionOptions f32_products(AttentionOptions options) {
  options.bf16_products = false;
  return options;
}

}  // namespace nuri
