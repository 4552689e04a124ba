// HostProfile <-> JSON, and the readable table `moeforge tune --host-only` prints.
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "tune/host_profile.hpp"

namespace mf {

using nlohmann::json;

static void to_json(json& j, const Measured& m) { j = {{"value", m.value}, {"spread", m.spread}, {"repeats", m.repeats}}; }
static void from_json(const json& j, Measured& m) {
    m.value = j.at("value").get<double>();
    m.spread = j.at("spread").get<double>();
    m.repeats = j.at("repeats").get<int>();
}
static void to_json(json& j, const PeakSet& p) { j = {{"one_core", p.one_core}, {"all_cores", p.all_cores}}; }
static void from_json(const json& j, PeakSet& p) {
    p.one_core = j.at("one_core").get<Measured>();
    p.all_cores = j.at("all_cores").get<Measured>();
}

json host_profile_to_json(const HostProfile& p) {
    const auto& t = p.topology;
    json cores = json::array(), caches = json::array(), nodes = json::array(), gpus = json::array(),
         per_node = json::array();
    for (const auto& c : t.cores) cores.push_back({{"package", c.package}, {"numa_node", c.numa_node}, {"pus", c.pus}});
    for (const auto& c : t.caches)
        caches.push_back({{"level", c.level}, {"bytes", c.bytes}, {"instances", c.instances},
                          {"pus_per_instance", c.pus_per_instance}});
    for (const auto& n : t.numa_nodes) nodes.push_back({{"id", n.id}, {"pus", n.pus}, {"memory_bytes", n.memory_bytes}});
    for (const auto& g : p.gpu.gpus)
        gpus.push_back({{"ordinal", g.ordinal}, {"name", g.name}, {"cc_major", g.cc_major}, {"cc_minor", g.cc_minor},
                        {"sms", g.sms}, {"memory_bytes", g.memory_bytes}, {"memory_clock_khz", g.memory_clock_khz},
                        {"memory_bus_bits", g.memory_bus_bits}});
    for (const auto& m : p.dram_read_per_node) per_node.push_back(m);
    const auto& a = p.amx;
    return {
        {"schema", HostProfile::kSchema},
        {"fingerprint", p.fingerprint},
        {"fingerprint_text", p.fingerprint_text},
        {"captured_at", p.captured_at},
        {"cpu", {{"vendor", p.cpu.vendor}, {"model_name", p.cpu.model_name}, {"family", p.cpu.family},
                 {"model", p.cpu.model}, {"stepping", p.cpu.stepping}}},
        {"isa", p.isa.names()},
        {"amx_int8", p.isa.has(IsaFeature::amx_int8) && p.amx_permitted},
        {"amx_bf16", p.isa.has(IsaFeature::amx_bf16) && p.amx_permitted},
        {"amx_permitted", p.amx_permitted},
        {"amx_palette", {{"id", a.id}, {"max_tiles", a.max_tiles}, {"bytes_per_tile", a.bytes_per_tile},
                         {"bytes_per_row", a.bytes_per_row}, {"max_rows", a.max_rows}, {"tmul_max_k", a.tmul_max_k},
                         {"tmul_max_n_bytes", a.tmul_max_n_bytes}}},
        {"topology", {{"packages", t.packages}, {"pus", t.pus}, {"cores", cores}, {"caches", caches},
                      {"numa_nodes", nodes}}},
        {"gpus", gpus},
        {"gpu_unavailable", p.gpu.unavailable},
        {"cuda_driver_version", p.gpu.driver_version},
        {"peaks", {{"amx_int8", p.amx_int8}, {"amx_bf16", p.amx_bf16}, {"avx512_vnni_int8", p.avx512_vnni_int8},
                   {"avx512_fma_fp32", p.avx512_fma_fp32}, {"amx_int8_random", p.amx_int8_random},
                   {"amx_bf16_random", p.amx_bf16_random}, {"amx_int8_l1_loop", p.amx_int8_l1_loop},
                   {"amx_bf16_l1_loop", p.amx_bf16_l1_loop}}},
        {"amx_int8_peak_ops", p.amx_int8.all_cores.value},
        {"amx_bf16_peak_flops", p.amx_bf16.all_cores.value},
        {"dram_read_bytes_per_s", p.dram_read_total.value},
        {"dram_read", {{"per_node", per_node}, {"total", p.dram_read_total}, {"buffer_bytes", p.dram_buffer_bytes}}},
    };
}

HostProfile host_profile_from_json(const json& j) {
    try {
        if (j.at("schema").get<int>() != HostProfile::kSchema)
            throw std::runtime_error(fmt::format("schema {} is not {}", j.at("schema").get<int>(), HostProfile::kSchema));
        HostProfile p;
        p.fingerprint = j.at("fingerprint").get<std::string>();
        p.fingerprint_text = j.at("fingerprint_text").get<std::string>();
        p.captured_at = j.at("captured_at").get<std::string>();
        const auto& cpu = j.at("cpu");
        p.cpu = {cpu.at("vendor").get<std::string>(), cpu.at("model_name").get<std::string>(),
                 cpu.at("family").get<int>(), cpu.at("model").get<int>(), cpu.at("stepping").get<int>()};
        p.isa = IsaSet::from_names(j.at("isa").get<std::vector<std::string>>());
        p.amx_permitted = j.at("amx_permitted").get<bool>();
        const auto& a = j.at("amx_palette");
        p.amx = {a.at("id").get<int>(), a.at("max_tiles").get<int>(), a.at("bytes_per_tile").get<int>(),
                 a.at("bytes_per_row").get<int>(), a.at("max_rows").get<int>(), a.at("tmul_max_k").get<int>(),
                 a.at("tmul_max_n_bytes").get<int>()};
        const auto& t = j.at("topology");
        p.topology.packages = t.at("packages").get<int>();
        p.topology.pus = t.at("pus").get<int>();
        for (const auto& c : t.at("cores"))
            p.topology.cores.push_back({c.at("package").get<int>(), c.at("numa_node").get<int>(),
                                        c.at("pus").get<std::vector<int>>()});
        for (const auto& c : t.at("caches"))
            p.topology.caches.push_back({c.at("level").get<int>(), c.at("bytes").get<uint64_t>(),
                                         c.at("instances").get<int>(), c.at("pus_per_instance").get<int>()});
        for (const auto& n : t.at("numa_nodes"))
            p.topology.numa_nodes.push_back({n.at("id").get<int>(), n.at("pus").get<std::vector<int>>(),
                                             n.at("memory_bytes").get<uint64_t>()});
        for (const auto& g : j.at("gpus"))
            p.gpu.gpus.push_back({g.at("ordinal").get<int>(), g.at("name").get<std::string>(),
                                  g.at("cc_major").get<int>(), g.at("cc_minor").get<int>(), g.at("sms").get<int>(),
                                  g.at("memory_bytes").get<uint64_t>(), g.at("memory_clock_khz").get<int>(),
                                  g.at("memory_bus_bits").get<int>()});
        p.gpu.unavailable = j.at("gpu_unavailable").get<std::string>();
        p.gpu.driver_version = j.at("cuda_driver_version").get<int>();
        const auto& pk = j.at("peaks");
        p.amx_int8 = pk.at("amx_int8").get<PeakSet>();
        p.amx_bf16 = pk.at("amx_bf16").get<PeakSet>();
        p.avx512_vnni_int8 = pk.at("avx512_vnni_int8").get<PeakSet>();
        p.avx512_fma_fp32 = pk.at("avx512_fma_fp32").get<PeakSet>();
        // Random-operand AMX peaks: absent from profiles saved before they were measured.
        if (pk.contains("amx_int8_random")) p.amx_int8_random = pk.at("amx_int8_random").get<PeakSet>();
        if (pk.contains("amx_bf16_random")) p.amx_bf16_random = pk.at("amx_bf16_random").get<PeakSet>();
        if (pk.contains("amx_int8_l1_loop")) p.amx_int8_l1_loop = pk.at("amx_int8_l1_loop").get<PeakSet>();
        if (pk.contains("amx_bf16_l1_loop")) p.amx_bf16_l1_loop = pk.at("amx_bf16_l1_loop").get<PeakSet>();
        const auto& d = j.at("dram_read");
        for (const auto& m : d.at("per_node")) p.dram_read_per_node.push_back(m.get<Measured>());
        p.dram_read_total = d.at("total").get<Measured>();
        p.dram_buffer_bytes = d.at("buffer_bytes").get<uint64_t>();
        return p;
    } catch (const json::exception& e) {
        throw std::runtime_error(std::string("host profile JSON: ") + e.what());
    }
}

namespace {

std::string human_bytes(uint64_t b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = double(b);
    int u = 0;
    while (v >= 1024 && u < 4) v /= 1024, ++u;
    return u == 0 ? fmt::format("{:.0f} {}", v, units[u]) : fmt::format("{:.1f} {}", v, units[u]);
}

std::string rate(const Measured& m, double scale, const char* unit) {
    if (m.repeats == 0) return "not measured";
    return fmt::format("{:9.2f} {}  (spread {:.1f}% over {} runs)", m.value / scale, unit, 100.0 * m.spread, m.repeats);
}

}  // namespace

std::string render_host_profile(const HostProfile& p) {
    std::string s;
    auto row = [&](std::string_view k, const std::string& v) { s += fmt::format("  {:<26} {}\n", k, v); };
    const auto& t = p.topology;
    s += "CPU\n";
    row("model", fmt::format("{} ({}, family {} model {} stepping {})", p.cpu.model_name, p.cpu.vendor,
                             p.cpu.family, p.cpu.model, p.cpu.stepping));
    std::string isa;
    for (const auto& n : p.isa.names()) isa += n + " ";
    row("ISA", isa);
    if (p.amx.id)
        row("AMX palette", fmt::format("{} tiles x {} rows x {} bytes; TMUL K {} rows; OS grants tile data: {}",
                                       p.amx.max_tiles, p.amx.max_rows, p.amx.bytes_per_row, p.amx.tmul_max_k,
                                       p.amx_permitted ? "yes" : "NO"));
    else
        row("AMX", "not available");
    bool smt = false;
    for (const auto& c : t.cores) smt |= c.pus.size() > 1;
    row("topology", fmt::format("{} socket(s), {} physical cores, {} hardware threads{}", t.packages, t.cores.size(),
                                t.pus, smt ? " (SMT: threads of a core share its AMX and FMA units)" : ""));
    for (const auto& c : t.caches)
        row(fmt::format("L{}{}", c.level, c.level == 1 ? "d" : ""),
            fmt::format("{} x {} (shared by {} thread(s))", c.instances, human_bytes(c.bytes), c.pus_per_instance));
    for (const auto& n : t.numa_nodes) {
        std::string pus;
        for (size_t i = 0; i < n.pus.size(); ++i) pus += (i ? "," : "") + std::to_string(n.pus[i]);
        row(fmt::format("NUMA node {}", n.id), fmt::format("{} memory, cpus {}", human_bytes(n.memory_bytes), pus));
    }
    s += "GPU\n";
    if (p.gpu.gpus.empty()) row("CUDA", p.gpu.unavailable);
    for (const auto& g : p.gpu.gpus)
        row(fmt::format("device {}", g.ordinal), fmt::format("{} (sm_{}{}, {} SMs, {})", g.name, g.cc_major,
                                                             g.cc_minor, g.sms, human_bytes(g.memory_bytes)));
    s += fmt::format("Measured peaks ({} worker threads, one per core; best of repeats)\n",
                     t.cores.size());
    auto peak = [&](std::string_view k, const PeakSet& ps, double scale, const char* unit) {
        row(fmt::format("{} 1 core", k), rate(ps.one_core, scale, unit));
        row(fmt::format("{} all cores", k), rate(ps.all_cores, scale, unit));
    };
    peak("AMX int8", p.amx_int8, 1e12, "TOPS");
    if (p.amx_int8_random.all_cores.value > 0) peak("AMX int8 random ops", p.amx_int8_random, 1e12, "TOPS");
    if (p.amx_int8_l1_loop.all_cores.value > 0)
        peak("AMX int8 L1-fed 2x2 loop (not a peak)", p.amx_int8_l1_loop, 1e12, "TOPS");
    peak("AMX bf16", p.amx_bf16, 1e12, "TFLOP/s");
    if (p.amx_bf16_random.all_cores.value > 0) peak("AMX bf16 random ops", p.amx_bf16_random, 1e12, "TFLOP/s");
    if (p.amx_bf16_l1_loop.all_cores.value > 0)
        peak("AMX bf16 L1-fed 2x2 loop (not a peak)", p.amx_bf16_l1_loop, 1e12, "TFLOP/s");
    peak("AVX-512 VNNI int8", p.avx512_vnni_int8, 1e12, "TOPS");
    peak("AVX-512 FMA fp32", p.avx512_fma_fp32, 1e12, "TFLOP/s");
    for (size_t i = 0; i < p.dram_read_per_node.size() && i < t.numa_nodes.size(); ++i)
        row(fmt::format("DRAM read, node {}", t.numa_nodes[i].id), rate(p.dram_read_per_node[i], 1e9, "GB/s"));
    row("DRAM read, total", rate(p.dram_read_total, 1e9, "GB/s") +
                                (p.dram_buffer_bytes ? fmt::format("  ({} buffer)", human_bytes(p.dram_buffer_bytes)) : ""));
    row("fingerprint", p.fingerprint);
    return s;
}

}  // namespace mf
