#!/usr/bin/env bash
# The whole test suite from a clean clone: install what is missing, build, run every test through ctest,
# then the fuzzers for a bounded time. GPU tests skip here with a message; run them on a machine with a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
tools/install_deps.sh
[ -x tools/fetch_tokenizer.sh ] && tools/fetch_tokenizer.sh
tools/build.sh -DMOEFORGE_TESTS=ON
ctest --test-dir build --output-on-failure -j"$(nproc)"
if [ -x tests/fuzz/run_fuzzers.sh ] && command -v clang++ >/dev/null 2>&1; then
  cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang \
    >/dev/null
  tests/fuzz/run_fuzzers.sh build-fuzz "${MOEFORGE_FUZZ_SECONDS:-20}"
fi
echo "tools/test.sh: all tests passed in $(( $(date +%s) - start )) s"
