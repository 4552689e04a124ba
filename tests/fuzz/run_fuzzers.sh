#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded time: tests/fuzz/run_fuzzers.sh BUILD_DIR SECONDS
# BUILD_DIR must be configured with clang (cmake -S . -B BUILD_DIR -DCMAKE_CXX_COMPILER=clang++ ...); this builds
# the `fuzzers` target there, writes each fuzzer's seed corpus (make_fuzz_seeds) and runs it for SECONDS.
# Crashes leave their reproducer in BUILD_DIR/fuzz/artifacts/ and make the script fail.
set -euo pipefail
build=${1:?usage: run_fuzzers.sh BUILD_DIR SECONDS}
seconds=${2:?usage: run_fuzzers.sh BUILD_DIR SECONDS}
if ! grep -q 'CMAKE_CXX_COMPILER_ID:.*Clang' "$build/CMakeCache.txt" 2>/dev/null &&
   ! grep -qi 'clang' <(grep '^CMAKE_CXX_COMPILER:' "$build/CMakeCache.txt" 2>/dev/null); then
  echo "run_fuzzers.sh: $build is not a clang build; skipping the fuzzers"
  exit 0
fi
cmake --build "$build" --target fuzzers -j"$(nproc)" >/dev/null
out="$build/fuzz"
mkdir -p "$out/artifacts"
status=0
for fuzzer in "$out"/fuzz_*; do
  [ -x "$fuzzer" ] || continue
  name=$(basename "$fuzzer")
  corpus="$out/corpus/$name"
  "$out/make_fuzz_seeds" "$name" "$corpus"
  echo "run_fuzzers.sh: $name for ${seconds}s"
  if ! "$fuzzer" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -max_len=262144 \
      -artifact_prefix="$out/artifacts/$name-" -print_final_stats=1 "$corpus" > "$out/$name.log" 2>&1; then
    echo "run_fuzzers.sh: $name FAILED; see $out/$name.log and $out/artifacts/"
    tail -30 "$out/$name.log"
    status=1
  else
    grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$out/$name.log" | tr '\n' ' '
    echo
  fi
done
exit $status
