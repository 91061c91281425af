// CUDA CTC loss (f32 logits), with the CPU kernel's recursions in log space and f64: the frames'
// logsumexp one block per frame; the forward (alpha) and backward (beta) lattices one block per
// item, its threads over the states of a frame and the frames in turn; the gradient one thread
// per logit, which finds the states that emit its class by binary search over the item's states
// ordered by class, and adds their posteriors in state order.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>
#include <vector>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/map.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/ops/ctc.h"

namespace nuri::cuda {
namespace {

// log(exp(a) + exp(b)), exact at -inf.
__device__ double log_add(double a, double b) {
  if (a == -INFINITY) return b;
  if (b == -INFINITY) return a;
  const double top = fmax(a, b);
  return top + log1p(exp(-fabs(a - b)));
}

// The items' lattices on the device. Item i has frames[i] frames and the blank-interleaved label
// sequence extended[first[i] .. first[i + 1]) of L_i states; its alpha and beta take
// frames[i] x L_i doubles from cell[i] on.
struct Lattices {
  const float* logits;  // [B, T, C]
  const float* lse;     // [B, T]
  int64_t t, c;
  const int64_t* frames;
  const int64_t* extended;
  const int64_t* first;
  const int64_t* cell;

  __device__ int64_t states(int64_t i) const { return first[i + 1] - first[i]; }
  __device__ int64_t label(int64_t i, int64_t s) const { return extended[first[i] + s]; }
  __device__ double log_prob(int64_t i, int64_t f, int64_t s) const {
    return static_cast<double>(logits[(i * t + f) * c + label(i, s)]) - lse[i * t + f];
  }
  // Whether state s may be entered from s - 2 (skipping a blank between different labels).
  __device__ bool can_skip(int64_t i, int64_t s) const {
    return s >= 2 && label(i, s) != label(i, 0) && label(i, s) != label(i, s - 2);
  }
};

// lse[b, f] = logsumexp(logits[b, f]) for f < frames[b].
__global__ void frame_lse_kernel(const float* logits, const int64_t* frames, int64_t b, int64_t t,
                                 int64_t c, float* lse) {
  for (int64_t r = blockIdx.x; r < b * t; r += gridDim.x) {
    if (r % t >= frames[r / t]) continue;  // uniform across the block
    const float* row = logits + r * c;
    float top = -INFINITY;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) top = fmaxf(top, row[j]);
    top = block_max(top);
    double total = 0;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) total += exp(double(row[j]) - top);
    total = block_sum(total);
    if (threadIdx.x == 0) lse[r] = static_cast<float>(top + log(total));
  }
}

