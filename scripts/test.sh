#!/usr/bin/env bash
# Sets up, builds and runs every test: the Release build (with CUDA sources compiled when nvcc is
# present; `cuda` tests skip visibly without a GPU), then the unit tests again under
# AddressSanitizer and UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure

# -O1 with line tables: the sanitizers' reports keep file and line, and the build takes less than
# half as long as at -O2 with full debug information.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DNURI_SANITIZE=ON -DNURI_CUDA=OFF \
  -DNURI_BENCH=OFF
cmake --build build-asan -j "$jobs"
ctest --test-dir build-asan --output-on-failure -L unit
