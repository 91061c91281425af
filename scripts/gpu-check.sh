#!/usr/bin/env bash
# One call on a bare GPU machine: configure and build with ninja (media and MPI off, NCCL on when
# found), run the `cuda` tests (among them the NCCL communicator at world size 1), the GPU
# benchmarks and a kernel profile of a 124M training step, compute-sanitizer's memcheck and
# racecheck over the op parity tests, and the CPU unit tests; print a short table last.
# Full logs go to the folder named by $1 or $NURI_GPU_LOG_DIR (default: gpu-logs). NURI_COMMIT names
# the commit in the table where the copy on the GPU machine has no up-to-date git history.
# Dependencies missing there travel in .gpu-deps/ (made here by scripts/gpu-deps.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
logs=$(realpath -m "${1:-${NURI_GPU_LOG_DIR:-gpu-logs}}")
mkdir -p "$logs"
deps=$PWD/.gpu-deps
arch=x86_64-linux-gnu
export LD_LIBRARY_PATH="$deps/lib/$arch/openblas-openmp:$deps/lib/$arch:${LD_LIBRARY_PATH:-}"
export PATH="/usr/local/cuda/bin:$PATH"
export CMAKE_POLICY_VERSION_MINIMUM=3.5  # a CMake 4 there still reads the bundled older configs
build=build-gpu
# NCCL: the toolkit's, else the nvidia-nccl Python wheel's (include/ and lib/ beside each other).
if [[ ! -f /usr/local/cuda/include/nccl.h ]]; then
  nccl_home=$(python3 -c 'import nvidia.nccl as n; print(list(n.__path__)[0])' 2>/dev/null || true)
  if [[ -n $nccl_home && -f $nccl_home/include/nccl.h ]]; then
    export NCCL_HOME=$nccl_home LD_LIBRARY_PATH="$nccl_home/lib:$LD_LIBRARY_PATH"
  fi
fi
declare -A status

step() {  # step NAME LOGFILE COMMAND...: runs a step, records ok/FAILED and its seconds
  local name=$1 log=$2
  shift 2
  local start=$SECONDS
  if "$@" >"$logs/$log" 2>&1; then status[$name]="ok ($((SECONDS - start)) s)"; else status[$name]="FAILED ($((SECONDS - start)) s, see $log)"; fi
}

if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$logs/gpu.txt" 2>&1
else
  echo "no nvidia-smi on this machine" >"$logs/gpu.txt"
fi
step configure configure.log cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DNURI_MEDIA=OFF -DNURI_MPI=OFF -DCMAKE_PREFIX_PATH="$deps" -DCMAKE_CUDA_ARCHITECTURES="80;90"
step build build.log cmake --build "$build" -j "$(nproc)"
# Four at a time, 4 CPU threads each (some train a CPU reference beside the GPU run).
step cuda_tests ctest-cuda.log env OMP_NUM_THREADS=4 ctest --test-dir "$build" -L cuda -j 4 \
  --output-on-failure --timeout 120 --no-tests=error
step bench_gemm bench-gemm.log "$build/bin/nuri-bench-ops" --device cuda --filter "gpu linear" \
  --json "$logs/bench-gemm.json"
step bench_attention bench-attention.log python3 bench/attention_gpu_vs_torch.py \
  --bench "$build/bin/nuri-bench-ops" --json "$logs/bench-attention.json"
step bench_decoder bench-decoder.log python3 bench/decoder_gpu_vs_torch.py \
  --bench "$build/bin/nuri-bench-decoder" --steps 5 --json "$logs/bench-decoder.json"
# Where a 124M training step's time goes: each kernel's milliseconds under the kernel profiler.
step profile profile.log "$build/bin/nuri-bench-decoder" --device cuda --precision bf16 \
  --model 124m --steps 2 --breakdown
# compute-sanitizer over the op parity tests (it needs a runtime that exposes the GPU's debugger
# interface; where it cannot attach, the step fails and its log says why).
for tool in memcheck racecheck; do
  step "$tool" "sanitizer-$tool.log" timeout 120 compute-sanitizer --tool "$tool" --error-exitcode 1 \
    "$build/tests/nuri_op_tests" --gtest_filter='OpParityCuda.*'
done
# The CPU unit tests of this media-off build last: CI runs them too, so the GPU's steps come first.
step unit_tests ctest-unit.log timeout 240 ctest --test-dir "$build" -L unit -j 8 --timeout 200 \
  --no-tests=error --output-on-failure

summary() {  # the "N tests passed/failed" line of a ctest log, plus its skipped count
  local log=$logs/$1
  [[ -f $log ]] || { echo "-"; return; }
  local line skipped
  line=$(grep -E "tests passed" "$log" | tail -1)
  skipped=$(grep -c "(Skipped)" "$log")
  echo "${line:-no result}; skipped $skipped"
}

{
  echo "== nuri gpu-check $(date -u +%Y-%m-%dT%H:%MZ) commit ${NURI_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
  echo "gpu: $(cat "$logs/gpu.txt")"
  for name in configure build cuda_tests bench_gemm bench_attention bench_decoder profile memcheck \
    racecheck unit_tests; do printf '%-12s %s\n' "$name" "${status[$name]:-not run}"; done
  echo "nccl: $(grep -q '^NURI_NCCL:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null && echo "built (${NCCL_HOME:-toolkit})" || echo "not built")"
  echo "cuda tests: $(summary ctest-cuda.log)"
  echo "unit tests: $(summary ctest-unit.log)"
  grep -E "FAILED|Failed" "$logs/ctest-cuda.log" 2>/dev/null | head -20
  for log in bench-gemm bench-attention bench-decoder; do
    [[ -f $logs/$log.log ]] && sed -n '/^benchmark/,$p' "$logs/$log.log"
  done
  if [[ -f $logs/profile.log ]]; then  # the step, the 15 costliest kernels, and the host's share
    grep -E "train tokens/s|profiled step|outside kernels" "$logs/profile.log"
    grep -E " kernel " "$logs/profile.log" | head -15
  fi
} | tee "$logs/summary.txt"
