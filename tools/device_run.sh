#!/usr/bin/env bash
# What we run on the GPU device machine (no internet, no apt; Xbyak headers carried in .deps/xbyak):
# build, the whole test suite (GPU tests run there instead of skipping), the host profile, and the benchmarks
# given as arguments (e.g. "kernels"). Logs go to $OUT (or ./device-out).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-device-out}; mkdir -p "$out"
{
  echo "== machine"; nproc; free -g | head -2; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  echo "== configure + build"
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DXBYAK_INCLUDE_DIR="$PWD/.deps" -DCMAKE_DISABLE_FIND_PACKAGE_zydis=ON \
    2>&1 | grep -E "moeforge|Error|error|Could not" ; cmake --build build -j"$(nproc)" 2>&1 | grep -E "error|Error|warning: unused" | head -40
  echo "== tests"; ctest --test-dir build --output-on-failure -j4 2>&1 | tail -40
  echo "== host profile"; build/moeforge tune --host-only --json > "$out/host-profile.json"
  build/moeforge tune --host-only
  for b in "$@"; do echo "== bench $b"; build/moeforge bench $b; done
} 2>&1 | tee "$out/device.log"
