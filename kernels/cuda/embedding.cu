// CUDA kernels of embedding: a row gather, and its adjoint as a deterministic scatter-add. The
// backward groups the positions by id on the host (group_by_id; the ids are few next to the
// gradient), then one thread per table element adds its rows in position order.
#include <span>
#include <vector>

#include "kernels/cuda/map.cuh"
#include "kernels/ops/embedding.h"

namespace nuri::cuda {

void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out) {
  require_f32("embedding", table, "table");
  const int64_t d = table.size(1);
  const bool wide = ids.dtype() == DType::i64;
  const int64_t* p64 = wide ? ids.data<int64_t>() : nullptr;
  const int32_t* p32 = wide ? nullptr : ids.data<int32_t>();
  const float* pt = table.data<float>();
  float* po = out.data<float>();
  launch_map(table, ids.numel() * d, [=] __device__(int64_t e) {
    const int64_t i = e / d;
    const int64_t id = wide ? p64[i] : p32[i];
    po[e] = pt[id * d + e % d];
  });
}

void embedding_backward(const Tensor& grad, const Tensor& ids, Tensor& grad_table) {
  require_f32("embedding backward", grad, "grad");
  const int64_t n = ids.numel(), rows = grad_table.size(0), d = grad_table.size(1);
  const std::vector<int64_t> id = ids.to_int_vector();
  const IdGroups groups = group_by_id(id.data(), n, rows);
  const Tensor starts =
      Tensor::from_data(std::span<const int64_t>(groups.start), {rows + 1}).to(grad_table.device());
  const Tensor positions =
      Tensor::from_data(std::span<const int64_t>(groups.order), {n}).to(grad_table.device());
  const int64_t* ps = starts.data<int64_t>();
  const int64_t* pp = n > 0 ? positions.data<int64_t>() : nullptr;
  const float* pg = grad.data<float>();
  float* po = grad_table.data<float>();
  launch_map(grad_table, rows * d, [=] __device__(int64_t e) {
    const int64_t v = e / d, c = e % d;
    double total = 0;
    for (int64_t j = ps[v]; j < ps[v + 1]; ++j) total += pg[pp[j] * d + c];
    po[e] = static_cast<float>(total);
  });
}

}  // namespace nuri::cuda
