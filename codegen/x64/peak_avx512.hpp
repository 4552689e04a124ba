// Micro-kernels that saturate the AVX-512 VNNI (vpdpbusd) and FMA (vfmadd231ps) ports, for the host profile.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "codegen/x64/jit_kernel.hpp"

namespace mf {

enum class Avx512PeakOp { vnni_int8, fma_fp32 };

struct PeakAvx512Desc {
    Avx512PeakOp op = Avx512PeakOp::vnni_int8;
    int accumulators = 16;  // independent chains; must cover latency x ports
    std::string name() const;
    uint64_t ops_per_iter() const;
};

// a, b: one 64-byte vector each (u8/s8 for VNNI, fp32 for FMA). c: `accumulators` vectors of 16 x int32/fp32,
// each equal to iters * (a . b) lane-wise.
struct PeakAvx512Args {
    const void* a;
    const void* b;
    void* c;
    uint64_t iters;
};

std::unique_ptr<JitKernel> make_peak_avx512_kernel(const PeakAvx512Desc& desc);

}  // namespace mf
