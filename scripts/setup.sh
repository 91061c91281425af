#!/usr/bin/env bash
# Installs the Debian packages nuri needs; installs nothing that is already there, so it can be
# run any number of times. With --with-peer it also installs PyTorch's CPU build (python3-torch),
# the peer that bench/ops_vs_torch.py compares against.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config git python3 clang-format
  libopenblas-openmp-dev   # GEMM; the OpenMP build cooperates with nuri's own OpenMP threads
  libcli11-dev             # command-line parsing
  nlohmann-json3-dev       # JSON (configs, safetensors headers)
  libgtest-dev             # tests
  libpcre2-dev             # the tokenizer's pre-tokenizer regex (Unicode properties, JIT)
  libutf8proc-dev          # NFC normalization
  libopencv-dev            # images, and the training loss-curve PNG
)
if [[ "${1:-}" == "--with-peer" ]]; then
  packages+=(python3-torch python3-numpy)
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