// alpha of item blockIdx.x, frame by frame, and its -log p(labels) into nll.
__global__ void alpha_kernel(Lattices g, double* cells, double* nll) {
  const int64_t i = blockIdx.x, l = g.states(i), frames = g.frames[i];
  if (frames == 0) return;
  double* alpha = cells + g.cell[i];
  for (int64_t s = threadIdx.x; s < l; s += blockDim.x)
    alpha[s] = s < 2 ? g.log_prob(i, 0, s) : -INFINITY;
  __syncthreads();
  for (int64_t f = 1; f < frames; ++f) {
    const double* prev = alpha + (f - 1) * l;
    double* cur = alpha + f * l;
    for (int64_t s = threadIdx.x; s < l; s += blockDim.x) {
      double sum = prev[s];
      if (s >= 1) sum = log_add(sum, prev[s - 1]);
      if (g.can_skip(i, s)) sum = log_add(sum, prev[s - 2]);
      cur[s] = sum == -INFINITY ? -INFINITY : sum + g.log_prob(i, f, s);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const double* last = alpha + (frames - 1) * l;
    nll[i] = -(l > 1 ? log_add(last[l - 1], last[l - 2]) : last[0]);
  }
}

// beta of item blockIdx.x, from the last frame back.
__global__ void beta_kernel(Lattices g, double* cells) {
  const int64_t i = blockIdx.x, l = g.states(i), frames = g.frames[i];
  if (frames == 0) return;
  double* beta = cells + g.cell[i];
  for (int64_t s = threadIdx.x; s < l; s += blockDim.x)
    beta[(frames - 1) * l + s] = s >= l - 2 ? g.log_prob(i, frames - 1, s) : -INFINITY;
  __syncthreads();
  for (int64_t f = frames - 2; f >= 0; --f) {
    const double* next = beta + (f + 1) * l;
    double* cur = beta + f * l;
    for (int64_t s = threadIdx.x; s < l; s += blockDim.x) {
      double sum = next[s];
      if (s + 1 < l) sum = log_add(sum, next[s + 1]);
      if (s + 2 < l && g.can_skip(i, s + 2)) sum = log_add(sum, next[s + 2]);
      cur[s] = sum == -INFINITY ? -INFINITY : sum + g.log_prob(i, f, s);
    }
    __syncthreads();
  }
}

// A copy of `values` on `device`.
Tensor upload(const std::vector<int64_t>& values, const Device& device) {
  return Tensor::from_data(std::span<const int64_t>(values), {static_cast<int64_t>(values.size())})
      .to(device);
}

// The host side of one call: the lattices' index arrays on the device and the scratch for alpha
// (and beta) of every item.
struct DeviceLattices {
  Tensor frames, extended, first, cell, scratch;
  Lattices view;
  std::vector<int64_t> cells_of;               // host copy of cell, one more entry for the total
  std::vector<int64_t> extended_of, first_of;  // host copies of extended and first

  DeviceLattices(const Tensor& logits, const std::vector<std::vector<int64_t>>& labels,
                 const std::vector<int64_t>& input_lengths, int64_t blank, const Tensor& lse,
                 int copies) {
    const Device device = logits.device();
    std::vector<int64_t> ext, starts{0};
    cells_of.push_back(0);
    for (size_t i = 0; i < labels.size(); ++i) {
      ext.push_back(blank);
      for (int64_t label : labels[i]) {
        ext.push_back(label);
        ext.push_back(blank);
      }
      starts.push_back(static_cast<int64_t>(ext.size()));
      cells_of.push_back(cells_of.back() +
                         input_lengths[i] * (2 * static_cast<int64_t>(labels[i].size()) + 1));
    }
    frames = upload(input_lengths, device);
    extended = upload(ext, device);
    first = upload(starts, device);
    cell = upload(cells_of, device);
    extended_of = std::move(ext);
    first_of = std::move(starts);
    scratch =
        Tensor::empty({copies * std::max<int64_t>(cells_of.back(), 1) * 8}, DType::u8, device);
    view = {logits.data<float>(),  lse.data<float>(),      logits.size(1),
            logits.size(2),        frames.data<int64_t>(), extended.data<int64_t>(),
            first.data<int64_t>(), cell.data<int64_t>()};
  }
  double* cells(int copy) {
    return static_cast<double*>(scratch.raw_data()) + copy * std::max<int64_t>(cells_of.back(), 1);
  }
};

}  // namespace

void ctc_forward(const Tensor& logits, const std::vector<std::vector<int64_t>>& labels,
                 const std::vector<int64_t>& input_lengths, int64_t blank, Tensor& lse,
                 std::vector<double>& loss) {
  require_f32("ctc_loss", logits, "logits");
  const int64_t b = logits.size(0), t = logits.size(1), c = logits.size(2);
  NURI_CUDA_CHECK(cudaSetDevice(logits.device().index));
  loss.assign(static_cast<size_t>(b), 0.0);
  if (b == 0) return;
  DeviceLattices lattices(logits, labels, input_lengths, blank, lse, 1);
  if (t > 0) {
    frame_lse_kernel<<<row_blocks(b * t), kRowThreads>>>(
        logits.data<float>(), lattices.frames.data<int64_t>(), b, t, c, lse.data<float>());
    NURI_CUDA_CHECK_LAUNCH();
  }
  Tensor nll = Tensor::empty({b * 8}, DType::u8, logits.device());
  double* pn = static_cast<double*>(nll.raw_data());
  alpha_kernel<<<static_cast<unsigned>(b), kRowThreads>>>(lattices.view, lattices.cells(0), pn);
  NURI_CUDA_CHECK_LAUNCH();
  copy(logits.device().index, loss.data(), false, pn, true,
       static_cast<size_t>(b) * sizeof(double));
  for (int64_t i = 0; i < b; ++i) {  // only the empty label sequence has an (empty) alignment
    if (input_lengths[i] == 0) loss[i] = labels[i].empty() ? 0.0 : INFINITY;
  }
}

