#!/usr/bin/env bash
# The main job on the embedded CPU default: sets up, builds, and runs the op benchmarks side by
# side with PyTorch's CPU build, printing the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-peer

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)" --target nuri nuri-bench-ops
build/bin/nuri --version
/usr/bin/python3 bench/ops_vs_torch.py --bench build/bin/nuri-bench-ops "$@"
