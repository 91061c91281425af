// cuBLASLt GEMMs with f32 or bf16 inputs, f32 outputs and f32 accumulation. A row-major product C =
// op(A) op(B) is the column-major product C^T = op(B)^T op(A)^T, and a row-major matrix is its
// transpose read column-major, so B is passed as cuBLASLt's first operand and A as its second, each
// with its own transpose flag.
#include "kernels/cuda/blas.h"

#include <cublasLt.h>

#include <algorithm>
#include <array>
#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "kernels/cuda/check.h"
#include "kernels/cuda/map.cuh"

namespace nuri::cuda {

// cuBLAS statuses for NURI_CUDA_CHECK.
inline bool succeeded(cublasStatus_t status) {
  return status == CUBLAS_STATUS_SUCCESS;
}
inline const char* describe(cublasStatus_t status) {
  return cublasLtGetStatusString(status);
}

namespace {

// Workspace for cuBLASLt's algorithms: 32 MiB, what Hopper's kernels ask for.
constexpr size_t kWorkspaceBytes = 32u << 20;
constexpr int kMaxDevices = 64;

// One cuBLASLt handle and workspace per device, made on first use (under plan_mutex) and kept for
// the process.
struct DeviceBlas {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
};

DeviceBlas& device_blas() {
  static std::array<DeviceBlas, kMaxDevices> devices;
  int device = 0;
  NURI_CUDA_CHECK(cudaGetDevice(&device));
  NURI_CHECK(device < kMaxDevices, "cuBLASLt: device ", device, " beyond ", kMaxDevices);
  DeviceBlas& blas = devices[static_cast<size_t>(device)];
  // The workspace first: a handle is only set once the pair is whole.
  if (blas.workspace == nullptr) NURI_CUDA_CHECK(cudaMalloc(&blas.workspace, kWorkspaceBytes));
  if (blas.handle == nullptr) NURI_CUDA_CHECK(cublasLtCreate(&blas.handle));
  return blas;
}

// Owns a cuBLASLt descriptor and destroys it on every path out.
template <class T, cublasStatus_t (*Destroy)(T)>
struct Owned {
  T value = nullptr;
  ~Owned() {
    if (value != nullptr) Destroy(value);
  }
};
using OwnedLayout = Owned<cublasLtMatrixLayout_t, cublasLtMatrixLayoutDestroy>;
using OwnedDesc = Owned<cublasLtMatmulDesc_t, cublasLtMatmulDescDestroy>;
using OwnedPreference = Owned<cublasLtMatmulPreference_t, cublasLtMatmulPreferenceDestroy>;

// The largest power of two, up to 256, that divides the address: cuBLASLt's heuristic assumes
// 256-byte operands unless told, and slices of a tensor start anywhere.
uint32_t alignment_of(const void* pointer) {
  const auto address = reinterpret_cast<uintptr_t>(pointer);
  uint32_t alignment = 256;
  while (alignment > 1 && address % alignment != 0) alignment /= 2;
  return alignment;
}

// The alignment that every batch of an operand keeps: batch i starts `i * stride` elements of
// `element_bytes` past the first.
uint32_t batched_alignment(const void* pointer, int64_t batches, int64_t stride,
                           size_t element_bytes) {
  const uint32_t first = alignment_of(pointer);
  if (batches == 1 || stride == 0) return first;
  const auto step = static_cast<uintptr_t>(stride) * element_bytes;
  return std::min(first, alignment_of(reinterpret_cast<const void*>(step)));
}

// A column-major layout of `type` elements, rows x cols with leading dimension ld, batched at
// `stride`.
void make_layout(OwnedLayout& layout, cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld,
                 int64_t batches, int64_t stride) {
  NURI_CUDA_CHECK(cublasLtMatrixLayoutCreate(&layout.value, type, static_cast<uint64_t>(rows),
                                             static_cast<uint64_t>(cols), ld));
  if (batches == 1) return;
  const int32_t count = static_cast<int32_t>(batches);
  NURI_CUDA_CHECK(cublasLtMatrixLayoutSetAttribute(layout.value, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                   &count, sizeof(count)));
  NURI_CUDA_CHECK(cublasLtMatrixLayoutSetAttribute(
      layout.value, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
}

// C = beta C (+ bias) over m rows of n: the whole product when k = 0, and the bias after a GEMM
// that had no bias epilogue.
void scale_rows(int64_t m, int64_t n, float beta, float* c, int64_t ldc, int64_t batches,
                int64_t stride_c, const float* bias, int device) {
  launch_map(device, batches * m * n, [=] __device__(int64_t e) {
    const int64_t j = e % n, row = e / n % m, batch = e / (m * n);
    float& out = c[batch * stride_c + row * ldc + j];
    out = (beta == 0.0f ? 0.0f : beta * out) + (bias != nullptr ? bias[j] : 0.0f);
  });
}

// What fixes a GEMM's descriptors and algorithm: the device, the input type, the transposes,
// whether a bias is added, the extents, leading dimensions, batches and strides, and the operands'
// alignments.
struct PlanKey {
  int device;
  GemmInputs inputs;
  bool transpose_a, transpose_b, has_bias;
  std::array<int64_t, 10> extents;     // m, n, k, lda, ldb, ldc, batches, stride_a, _b, _c
  std::array<uint32_t, 3> alignments;  // of a, b and c
  auto operator<=>(const PlanKey&) const = default;
};

// The descriptors, layouts and heuristic algorithm of one PlanKey, made once and reused.
struct Plan {
  OwnedDesc desc;
  OwnedLayout first, second, out;
  cublasLtMatmulAlgo_t algo{};
};

constexpr size_t kMaxPlans = 4096;  // past this, the cache starts afresh (shapes seldom vary so)

std::mutex& plan_mutex() {
  static std::mutex mutex;
  return mutex;
}

// The plan for `key`, made on first use: the heuristic's first choice for these operands, or null
// when it has none (remembered too).
const Plan* plan_for(const PlanKey& key, cublasLtHandle_t handle) {
  static std::map<PlanKey, std::unique_ptr<Plan>> plans;
  if (const auto found = plans.find(key); found != plans.end()) return found->second.get();
  const auto [m, n, k, lda, ldb, ldc, batches, stride_a, stride_b, stride_c] = key.extents;
  auto plan = std::make_unique<Plan>();
  NURI_CUDA_CHECK(cublasLtMatmulDescCreate(&plan->desc.value, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t op_first = key.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_second = key.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  NURI_CUDA_CHECK(cublasLtMatmulDescSetAttribute(plan->desc.value, CUBLASLT_MATMUL_DESC_TRANSA,
                                                 &op_first, sizeof(op_first)));
  NURI_CUDA_CHECK(cublasLtMatmulDescSetAttribute(plan->desc.value, CUBLASLT_MATMUL_DESC_TRANSB,
                                                 &op_second, sizeof(op_second)));
  if (key.has_bias) {  // the bias runs along C^T's rows, which are C's columns
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    NURI_CUDA_CHECK(cublasLtMatmulDescSetAttribute(plan->desc.value, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                   &epilogue, sizeof(epilogue)));
  }
  // Column-major: the first operand is B's memory ([n, k] after its op), the second A's ([k, m]).
  const cudaDataType_t input_type = key.inputs == GemmInputs::bf16 ? CUDA_R_16BF : CUDA_R_32F;
  make_layout(plan->first, input_type, key.transpose_b ? k : n, key.transpose_b ? n : k, ldb,
              batches, stride_b);
  make_layout(plan->second, input_type, key.transpose_a ? m : k, key.transpose_a ? k : m, lda,
              batches, stride_a);
  make_layout(plan->out, CUDA_R_32F, n, m, ldc, batches, stride_c);
  OwnedPreference preference;
  NURI_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&preference.value));
  const uint64_t workspace_bytes = kWorkspaceBytes;
  NURI_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(preference.value,
                                                       CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                       &workspace_bytes, sizeof(workspace_bytes)));
  const auto [align_a, align_b, align_c] = key.alignments;
  const std::array<std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t>, 4> operands = {
      {{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_b},
       {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_a},
       {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_c},
       {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_c}}};
  for (const auto& [attribute, alignment] : operands) {
    NURI_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(preference.value, attribute, &alignment,
                                                         sizeof(alignment)));
  }
  cublasLtMatmulHeuristicResult_t choice{};
  int found = 0;
  // "No algorithm" comes back as NOT_SUPPORTED or as no result; other failures are errors.
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(
      handle, plan->desc.value, plan->first.value, plan->second.value, plan->out.value,
      plan->out.value, preference.value, 1, &choice, &found);
  if (status != CUBLAS_STATUS_NOT_SUPPORTED) NURI_CUDA_CHECK(status);
  if (status == CUBLAS_STATUS_SUCCESS && found > 0) {
    plan->algo = choice.algo;
  } else {
    plan.reset();
  }
  if (plans.size() >= kMaxPlans) plans.clear();
  return plans.emplace(key, std::move(plan)).first->second.get();
}

}  // namespace

void gemm(GemmInputs inputs, bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
          const void* a, int64_t lda, const void* b, int64_t ldb, float beta, float* c, int64_t ldc,
          int64_t batches, int64_t stride_a, int64_t stride_b, int64_t stride_c,
          const float* bias) {
  if (m == 0 || n == 0 || batches == 0) return;
  int device = 0;
  NURI_CUDA_CHECK(cudaGetDevice(&device));
  if (k == 0) return scale_rows(m, n, beta, c, ldc, batches, stride_c, bias, device);
  const size_t input_bytes = inputs == GemmInputs::bf16 ? 2 : 4;
  PlanKey key{device,
              inputs,
              transpose_a,
              transpose_b,
              bias != nullptr && alignment_of(bias) >= 16,  // the epilogue reads 16-byte vectors
              {m, n, k, lda, ldb, ldc, batches, stride_a, stride_b, stride_c},
              {batched_alignment(a, batches, stride_a, input_bytes),
               batched_alignment(b, batches, stride_b, input_bytes),
               batched_alignment(c, batches, stride_c, sizeof(float))}};
  std::lock_guard<std::mutex> lock(plan_mutex());
  DeviceBlas& blas = device_blas();
  const Plan* plan = plan_for(key, blas.handle);
  if (plan == nullptr && key.has_bias) {  // no fused algorithm: the bias is added after
    key.has_bias = false;
    plan = plan_for(key, blas.handle);
  }
  NURI_CHECK(plan != nullptr, "cuBLASLt: no algorithm for a ", m, "x", n, "x", k,
             inputs == GemmInputs::bf16 ? " bf16" : " f32", " GEMM (", batches, " batches)");
  if (key.has_bias) {  // the pointer changes from call to call; the epilogue is in the plan
    NURI_CUDA_CHECK(cublasLtMatmulDescSetAttribute(
        plan->desc.value, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  }
  const float alpha = 1.0f;
  NURI_CUDA_CHECK(cublasLtMatmul(blas.handle, plan->desc.value, &alpha, b, plan->first.value, a,
                                 plan->second.value, &beta, c, plan->out.value, c, plan->out.value,
                                 &plan->algo, blas.workspace, kWorkspaceBytes, nullptr));
  if (bias != nullptr && !key.has_bias)
    scale_rows(m, n, 1.0f, c, ldc, batches, stride_c, bias, device);
}

}  // namespace nuri::cuda
