#!/usr/bin/env bash
# Sets up (scripts/setup.sh, given this script's arguments) and builds the Release `nuri` command
# into build/bin/, as the jobs that train and run models need it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "$@"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)" --target nuri
build/bin/nuri --version
