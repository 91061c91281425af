// Suite for attention: every mask, grouped-query heads, decoding against a longer key sequence,
// ragged blocks and custom scales, against a plain float64 softmax(q k^T * scale + mask) v.
#include "kernels/ops/attention.h"

#include <cmath>
#include <memory>

#include "kernels/autograd.h"
#include "tests/ops/harness.h"

namespace nuri::test {
namespace {

// Shapes and options of one case.
struct Spec {
  int64_t batch, tq, tk, hq, hkv, dim;
  AttentionOptions options;
};

std::string mask_label(const AttentionOptions& o) {
  switch (o.mask) {
    case AttentionMask::full:
      return "full";
    case AttentionMask::causal:
      return "causal";
    case AttentionMask::block_causal:
      return cat("block_causal(", o.block_size, ")");
  }
  return "?";
}

// Whether query row i (of tq, aligned to the end of tk keys) may see key j.
bool reference_visible(const AttentionOptions& o, int64_t tq, int64_t tk, int64_t i, int64_t j) {
  const int64_t p = tk - tq + i;
  switch (o.mask) {
    case AttentionMask::full:
      return true;
    case AttentionMask::causal:
      return j <= p;
    case AttentionMask::block_causal:
      return j / o.block_size <= p / o.block_size;
  }
  return false;
}

// softmax(q k^T * scale + mask) v, one query row at a time, in float64.
Ref reference_attention(const Ref& q, const Ref& k, const Ref& v, const AttentionOptions& o) {
  const int64_t batch = q.shape[0], tq = q.shape[1], hq = q.shape[2], dim = q.shape[3];
  const int64_t tk = k.shape[1], hkv = k.shape[2];
  const double scale =
      o.scale != 0 ? static_cast<double>(o.scale) : 1.0 / std::sqrt(static_cast<double>(dim));
  Ref out(q.shape);
  std::vector<double> weights(static_cast<size_t>(tk));
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < hq; ++h) {
      const int64_t kvh = h / (hq / hkv);
      for (int64_t i = 0; i < tq; ++i) {
        const int64_t qi = ((b * tq + i) * hq + h) * dim;
        double top = -INFINITY;
        for (int64_t j = 0; j < tk; ++j) {
          weights[j] = -INFINITY;
          if (!reference_visible(o, tq, tk, i, j)) continue;
          const int64_t kj = ((b * tk + j) * hkv + kvh) * dim;
          double dot = 0;
          for (int64_t d = 0; d < dim; ++d) dot += q[qi + d] * k[kj + d];
          weights[j] = dot * scale;
          top = std::max(top, weights[j]);
        }
        double total = 0;
        for (int64_t j = 0; j < tk; ++j) {
          weights[j] = std::exp(weights[j] - top);
          total += weights[j];
        }
        for (int64_t j = 0; j < tk; ++j) {
          const int64_t vj = ((b * tk + j) * hkv + kvh) * dim;
          for (int64_t d = 0; d < dim; ++d) out[qi + d] += weights[j] / total * v[vj + d];
        }
      }
    }
  }
  return out;
}

OpCase make_case(CaseRng& rng, const Spec& s) {
  OpCase c;
  c.label = cat("q", shape_str({s.batch, s.tq, s.hq, s.dim}), " kv",
                shape_str({s.batch, s.tk, s.hkv, s.dim}), " ", mask_label(s.options));
  if (s.options.scale != 0) c.label += cat(" scale=", s.options.scale);
  c.inputs = {rng.normal({s.batch, s.tq, s.hq, s.dim}), rng.normal({s.batch, s.tk, s.hkv, s.dim}),
              rng.normal({s.batch, s.tk, s.hkv, s.dim})};
  c.grad_inputs = {0, 1, 2};
  const AttentionOptions options = s.options;
  c.run = [options](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{attention(in[0], in[1], in[2], options)};
  };
  c.reference = [options](const std::vector<Ref>& in) {
    return std::vector<Ref>{reference_attention(in[0], in[1], in[2], options)};
  };
  return c;
}

