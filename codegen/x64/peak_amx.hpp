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
    // false: the operand tiles are loaded once and multiplied over and over: the AMX unit's own rate (the peak;
    // on random operands it is the honest one for real data, zeros run faster on some hosts).
    // true: not a peak but a reference loop: every product reads freshly loaded operands from L1, as a GEMM's
    // inner loop does; each iteration walks 4 pairs of A tiles and 4 pairs of B tiles (8 KiB each) in the 2x2
    // order of the expert GEMM ("L1-fed 2x2 loop").
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
