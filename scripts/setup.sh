#!/usr/bin/env bash
# Installs the Debian packages nuri needs; installs nothing that is already there, so it can be
# run any number of times. Options, in any order:
#   --with-peer    the peers the benchmarks compare against: PyTorch's CPU build (python3-torch) for
#                  bench/ops_vs_torch.py; SentencePiece and Node.js for bench/tokenizer_vs_peers.sh
#   --with-corpus  the documentation packages scripts/make-corpus.sh builds the text corpus from,
#                  and python3-lxml that extracts their text
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config git python3 clang-format
  libopenblas-openmp-dev   # GEMM; the OpenMP build cooperates with nuri's own OpenMP threads
  libcli11-dev             # command-line parsing
  nlohmann-json3-dev       # JSON (configs, safetensors headers)
  libgtest-dev             # tests
  libpcre2-dev             # the tokenizer's pre-tokenizer regex (Unicode properties, JIT)
  libutf8proc-dev          # NFC normalization
  libopencv-dev            # images (with the freetype module for Hangul text), the loss-curve PNG
  libsndfile1-dev          # wav, flac and ogg audio
  libavformat-dev libavcodec-dev libswresample-dev libswscale-dev libavutil-dev  # FFmpeg: mp3, m4a, opus, video
  libfftw3-dev             # the FFT under the log-mel front end
  espeak-ng libespeak-ng-dev fonts-nanum  # speech and Hangul text for the synthetic corpus
  ffmpeg                   # the command-line peer of the video benchmark and media test fixtures
  libopenmpi-dev openmpi-bin  # data-parallel training across processes (mpirun), the mpi tests
  slurmd slurmctld slurm-client munge  # the srun test's private one-node Slurm cluster
)
for option in "$@"; do
  case "$option" in
    --with-peer)
      packages+=(python3-torch python3-numpy sentencepiece libsentencepiece-dev)
      command -v node >/dev/null || packages+=(nodejs)
      command -v npm >/dev/null || packages+=(npm)
      ;;
    --with-corpus)
      packages+=(python3-lxml debian-faq-ko libreoffice-help-ko gimp-help-ko debian-faq
                 debian-reference-en "installation-guide-$(dpkg --print-architecture)")
      ;;
    *) echo "setup: unknown option $option (expected --with-peer, --with-corpus)" >&2; exit 2 ;;
  esac
done

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
