#include <doctest/doctest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "tune/host_profile.hpp"

namespace {

std::string cpuinfo_field(const std::string& key) {
    std::ifstream f("/proc/cpuinfo");
    for (std::string line; std::getline(f, line);)
        if (line.rfind(key, 0) == 0 && line.find(':') != std::string::npos) {
            std::string v = line.substr(line.find(':') + 1);
            v.erase(0, v.find_first_not_of(" \t"));
            return v;
        }
    return {};
}

}  // namespace

TEST_CASE("host profile identity and topology agree with /proc/cpuinfo and sysconf") {
    mf::HostProfileOptions opt;
    opt.measure = false;
    const mf::HostProfile p = mf::capture_host_profile(opt);
    CHECK(p.cpu.vendor == cpuinfo_field("vendor_id"));
    CHECK(p.cpu.model_name == cpuinfo_field("model name"));
    CHECK(std::to_string(p.cpu.family) == cpuinfo_field("cpu family"));
    CHECK(std::to_string(p.cpu.model) == cpuinfo_field("model\t"));
    CHECK(std::to_string(p.cpu.stepping) == cpuinfo_field("stepping"));

    cpu_set_t allowed;
    sched_getaffinity(0, sizeof(allowed), &allowed);
    CHECK(p.topology.pus == CPU_COUNT(&allowed));
    CHECK(p.topology.pus <= sysconf(_SC_NPROCESSORS_ONLN));
    std::set<int> seen;
    for (const auto& c : p.topology.cores)
        for (int pu : c.pus) {
            CHECK(CPU_ISSET(pu, &allowed));
            CHECK(seen.insert(pu).second);  // a hardware thread belongs to exactly one core
        }
    CHECK(int(seen.size()) == p.topology.pus);
    const std::string siblings = cpuinfo_field("siblings"), cores = cpuinfo_field("cpu cores");
    if (!siblings.empty() && !cores.empty() && p.topology.packages == 1 && p.topology.pus == sysconf(_SC_NPROCESSORS_ONLN))
        CHECK(int(p.topology.cores.size()) == std::stoi(cores));
    REQUIRE_FALSE(p.topology.numa_nodes.empty());
    int numa_pus = 0;
    for (const auto& n : p.topology.numa_nodes) numa_pus += int(n.pus.size());
    CHECK(numa_pus >= p.topology.pus);
    for (const auto& c : p.topology.caches) {
        CHECK(c.bytes > 0);
        if (c.level == 1) CHECK(long(c.bytes) == sysconf(_SC_LEVEL1_DCACHE_SIZE));
    }
    CHECK(p.fingerprint.size() == 16);
}

TEST_CASE("fingerprint changes with the CPU model, the ISA and the core count, and not with measurements") {
    mf::HostProfileOptions opt;
    opt.measure = false;
    mf::HostProfile p = mf::capture_host_profile(opt);
    const std::string base = p.fingerprint;
    p.dram_read_total.value = 1e12;
    mf::compute_fingerprint(p);
    CHECK(p.fingerprint == base);
    mf::HostProfile q = p;
    q.cpu.model_name += " X";
    mf::compute_fingerprint(q);
    CHECK(q.fingerprint != base);
    q = p;
    q.isa.bits ^= 1u;
    mf::compute_fingerprint(q);
    CHECK(q.fingerprint != base);
    q = p;
    q.topology.cores.push_back(q.topology.cores.front());
    mf::compute_fingerprint(q);
    CHECK(q.fingerprint != base);
}

TEST_CASE("host profile JSON round-trips, keeps the keys scripts rely on, and names a missing key") {
    mf::HostProfileOptions opt;
    opt.seconds_per_run = 0.002;
    opt.repeats = 2;
    opt.dram_buffer_bytes = 64ull << 20;
    const mf::HostProfile p = mf::capture_host_profile(opt);
    const nlohmann::json j = mf::host_profile_to_json(p);
    for (const char* key : {"amx_int8", "amx_int8_peak_ops", "amx_bf16_peak_flops", "dram_read_bytes_per_s", "fingerprint"})
        CHECK(j.contains(key));
    CHECK(j["amx_int8"].is_boolean());
    CHECK(j["dram_read_bytes_per_s"].get<double>() > 0);
    if (j["amx_int8"].get<bool>()) CHECK(j["amx_int8_peak_ops"].get<double>() > 0);
    const mf::HostProfile back = mf::host_profile_from_json(nlohmann::json::parse(j.dump()));
    CHECK(mf::host_profile_to_json(back) == j);

    nlohmann::json broken = j;
    broken["topology"].erase("cores");
    CHECK_THROWS_WITH_AS(mf::host_profile_from_json(broken), doctest::Contains("cores"), std::runtime_error);
    broken = j;
    broken["schema"] = 99;
    CHECK_THROWS_AS(mf::host_profile_from_json(broken), std::runtime_error);
}

TEST_CASE("measured peaks are positive and bounded by what one core can physically do") {
    mf::HostProfileOptions opt;
    opt.seconds_per_run = 0.005;
    opt.repeats = 2;
    opt.dram_buffer_bytes = 64ull << 20;
    const mf::HostProfile p = mf::capture_host_profile(opt);
    const int cores = p.worker_count();
    if (p.amx_permitted && p.isa.has(mf::IsaFeature::amx_int8)) {
        // 1024 int8 MACs per cycle per core at under 6 GHz.
        CHECK(p.amx_int8.one_core.value > 0);
        CHECK(p.amx_int8.one_core.value < 2048 * 6e9);
        CHECK(p.amx_int8.all_cores.value < cores * 2048 * 6e9);
    }
    if (p.isa.has(mf::IsaFeature::avx512f)) {
        CHECK(p.avx512_fma_fp32.one_core.value > 0);
        CHECK(p.avx512_fma_fp32.one_core.value < 64 * 6e9);  // two 16-lane FMA ports
    }
    CHECK(p.dram_read_total.value > 1e8);
}
