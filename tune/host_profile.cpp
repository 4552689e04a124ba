#include "tune/host_profile.hpp"

#include <algorithm>
#include <ctime>

#include <fmt/format.h>

#include "tune/peak_bench.hpp"

namespace mf {
namespace {

uint64_t fnv1a64(std::string_view s) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

std::string utc_now_iso8601() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

uint64_t default_dram_buffer(const CpuTopology& topo) {
    const uint64_t gib = 1ull << 30;
    uint64_t bytes = std::max<uint64_t>(gib, 8 * topo.llc_bytes_total());
    // Never take more than a quarter of the smallest node's memory.
    for (const auto& n : topo.numa_nodes)
        if (n.memory_bytes) bytes = std::min(bytes, n.memory_bytes / 4);
    return bytes;
}

}  // namespace

void compute_fingerprint(HostProfile& p) {
    std::string isa;
    for (const auto& n : p.isa.names()) isa += (isa.empty() ? "" : ",") + n;
    const auto& t = p.topology;
    p.fingerprint_text = fmt::format("{} {} (family {} model {} stepping {}) | {} | {} socket(s), {} cores, {} threads, "
                                     "{} NUMA node(s)",
                                     p.cpu.vendor, p.cpu.model_name, p.cpu.family, p.cpu.model, p.cpu.stepping, isa,
                                     t.packages, t.cores.size(), t.pus, t.numa_nodes.size());
    p.fingerprint = fmt::format("{:016x}", fnv1a64(p.fingerprint_text));
}

HostProfile capture_host_profile(const HostProfileOptions& opt, const ProfileProgress& progress) {
    HostProfile p;
    p.cpu = read_cpu_identity();
    p.isa = detect_cpu_isa();
    p.amx = read_amx_palette();
    p.amx_permitted = p.isa.has(IsaFeature::amx_tile) && request_amx_permission();
    p.topology = read_cpu_topology();
    p.gpu = query_cuda_gpus();
    p.captured_at = utc_now_iso8601();
    compute_fingerprint(p);
    if (!opt.measure) return p;

    const bool amx = p.amx_permitted && p.isa.has(IsaFeature::amx_int8);
    const bool amx_bf16 = p.amx_permitted && p.isa.has(IsaFeature::amx_bf16);
    const bool vnni = p.isa.has(IsaFeature::avx512_vnni);
    const bool fma512 = p.isa.has(IsaFeature::avx512f);
    const int total = 1 + 3 * int(amx) + 3 * int(amx_bf16) + int(vnni) + int(fma512);
    int done = 0;
    auto step = [&](std::string_view what) {
        if (progress) progress(what, done, total);
        ++done;
    };
    const BenchTiming timing{opt.seconds_per_run, opt.repeats};
    {
        ThreadPool pool(p.topology.one_pu_per_core());
        if (amx) step("AMX int8 peak"), p.amx_int8 = measure_amx_peak(pool, AmxPeakDtype::int8, timing);
        if (amx) {
            step("AMX int8 peak, random operands");
            p.amx_int8_random = measure_amx_peak(pool, AmxPeakDtype::int8, timing, AmxPeakOperands::random);
            step("AMX int8 L1-fed 2x2 loop, random operands");
            p.amx_int8_l1_loop = measure_amx_peak(pool, AmxPeakDtype::int8, timing, AmxPeakOperands::random_reload);
        }
        if (amx_bf16) step("AMX bf16 peak"), p.amx_bf16 = measure_amx_peak(pool, AmxPeakDtype::bf16, timing);
        if (amx_bf16) {
            step("AMX bf16 peak, random operands");
            p.amx_bf16_random = measure_amx_peak(pool, AmxPeakDtype::bf16, timing, AmxPeakOperands::random);
            step("AMX bf16 L1-fed 2x2 loop, random operands");
            p.amx_bf16_l1_loop = measure_amx_peak(pool, AmxPeakDtype::bf16, timing, AmxPeakOperands::random_reload);
        }
        if (vnni)
            step("AVX-512 VNNI peak"), p.avx512_vnni_int8 = measure_avx512_peak(pool, Avx512PeakOp::vnni_int8, timing);
        if (fma512)
            step("AVX-512 FMA peak"), p.avx512_fma_fp32 = measure_avx512_peak(pool, Avx512PeakOp::fma_fp32, timing);
    }
    step("DRAM read bandwidth");
    const uint64_t buf = opt.dram_buffer_bytes ? opt.dram_buffer_bytes : default_dram_buffer(p.topology);
    DramReadResult dram = measure_dram_read(p.topology, buf, timing);
    p.dram_read_per_node = dram.per_node;
    p.dram_read_total = dram.total;
    p.dram_buffer_bytes = dram.buffer_bytes;
    if (progress) progress("done", total, total);
    return p;
}

bool add_random_amx_peaks(HostProfile& p, const HostProfileOptions& opt) {
    const bool int8 = p.amx_permitted && p.isa.has(IsaFeature::amx_int8) &&
                      (p.amx_int8_random.all_cores.value <= 0 || p.amx_int8_l1_loop.all_cores.value <= 0);
    const bool bf16 = p.amx_permitted && p.isa.has(IsaFeature::amx_bf16) &&
                      (p.amx_bf16_random.all_cores.value <= 0 || p.amx_bf16_l1_loop.all_cores.value <= 0);
    if (!int8 && !bf16) return false;
    const BenchTiming timing{opt.seconds_per_run, opt.repeats};
    ThreadPool pool(p.topology.one_pu_per_core());
    if (int8) {
        p.amx_int8_random = measure_amx_peak(pool, AmxPeakDtype::int8, timing, AmxPeakOperands::random);
        p.amx_int8_l1_loop = measure_amx_peak(pool, AmxPeakDtype::int8, timing, AmxPeakOperands::random_reload);
    }
    if (bf16) {
        p.amx_bf16_random = measure_amx_peak(pool, AmxPeakDtype::bf16, timing, AmxPeakOperands::random);
        p.amx_bf16_l1_loop = measure_amx_peak(pool, AmxPeakDtype::bf16, timing, AmxPeakOperands::random_reload);
    }
    return true;
}

const PeakSet& amx_roofline_peak(const HostProfile& p, bool bf16) {
    const PeakSet& random = bf16 ? p.amx_bf16_random : p.amx_int8_random;
    return random.all_cores.value > 0 ? random : bf16 ? p.amx_bf16 : p.amx_int8;
}

}  // namespace mf