void ctc_backward(const Tensor& logits, const std::vector<std::vector<int64_t>>& labels,
                  const std::vector<int64_t>& input_lengths, int64_t blank, const Tensor& lse,
                  const std::vector<double>& loss, const std::vector<double>& scale,
                  Tensor& grad_logits) {
  require_f32("ctc_loss backward", logits, "logits");
  const int64_t b = logits.size(0), t = logits.size(1), c = logits.size(2);
  NURI_CUDA_CHECK(cudaSetDevice(logits.device().index));
  if (b == 0) return;
  DeviceLattices lattices(logits, labels, input_lengths, blank, lse, 2);
  Tensor nll = Tensor::empty({b * 8}, DType::u8, logits.device());
  alpha_kernel<<<static_cast<unsigned>(b), kRowThreads>>>(lattices.view, lattices.cells(0),
                                                          static_cast<double*>(nll.raw_data()));
  NURI_CUDA_CHECK_LAUNCH();
  beta_kernel<<<static_cast<unsigned>(b), kRowThreads>>>(lattices.view, lattices.cells(1));
  NURI_CUDA_CHECK_LAUNCH();
  // The per-item constants: log p(labels) and the scale (0 skips the item).
  std::vector<double> constants(static_cast<size_t>(2 * b));
  for (int64_t i = 0; i < b; ++i) {
    constants[i] = -loss[i];
    constants[b + i] = input_lengths[i] == 0 ? 0.0 : scale[i];
  }
  Tensor item_bytes = Tensor::empty({2 * b * 8}, DType::u8, logits.device());
  double* pc = static_cast<double*>(item_bytes.raw_data());
  copy(logits.device().index, pc, true, constants.data(), false, constants.size() * sizeof(double));
  // Each item's states ordered by the class they emit, then by state.
  std::vector<int64_t> by_class(lattices.extended_of.size());
  for (int64_t i = 0; i < b; ++i) {
    const auto begin = by_class.begin() + lattices.first_of[i];
    const auto end = by_class.begin() + lattices.first_of[i + 1];
    std::iota(begin, end, int64_t{0});
    const int64_t* labels_of = lattices.extended_of.data() + lattices.first_of[i];
    std::stable_sort(begin, end, [&](int64_t x, int64_t y) { return labels_of[x] < labels_of[y]; });
  }
  const Tensor sorted_states = upload(by_class, logits.device());
  const int64_t* sorted = sorted_states.data<int64_t>();
  const Lattices g = lattices.view;
  const double* alpha = lattices.cells(0);
  const double* beta = lattices.cells(1);
  float* pd = grad_logits.data<float>();
  launch_map(logits, b * t * c, [=] __device__(int64_t e) {
    const int64_t j = e % c, f = e / c % t, i = e / (c * t);
    const double item_scale = pc[b + i];
    if (item_scale == 0 || f >= g.frames[i]) {
      pd[e] = 0.0f;
      return;
    }
    // softmax minus the posterior of class j: alignments through a state at f that emits j,
    // the state's emission counted once.
    double gradient = exp(double(g.logits[e]) - g.lse[i * t + f]);
    const int64_t l = g.states(i);
    const int64_t* states = sorted + g.first[i];
    int64_t low = 0, high = l;  // the first of the item's states (by class) that emits j or more
    while (low < high) {
      const int64_t middle = (low + high) / 2;
      if (g.label(i, states[middle]) < j) {
        low = middle + 1;
      } else {
        high = middle;
      }
    }
    for (int64_t k = low; k < l && g.label(i, states[k]) == j; ++k) {
      const int64_t s = states[k];
      const double through = alpha[g.cell[i] + f * l + s] + beta[g.cell[i] + f * l + s];
      if (through == -INFINITY) continue;
      gradient -= exp(through - g.log_prob(i, f, s) - pc[i]);
    }
    pd[e] = static_cast<float>(item_scale * gradient);
  });
}

}  // namespace nuri::cuda
