#include "kernels/cpu/blas.h"

#include <cblas.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <climits>
#include <cstdlib>

#include "kernels/error.h"
#include "kernels/log.h"

namespace nuri::cpu {

void sgemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum: C = beta C (BLAS rejects the zero leading dimensions this needs)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  for (int64_t extent : {m, n, k, lda, ldb, ldc}) {
    NURI_CHECK(extent <= INT_MAX, "sgemm: extent ", extent, " exceeds the BLAS integer range");
  }
  cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans,
              transpose_b ? CblasTrans : CblasNoTrans, static_cast<blasint>(m),
              static_cast<blasint>(n), static_cast<blasint>(k), 1.0f, a, static_cast<blasint>(lda),
              b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}

std::string blas_core() {
  const char* name = openblas_get_corename();
  return name == nullptr ? std::string() : std::string(name);
}

std::string better_blas_core() {
#if defined(__x86_64__)
  // The families OpenBLAS falls back to on an x86-64 CPU it does not know, all without AVX2.
  static constexpr std::array<const char*, 6> kFallbacks = {"prescott",   "core2",   "penryn",
                                                            "dunnington", "nehalem", "sandybridge"};
  std::string core = blas_core();
  std::transform(core.begin(), core.end(), core.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (std::find(kFallbacks.begin(), kFallbacks.end(), core) == kFallbacks.end()) return "";
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return "";
}

void reexec_for_blas_core(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;  // the user's choice, or done already
  const std::string better = better_blas_core();
  if (better.empty()) return;
  // The program's own path, not /proc/self/exe, so that the process keeps its name (ps, pkill).
  std::array<char, PATH_MAX> path{};
  const ssize_t length = ::readlink("/proc/self/exe", path.data(), path.size() - 1);
  if (length <= 0) return;
  ::setenv("OPENBLAS_CORETYPE", better.c_str(), 1);
  ::execv(path.data(), argv);
  // Still here: the program runs on with OpenBLAS's own choice.
  log_warn("OpenBLAS chose its ", blas_core(), " kernels on this CPU, and running again with ",
           better, " failed; matrix products run several times slower");
}

}  // namespace nuri::cpu