AttentionOptions with_mask(AttentionMask mask, int64_t block_size = 0, float scale = 0) {
  AttentionOptions o;
  o.mask = mask;
  o.block_size = block_size;
  o.scale = scale;
  return o;
}

std::vector<OpCase> attention_cases(CaseRng& rng) {
  using M = AttentionMask;
  std::vector<Spec> specs;
  // Random self-attention shapes under each mask, with odd and size-1 extents.
  for (M mask : {M::causal, M::full, M::block_causal}) {
    for (int n = 0; n < 2; ++n) {
      const int64_t t = rng.dim(13);
      const int64_t hkv = rng.dim(2);
      const int64_t block = rng.uniform_int(1, 5);
      specs.push_back({rng.dim(2), t, t, hkv * rng.dim(3), hkv, rng.dim(8),
                       with_mask(mask, mask == M::block_causal ? block : 0)});
    }
  }
  // Grouped-query heads, including a single kv head shared by every query head.
  specs.push_back({2, 7, 7, 4, 2, 5, with_mask(M::causal)});
  specs.push_back({1, 9, 9, 3, 1, 4, with_mask(M::full)});
  specs.push_back({1, 11, 11, 6, 1, 3, with_mask(M::block_causal, 4)});
  // Decoding: fewer queries than keys, down to one query.
  specs.push_back({2, 3, 10, 2, 1, 6, with_mask(M::causal)});
  specs.push_back({1, 1, 7, 2, 2, 8, with_mask(M::causal)});
  specs.push_back({1, 1, 9, 3, 3, 5, with_mask(M::block_causal, 4)});
  specs.push_back({1, 5, 13, 2, 2, 3, with_mask(M::block_causal, 3)});
  specs.push_back({1, 1, 6, 2, 1, 7, with_mask(M::full)});
  // A full mask also allows more queries than keys.
  specs.push_back({1, 9, 4, 2, 2, 4, with_mask(M::full)});
  // Custom scales (a negative one flips which keys dominate).
  specs.push_back({1, 6, 6, 2, 2, 4, with_mask(M::causal, 0, 0.9f)});
  specs.push_back({2, 5, 8, 2, 1, 3, with_mask(M::full, 0, -0.45f)});
  specs.push_back({1, 10, 10, 1, 1, 5, with_mask(M::block_causal, 3, 0.25f)});
  // Longer sequences span several tiles of queries and keys, so the running softmax, the
  // skipping of hidden tiles and both backward schedules (one kv head takes the two passes on
  // two or more threads) are exercised.
  specs.push_back({1, 150, 150, 2, 1, 5, with_mask(M::causal)});
  specs.push_back({2, 260, 260, 2, 2, 2, with_mask(M::causal)});
  specs.push_back({2, 70, 133, 2, 2, 3, with_mask(M::full)});
  specs.push_back({1, 100, 141, 1, 1, 4, with_mask(M::block_causal, 37)});
  specs.push_back({1, 67, 300, 2, 1, 3, with_mask(M::causal)});
  // The first query that sees a key tile is the last row of a query tile (row 127).
  specs.push_back({1, 139, 140, 2, 1, 3, with_mask(M::causal)});
  specs.push_back({1, 140, 140, 1, 1, 3, with_mask(M::block_causal, 127)});

  std::vector<OpCase> cases;
  for (const Spec& s : specs) cases.push_back(make_case(rng, s));
  return cases;
}

// A tensor that claims to live on the GPU, over host memory nothing reads.
Tensor fake_cuda_tensor(const Shape& shape) {
  auto memory = std::make_shared<std::vector<float>>(static_cast<size_t>(shape_numel(shape)));
  auto storage =
      Storage::wrap(memory->data(), memory->size() * sizeof(float), Device::cuda(0), memory);
  return Tensor::from_storage(storage, 0, shape, DType::f32);
}

