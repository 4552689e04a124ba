// What the host is and what it can do, measured once; plans are keyed by its fingerprint.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "codegen/cuda/cuda_driver.hpp"
#include "codegen/isa.hpp"
#include "runtime/cpu_topology.hpp"

namespace mf {

// A measured rate: the best of `repeats` runs, and the spread (max - min) / max over those runs.
struct Measured {
    double value = 0;
    double spread = 0;
    int repeats = 0;
};

struct PeakSet {
    Measured one_core;
    Measured all_cores;
};

struct HostProfile {
    static constexpr int kSchema = 1;
    CpuIdentity cpu;
    IsaSet isa;
    bool amx_permitted = false;  // the OS granted AMX tile data to this process
    AmxPalette amx;
    CpuTopology topology;
    GpuQuery gpu;

    // ops/s (int8 multiply-adds count 2) and FLOP/s; measured with one thread per physical core.
    PeakSet amx_int8, amx_bf16, avx512_vnni_int8, avx512_fma_fp32;
    // The AMX peaks on random operands held in tiles: the unit's rate on real data, the compute side of the
    // kernels' roofline. Zero when not measured (older profiles).
    PeakSet amx_int8_random, amx_bf16_random;
    // Reference, not a peak: the L1-fed 2x2 loop on random data (PeakAmxDesc::reload), what a GEMM's inner loop
    // reaches when every operand tile is loaded from L1 before its products.
    PeakSet amx_int8_l1_loop, amx_bf16_l1_loop;
    std::vector<Measured> dram_read_per_node;  // bytes/s, index = position in topology.numa_nodes
    Measured dram_read_total;
    uint64_t dram_buffer_bytes = 0;

    std::string fingerprint;       // 16 hex digits of a hash over fingerprint_text
    std::string fingerprint_text;  // CPU model + ISA + topology, readable
    std::string captured_at;       // ISO-8601 UTC

    int worker_count() const { return int(topology.cores.size()); }
};

struct HostProfileOptions {
    bool measure = true;        // false: identity, ISA and topology only (fast; used by tests)
    double seconds_per_run = 0.05;
    int repeats = 5;
    uint64_t dram_buffer_bytes = 0;  // 0: max(1 GiB, 8 x LLC), capped by the node's free memory
};

using ProfileProgress = std::function<void(std::string_view stage, int done, int total)>;

HostProfile capture_host_profile(const HostProfileOptions& opt, const ProfileProgress& progress = {});

// Measures the random-operand AMX peaks and L1-fed loops of a profile that has none (one saved before they
// existed) on one thread per physical core; returns whether it measured anything.
bool add_random_amx_peaks(HostProfile& p, const HostProfileOptions& opt = {});

// The AMX compute peak (all cores) a roofline divides by: the random-operand figure when measured, else the
// zero-operand one.
const PeakSet& amx_roofline_peak(const HostProfile& p, bool bf16);

// Fills fingerprint/fingerprint_text from the identity, ISA and topology.
void compute_fingerprint(HostProfile& p);

nlohmann::json host_profile_to_json(const HostProfile& p);
HostProfile host_profile_from_json(const nlohmann::json& j);  // throws std::runtime_error naming the bad key
std::string render_host_profile(const HostProfile& p);         // the readable table

}  // namespace mf
