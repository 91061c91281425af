#!/usr/bin/env bash
# Bundles the build dependencies that a bare GPU machine lacks (it has the CUDA toolkit, cuDNN and
# NCCL, but no Debian -dev packages) into .gpu-deps/, laid out like /usr so that
# CMAKE_PREFIX_PATH=.gpu-deps finds them: OpenBLAS (with its Fortran runtime), CLI11,
# nlohmann/json, GoogleTest, PCRE2, utf8proc and FFTW (single precision). Run it here after scripts/setup.sh; scripts/gpu-check.sh uses it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=.gpu-deps
rm -rf "$out"
arch=x86_64-linux-gnu
mkdir -p "$out/include" "$out/lib/$arch/openblas-openmp" "$out/lib/$arch/cmake" "$out/share/cmake"

cp -r /usr/include/CLI /usr/include/nlohmann /usr/include/gtest /usr/include/gmock "$out/include/"
mkdir -p "$out/include/$arch"
cp -r "/usr/include/$arch/openblas-openmp" "$out/include/$arch/"
cp -r /usr/share/cmake/CLI11 /usr/share/cmake/nlohmann_json "$out/share/cmake/"
cp -r "/usr/lib/$arch/cmake/GTest" "$out/lib/$arch/cmake/"
cp "/usr/lib/$arch/"lib{gtest,gtest_main,gmock,gmock_main}.a "$out/lib/$arch/"
cp -L "/usr/lib/$arch/openblas-openmp/libopenblas.so.0" "$out/lib/$arch/openblas-openmp/"
ln -s libopenblas.so.0 "$out/lib/$arch/openblas-openmp/libopenblas.so"
cp /usr/include/pcre2.h /usr/include/utf8proc.h "$out/include/"
cp -L "/usr/lib/$arch/libpcre2-8.so" "$out/lib/$arch/libpcre2-8.so.0"
ln -s libpcre2-8.so.0 "$out/lib/$arch/libpcre2-8.so"
cp -L "/usr/lib/$arch/libutf8proc.so" "$out/lib/$arch/libutf8proc.so.2"
ln -s libutf8proc.so.2 "$out/lib/$arch/libutf8proc.so"
cp /usr/include/fftw3.h "$out/include/"
cp -L "/usr/lib/$arch/libfftw3f.so" "$out/lib/$arch/libfftw3f.so.3"
ln -s libfftw3f.so.3 "$out/lib/$arch/libfftw3f.so"
cp -L "/usr/lib/$arch/libgfortran.so.5" "/usr/lib/$arch/libquadmath.so.0" "$out/lib/$arch/"
du -sh "$out"
