// Micro-kernel that keeps the AMX tile multiplier busy, for the host profile's measured peak.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "codegen/x64/jit_kernel.hpp"

namespace mf {

enum class AmxPeakDtype { int8, bf16 };

struct PeakAmxDesc {
    AmxPeakDtype dtype = AmxPeakDtype::int8;
    // false: the operand tiles are loaded once and multiplied over and over (the TMUL's own limit; with zero
    // operands, as the host profile ran it first, the highest figure the hardware shows).
    // true: every product reads freshly loaded operands, as any GEMM does: each iteration walks 4 pairs of A
    // tiles and 4 pairs of B tiles (8 KiB each, L1-resident) in the 2x2 order of the expert GEMM. On random data
    // this is the honest peak for real operands (measured ~17-20% below the zero-operand figure).
    bool reload = false;
    std::string name() const;
    // Multiply-add operations (2 per MAC) done by one loop iteration.
    uint64_t ops_per_iter() const;
};

// A: two 16x64-byte tiles (rows m, K bytes); B: two 16x64-byte tiles in the VNNI layout (row k/4 or k/2);
// C: four 16x16 int32 (int8) or fp32 (bf16) tiles, C[2*i + j] = iters * A[i] x B[j].
// reload: A and B hold 4 such pairs each (8 KiB); C[2*i + j] = iters * sum_u A_u[i] x B_u[j].
struct PeakAmxArgs {
    const void* a;
    const void* b;
    void* c;
    uint64_t iters;
};

std::unique_ptr<JitKernel> make_peak_amx_kernel(const PeakAmxDesc& desc);

}  // namespace mf
