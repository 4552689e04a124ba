// Micro-benchmarks behind the host profile's peaks: each runs a JIT loop on one core, then on all workers at once.
#pragma once
#include <cstdint>

#include "codegen/x64/peak_amx.hpp"
#include "codegen/x64/peak_avx512.hpp"
#include "runtime/cpu_topology.hpp"
#include "runtime/thread_pool.hpp"
#include "tune/host_profile.hpp"

namespace mf {

struct BenchTiming {
    double seconds_per_run = 0.05;
    int repeats = 5;
};

// The TMUL loop on operands held in tiles, zero or random (the AMX peak); reload: the L1-fed 2x2 loop
// (PeakAmxDesc::reload, random operands reloaded before every product), a reference figure, not a peak.
enum class AmxPeakOperands { zero, random, random_reload };
PeakSet measure_amx_peak(ThreadPool& pool, AmxPeakDtype dtype, const BenchTiming& t,
                         AmxPeakOperands operands = AmxPeakOperands::zero);
PeakSet measure_avx512_peak(ThreadPool& pool, Avx512PeakOp op, const BenchTiming& t);

// Each worker of each pool streams its slice of a buffer placed on that pool's NUMA node; all pools run together:
// best of three software-prefetch distances (none, 1 KiB, 4 KiB ahead) and of the whole and half the buffer (when
// half is still >= max(1 GiB, 4 x LLC)).
// Returns the per-node figures (in pools order) and the total.
struct DramReadResult {
    std::vector<Measured> per_node;
    Measured total;
    uint64_t buffer_bytes = 0;
};
DramReadResult measure_dram_read(const CpuTopology& topo, uint64_t buffer_bytes, const BenchTiming& t);

}  // namespace mf
