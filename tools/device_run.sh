#!/usr/bin/env bash
# What we run on the GPU device machine (no internet, no apt): Xbyak headers in .deps/xbyak, the tokenizer in
# .deps/cache (XDG_CACHE_HOME), oneDNN (Debian's libdnnl, headers + library + CMake config) in .deps/dnnl, all
# carried there by the device tool. Builds, then runs the steps given (default: tests), logs under $OUT:
#   tests         the whole ctest suite (GPU tests run there instead of skipping) + the host profile
#   cuda-bench    the MLA decode benchmark table (tests/bench/cuda_mla_decode_results.md; MOEFORGE_CUDA_BENCH_ONLY=a,b
#                 keeps the default and the configs whose name contains a or b); all of it, with the
#                 profile lines, in $OUT/cuda-bench.log
#   kernels       bench kernels, int8 and int4, with oneDNN side by side where it was found
#   kernels-cmp   int8 with session 1's tile defaults, int4 without its AMX path (same binary, for comparison)
#   hybrid-N      mkmodel v3-slice-N (q4_K experts), then bench --model hybrid and --cpu-only
#   gpu-tests     only the GPU cases, the hybrid runtime and the placement rules
#   tune-S        moeforge tune --budget S $TUNE_ARGS (CPU and GPU searches; report in $OUT/tune-report), then the plan's MLA
#                 decode kernels (kernel-dump)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-device-out}; mkdir -p "$out"
export XDG_CACHE_HOME="$PWD/.deps/cache"
dnnl=()
[[ -d .deps/dnnl ]] && dnnl=(-Ddnnl_DIR="$PWD/.deps/dnnl/lib/x86_64-linux-gnu/cmake/dnnl")
steps=("$@"); [[ ${#steps[@]} -eq 0 ]] && steps=(tests)
{
  echo "== machine $(date -u +%FT%TZ)"; nproc; free -g | head -2
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  echo "== configure + build"
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMOEFORGE_TESTS=ON -DXBYAK_INCLUDE_DIR="$PWD/.deps" \
    -DCMAKE_DISABLE_FIND_PACKAGE_zydis=ON "${dnnl[@]}" 2>&1 | grep -E "moeforge|Error|error|Could not"
  cmake --build build -j"$(nproc)" 2>&1 | grep -E "error|Error" | head -40
  build/moeforge tune --host-only --json > "$out/host-profile.json" 2>/dev/null
  for step in "${steps[@]}"; do
    echo "== $step $(date -u +%T)"
    case "$step" in
      gpu-tests)  # the GPU cases and the hybrid runtime only
        ctest --test-dir build --output-on-failure -j4 -R "GPU|hybrid|placement|mla search|kernel-dump" 2>&1 | tail -30
        ./build/tests/test_runtime -tc='hybrid*' 2>&1 | grep -E "MESSAGE|cosine|GPU|runtime|passed|failed" | head -40 ;;
      tests)
        ctest --test-dir build --output-on-failure -j8 2>&1 | tail -60
        ./build/tests/test_runtime -tc='hybrid*' 2>&1 | grep -E "MESSAGE|cosine|GPU|runtime|passed|failed" | head -40 ;;
      cuda-bench)
        MOEFORGE_CUDA_BENCH=1 ./build/tests/test_codegen -tc='cuda bench*' > "$out/cuda-bench.log" 2>&1
        grep -v '^<!-- profile' "$out/cuda-bench.log" | tail -80 ;;
      kernels)
        build/moeforge tune --host-only
        build/moeforge bench kernels --wtype int8 --peer onednn 2>&1
        build/moeforge bench kernels --wtype int4 2>&1 ;;
      kernels-cmp)  # the defaults of session 1 (1x2 tiles, mn) and the GEMV-only int4 path, same binary
        build/moeforge bench kernels --wtype int8 --m 64,256,1024 --config '{"m_tiles":1,"n_tiles":2,"order":"mn"}' 2>&1 | tail -5
        build/moeforge bench kernels --wtype int4 --m 64,256,1024 --config '{"int4_amx_min_m":0}' 2>&1 | tail -5 ;;
      hybrid-*)
        n=${step#hybrid-}; dir=/tmp/moeforge-slice
        [[ -f $dir/v3-slice-$n.gguf ]] || build/moeforge mkmodel --preset "v3-slice-$n" --wtype q4_k --format gguf \
          --out "$dir" 2>&1 | tail -2
        build/moeforge bench --model "$dir/v3-slice-$n.gguf" --prompt-len 128,512 --gen 32 2>&1 | tail -25
        build/moeforge bench --model "$dir/v3-slice-$n.gguf" --prompt-len 128,512 --gen 32 --cpu-only \
          2>&1 | tail -25 ;;
      tune-*)
        build/moeforge tune --budget "${step#tune-}" --out "$out/tune-report" ${TUNE_ARGS:-} 2>&1 | tail -40
        build/moeforge kernel-dump --cuda --filter mla_decode 2>&1 | head -12 ;;
      *) echo "unknown step $step" ;;
    esac
  done
  echo "== done $(date -u +%T)"
} 2>&1 | tee "$out/device.log"
