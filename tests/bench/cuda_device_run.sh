#!/bin/bash
# Builds test_codegen on the device machine, runs every CUDA test (GPU ones included) and the MLA decode
# benchmark. Usage (from the repository root): tests/bench/cuda_device_run.sh [xbyak include dir] [out dir]
# Logs go to the out dir (default ./cuda_run_logs); the benchmark table is printed last.
set -u
XBYAK=${1:-/usr/include}
OUT_DIR=${2:-cuda_run_logs}
mkdir -p "$OUT_DIR"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.limit --format=csv | tee "$OUT_DIR/gpu.txt"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DXBYAK_INCLUDE_DIR="$XBYAK" -DCMAKE_DISABLE_FIND_PACKAGE_zydis=ON \
    > "$OUT_DIR/cmake.log" 2>&1 || { tail -40 "$OUT_DIR/cmake.log"; exit 1; }
grep "moeforge:" "$OUT_DIR/cmake.log"
if ! make -C build -j16 test_codegen > "$OUT_DIR/make.log" 2>&1; then
    echo "== cmake build of test_codegen failed:"; grep -B3 -A10 -m5 "error" "$OUT_DIR/make.log" | head -60
    # Fallback: the CUDA sources and tests alone, straight through g++, so the GPU results still come in.
    echo "== building the CUDA tests alone with g++"
    INC=$(dirname "$(find /usr/local/cuda*/ /usr/include -name nvrtc.h 2>/dev/null | head -1)")
    LIB=$(dirname "$(find /usr/local/cuda*/ /usr/lib -name 'libnvrtc.so*' 2>/dev/null | head -1)")
    mkdir -p build/tests build/fallback
    cmake -DKERNEL_DIR=$PWD/codegen/cuda/kernels -DOUT=$PWD/build/fallback/embedded_cuda_headers.cpp -P codegen/cuda/embed.cmake
    g++ -std=c++20 -O2 -I. -I"$INC" -DMOEFORGE_HAVE_CUDA=1 -DMOEFORGE_CUDA_INCLUDE_DIR="\"$INC\"" \
        -DMOEFORGE_SOURCE_DIR="\"$PWD\"" -DMOEFORGE_BINARY_DIR="\"$PWD/build\"" tests/doctest_main.cpp \
        tests/codegen/test_cuda_*.cpp codegen/cuda/*.cpp build/fallback/embedded_cuda_headers.cpp \
        -L"$LIB" -Wl,-rpath,"$LIB" -lnvrtc -lfmt -ldl -pthread -o build/tests/test_codegen \
        > "$OUT_DIR/fallback.log" 2>&1 || { grep -m10 -A5 error "$OUT_DIR/fallback.log"; exit 1; }
fi
# one process per group, so a device fault in one cannot take the others with it
status=0
for tc in 'cuda nvrtc*,cuda embed*,cuda cubin*,cuda desc*,cuda mla:*,cuda rope:*,cuda dump*' 'cuda mla decode (GPU)*' \
          'cuda mla decode wgmma (GPU)*' 'cuda mla prefill (GPU)*' 'cuda rms_norm*,cuda rope (GPU)*,cuda router*,cuda glue*' 'cuda cublas*'; do
    log="$OUT_DIR/test_$(echo "$tc" | tr -c 'a-z0-9' '_' | cut -c1-40).log"
    timeout 300 ./build/tests/test_codegen -tc="$tc" > "$log" 2>&1
    rc=$?
    [ $rc -ne 0 ] && status=1
    echo "== [$tc] rc=$rc: $(grep -E '^\[doctest\] (test cases|assertions)' "$log" | tr '\n' ' ')"
    [ $rc -ne 0 ] && grep -E "ERROR|CHECK|REQUIRE|err :=|with expansion|exception|CAPTURE|label :=|  [a-z_]+ :=" "$log" | head -40
    grep -E "MESSAGE" "$log" | head -5
done
MOEFORGE_CUDA_BENCH=1 timeout 400 ./build/tests/test_codegen -tc='cuda bench*' > "$OUT_DIR/bench.log" 2>&1
echo "== bench rc=$?"
grep -vE "^\[doctest\]|^=+$|^$" "$OUT_DIR/bench.log"
exit $status
