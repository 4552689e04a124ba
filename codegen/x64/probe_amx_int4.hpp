// Micro-loops that time the pieces of the AMX int4 kernel's group step (gemm_amx_int4.cpp) on operands in L1, to
// show where its time goes and what a different K order would cost: one tdpbsud over K = 64 (int8's k step) or 32
// bytes (one int4 group of 32 k), the dot tile zeroed and stored, the per-group float step (AVX-512), the A and B
// tile loads. Not kernels for use: the timing harness lives in tests/codegen/test_amx_int4_probe.cpp.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "codegen/x64/jit_kernel.hpp"

namespace mf {

struct ProbeAmxInt4Desc {
    int k_bytes = 32;  // product depth: 64 or 32 (tile A 16 x k_bytes bytes, B k_bytes / 4 rows x 64 bytes)
    int loads = 0;     // A and B tiles loaded from L1 before each product (else loaded once)
    int product = 1;   // the step's tilezero + tdpbsud (0: the other parts alone)
    int store = 0;     // the step's C tile stored to L1
    // 0 none; 1 the int4 kernel's float step on the C tile stored two steps earlier: per row vcvtdq2ps, fma by the
    // scales, fnma of the mins by the row's broadcast group sum (16 accumulators in zmm); 2 the same without the
    // vcvtdq2ps (what dots that arrive as floats would need)
    int epilogue = 0;
    // 1: the step of a K order that merges the groups of a 256-k super block in integer (Q4_K's 6-bit sub-block
    // scales folded into the weights as two bytes, lo + 256 hi): two K = 64 products accumulate into two C tiles
    // across 4 steps, then both are stored and the float step runs once (per row: hi << 8 + lo, cvt, fma, fnma).
    // k_bytes must be 64; loads / store / epilogue are ignored.
    int superblock = 0;
    std::string name() const;
    // Multiply-adds (x2: ops) one step does.
    uint64_t ops_per_step() const;
};

// a: 2 KiB of A tiles (tile s % 2 at a + 1024 (s % 2)); b: 2 KiB of B tiles; c: 8 KiB scratch (C tile of step s at
// c + 1024 (s % 4); epilogue 2 also reads the second 4 KiB); gs: 16 floats (the rows' group sums); scale/min: 16
// floats each. Each iteration runs 4 steps.
// After the loop c holds the last 4 steps' tiles (product and store): C = A x B over k_bytes (superblock: the two
// accumulating tiles of the last super block, each 4 x A x B, at c and c + 1024).
struct ProbeAmxInt4Args {
    const void* a;
    const void* b;
    void* c;
    const float* gs;
    const float* scale;
    const float* min;
    uint64_t iters;
};

std::unique_ptr<JitKernel> make_probe_amx_int4(const ProbeAmxInt4Desc& desc);

}  // namespace mf