std::vector<Malformed> attention_malformed() {
  using M = AttentionMask;
  auto z = [](const Shape& s, DType dtype = DType::f32) { return Tensor::zeros(s, dtype); };
  return {
      {"q of rank 3",
       [z] {
         attention(z({2, 4, 8}), z({2, 4, 1, 8}), z({2, 4, 1, 8}));
       },
       "attention: q must have 4 dimensions"},
      {"k of rank 5",
       [z] {
         attention(z({1, 4, 2, 8}), z({1, 4, 2, 8, 1}), z({1, 4, 2, 8, 1}));
       },
       "attention: k must have 4 dimensions"},
      {"query heads not a multiple of kv heads",
       [z] {
         attention(z({1, 4, 3, 8}), z({1, 4, 2, 8}), z({1, 4, 2, 8}));
       },
       "attention: q has 3 heads, not a multiple of the 2 kv heads"},
      {"head dim mismatch",
       [z] {
         attention(z({1, 4, 2, 8}), z({1, 4, 2, 6}), z({1, 4, 2, 6}));
       },
       "attention: k has head dim 6 but q has head dim 8"},
      {"batch mismatch",
       [z] {
         attention(z({2, 4, 2, 8}), z({3, 4, 2, 8}), z({3, 4, 2, 8}));
       },
       "attention: k has batch 3 but q has batch 2"},
      {"k and v shapes differ",
       [z] {
         attention(z({1, 4, 2, 8}), z({1, 4, 2, 8}), z({1, 5, 2, 8}));
       },
       "attention: v has shape [1, 5, 2, 8], expected [1, 4, 2, 8]"},
      {"block_causal without a block size",
       [z] {
         attention(z({1, 4, 2, 8}), z({1, 4, 2, 8}), z({1, 4, 2, 8}),
                   with_mask(M::block_causal, 0));
       },
       "attention: block_causal needs a positive block_size, not 0"},
      {"block_causal with a negative block size",
       [z] {
         attention(z({1, 4, 2, 8}), z({1, 4, 2, 8}), z({1, 4, 2, 8}),
                   with_mask(M::block_causal, -3));
       },
       "not -3"},
      {"more queries than keys under a causal mask",
       [z] {
         attention(z({1, 5, 2, 8}), z({1, 4, 2, 8}), z({1, 4, 2, 8}));
       },
       "attention: a causal mask needs no more queries than keys, got 5 queries and 4 keys"},
      {"more queries than keys under a block-causal mask",
       [z] {
         attention(z({1, 6, 2, 8}), z({1, 4, 2, 8}), z({1, 4, 2, 8}),
                   with_mask(M::block_causal, 2));
       },
       "block_causal mask needs no more queries than keys"},
      {"no keys",
       [z] {
         attention(z({1, 0, 2, 8}), z({1, 0, 2, 8}), z({1, 0, 2, 8}));
       },
       "attention: k has no keys"},
      {"integer inputs",
       [z] {
         attention(z({1, 4, 2, 8}, DType::i32), z({1, 4, 2, 8}, DType::i32),
                   z({1, 4, 2, 8}, DType::i32));
       },
       "attention: q must be floating, not i32"},
      {"k of another dtype",
       [z] {
         attention(z({1, 4, 2, 8}), z({1, 4, 2, 8}, DType::bf16), z({1, 4, 2, 8}));
       },
       "attention: q is f32 but k is bf16"},
      {"v on another device",
       [z] {
         attention(z({1, 4, 2, 8}), z({1, 4, 2, 8}), fake_cuda_tensor({1, 4, 2, 8}));
       },
       "attention: q is on cpu but v is on cuda:0"},
      {"non-finite scale",
       [z] {
         attention(z({1, 4, 2, 8}), z({1, 4, 2, 8}), z({1, 4, 2, 8}),
                   with_mask(M::causal, 0, INFINITY));
       },
       "attention: scale must be finite"},
      {"bf16 on the CPU",
       [z] {
         attention(z({1, 4, 2, 8}, DType::bf16), z({1, 4, 2, 8}, DType::bf16),
                   z({1, 4, 2, 8}, DType::bf16));
       },
       "attention: the CPU kernel computes in f32, q is bf16"},
  };
}

NURI_OP_SUITE(OpSuite{"attention", attention_cases, attention_malformed});

}  // namespace
}  // namespace nuri::test
