#include <doctest/doctest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "codegen/isa.hpp"

namespace {

std::set<std::string> proc_cpuinfo_flags() {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("flags", 0) == 0) {
            std::istringstream ss(line.substr(line.find(':') + 1));
            std::set<std::string> flags;
            for (std::string w; ss >> w;) flags.insert(w);
            return flags;
        }
    return {};
}

}  // namespace

TEST_CASE("CPUID features agree with the kernel's /proc/cpuinfo flags") {
    const auto flags = proc_cpuinfo_flags();
    if (flags.empty()) {
        MESSAGE("skipped: /proc/cpuinfo has no flags line");
        return;
    }
    const mf::IsaSet isa = mf::detect_cpu_isa();
    // Linux lists a feature only when the OS supports its state, like our XCR0 check.
    const std::pair<mf::IsaFeature, const char*> pairs[] = {
        {mf::IsaFeature::fma, "fma"},           {mf::IsaFeature::avx2, "avx2"},
        {mf::IsaFeature::avx512f, "avx512f"},   {mf::IsaFeature::avx512bw, "avx512bw"},
        {mf::IsaFeature::avx512vl, "avx512vl"}, {mf::IsaFeature::avx512_vnni, "avx512_vnni"},
        {mf::IsaFeature::avx512_bf16, "avx512_bf16"}, {mf::IsaFeature::avx512_fp16, "avx512_fp16"},
        {mf::IsaFeature::amx_tile, "amx_tile"}, {mf::IsaFeature::amx_int8, "amx_int8"},
        {mf::IsaFeature::amx_bf16, "amx_bf16"}};
    for (auto [f, name] : pairs) {
        INFO(name);
        CHECK(isa.has(f) == (flags.count(name) == 1));
    }
}

TEST_CASE("ISA names round-trip and the --max-isa cap only removes features") {
    const mf::IsaSet isa = mf::detect_cpu_isa();
    CHECK(mf::IsaSet::from_names(isa.names()) == isa);
    CHECK_THROWS_AS(mf::IsaSet::from_names({"avx9000"}), std::invalid_argument);
    const mf::IsaSet capped = mf::cap_isa(isa, "avx512");
    CHECK(isa.contains(capped));
    CHECK_FALSE(capped.has(mf::IsaFeature::amx_int8));
    CHECK(capped.has(mf::IsaFeature::avx512f) == isa.has(mf::IsaFeature::avx512f));
    CHECK_FALSE(mf::cap_isa(isa, "avx2").has(mf::IsaFeature::avx512f));
    CHECK(mf::cap_isa(isa, "amx") == isa);
    CHECK_THROWS_AS(mf::cap_isa(isa, "sse"), std::invalid_argument);
}

TEST_CASE("AMX palette matches CPUID leaf 0x1D when AMX is present") {
    const mf::AmxPalette p = mf::read_amx_palette();
    if (!mf::detect_cpu_isa().has(mf::IsaFeature::amx_tile)) {
        CHECK(p.id == 0);
        return;
    }
    // Every AMX implementation so far has 8 tiles of 16 rows x 64 bytes; a different one must be noticed.
    CHECK(p.id == 1);
    CHECK(p.max_tiles == 8);
    CHECK(p.max_rows == 16);
    CHECK(p.bytes_per_row == 64);
    CHECK(p.bytes_per_tile == p.max_rows * p.bytes_per_row);
}
