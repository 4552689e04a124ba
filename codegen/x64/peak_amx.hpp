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
    std::string name() const;
    // Multiply-add operations (2 per MAC) done by one loop iteration.
    uint64_t ops_per_iter() const;
};

// A: two 16x64-byte tiles (rows m, K bytes); B: two 16x64-byte tiles in the VNNI layout (row k/4 or k/2);
// C: four 16x16 int32 (int8) or fp32 (bf16) tiles, C[2*i + j] = iters * A[i] x B[j].
struct PeakAmxArgs {
    const void* a;
    const void* b;
    void* c;
    uint64_t iters;
};

std::unique_ptr<JitKernel> make_peak_amx_kernel(const PeakAmxDesc& desc);

}  // namespace mf
