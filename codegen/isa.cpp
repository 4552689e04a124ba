#include "codegen/isa.hpp"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <stdexcept>

namespace mf {
namespace {

constexpr std::array<std::string_view, static_cast<size_t>(IsaFeature::count)> kNames = {
    "fma", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16",
    "amx_tile", "amx_int8", "amx_bf16"};

struct Regs {
    uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

Regs cpuid(uint32_t leaf, uint32_t sub = 0) {
    Regs r;
    __cpuid_count(leaf, sub, r.eax, r.ebx, r.ecx, r.edx);
    return r;
}

uint32_t max_leaf() { return cpuid(0).eax; }

uint64_t xgetbv0() {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t(hi) << 32) | lo;
}

bool bit(uint32_t v, int b) { return (v >> b) & 1u; }

}  // namespace

std::string_view isa_feature_name(IsaFeature f) { return kNames.at(static_cast<size_t>(f)); }

std::vector<std::string> IsaSet::names() const {
    std::vector<std::string> out;
    for (size_t i = 0; i < kNames.size(); ++i)
        if (has(static_cast<IsaFeature>(i))) out.emplace_back(kNames[i]);
    return out;
}

IsaSet IsaSet::from_names(const std::vector<std::string>& names) {
    IsaSet s;
    for (const auto& n : names) {
        auto it = std::find(kNames.begin(), kNames.end(), n);
        if (it == kNames.end()) throw std::invalid_argument("unknown ISA feature '" + n + "'");
        s.add(static_cast<IsaFeature>(it - kNames.begin()));
    }
    return s;
}

IsaSet detect_cpu_isa() {
    IsaSet s;
    const Regs l1 = cpuid(1);
    const bool osxsave = bit(l1.ecx, 27);
    if (!osxsave) return s;
    const uint64_t xcr0 = xgetbv0();
    const bool os_avx = (xcr0 & 0x6) == 0x6;
    const bool os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;
    const bool os_amx = (xcr0 & (3ull << 17)) == (3ull << 17);
    if (os_avx && bit(l1.ecx, 12)) s.add(IsaFeature::fma);
    if (max_leaf() < 7) return s;
    const Regs l7 = cpuid(7, 0);
    const Regs l7s1 = cpuid(7, 1);
    if (os_avx && bit(l7.ebx, 5)) s.add(IsaFeature::avx2);
    if (os_avx512) {
        if (bit(l7.ebx, 16)) s.add(IsaFeature::avx512f);
        if (bit(l7.ebx, 30)) s.add(IsaFeature::avx512bw);
        if (bit(l7.ebx, 31)) s.add(IsaFeature::avx512vl);
        if (bit(l7.ecx, 11)) s.add(IsaFeature::avx512_vnni);
        if (bit(l7s1.eax, 5)) s.add(IsaFeature::avx512_bf16);
        if (bit(l7.edx, 23)) s.add(IsaFeature::avx512_fp16);
    }
    if (os_amx) {
        if (bit(l7.edx, 24)) s.add(IsaFeature::amx_tile);
        if (bit(l7.edx, 25)) s.add(IsaFeature::amx_int8);
        if (bit(l7.edx, 22)) s.add(IsaFeature::amx_bf16);
    }
    return s;
}

IsaSet cap_isa(IsaSet isa, std::string_view max_level) {
    IsaSet allowed;
    allowed.add(IsaFeature::fma).add(IsaFeature::avx2);
    if (max_level == "avx2") return IsaSet{isa.bits & allowed.bits};
    for (auto f : {IsaFeature::avx512f, IsaFeature::avx512bw, IsaFeature::avx512vl, IsaFeature::avx512_vnni,
                   IsaFeature::avx512_bf16, IsaFeature::avx512_fp16})
        allowed.add(f);
    if (max_level == "avx512") return IsaSet{isa.bits & allowed.bits};
    if (max_level == "amx") return isa;
    throw std::invalid_argument("--max-isa must be one of avx2, avx512, amx (got '" + std::string(max_level) + "')");
}

bool request_amx_permission() {
    constexpr int kArchGetXcompPerm = 0x1022;
    constexpr int kArchReqXcompPerm = 0x1023;
    constexpr int kXfeatureXtiledata = 18;
    unsigned long bitmask = 0;
    if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &bitmask) == 0 && (bitmask & (1ul << kXfeatureXtiledata)))
        return true;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

AmxPalette read_amx_palette() {
    AmxPalette p;
    if (max_leaf() < 0x1d || !bit(cpuid(7, 0).edx, 24)) return p;
    const Regs l1d0 = cpuid(0x1d, 0);
    if (l1d0.eax < 1) return p;
    const Regs pal = cpuid(0x1d, 1);
    p.id = 1;
    p.bytes_per_tile = int(pal.eax >> 16);
    p.bytes_per_row = int(pal.ebx & 0xffff);
    p.max_tiles = int(pal.ebx >> 16);
    p.max_rows = int(pal.ecx & 0xffff);
    if (max_leaf() >= 0x1e) {
        const Regs tmul = cpuid(0x1e, 0);
        p.tmul_max_k = int(tmul.ebx & 0xff);
        p.tmul_max_n_bytes = int((tmul.ebx >> 8) & 0xffff);
    }
    return p;
}

CpuIdentity read_cpu_identity() {
    CpuIdentity id;
    const Regs l0 = cpuid(0);
    char vendor[13] = {};
    std::copy_n(reinterpret_cast<const char*>(&l0.ebx), 4, vendor);
    std::copy_n(reinterpret_cast<const char*>(&l0.edx), 4, vendor + 4);
    std::copy_n(reinterpret_cast<const char*>(&l0.ecx), 4, vendor + 8);
    id.vendor = vendor;
    const Regs l1 = cpuid(1);
    const uint32_t base_family = (l1.eax >> 8) & 0xf, ext_family = (l1.eax >> 20) & 0xff;
    const uint32_t base_model = (l1.eax >> 4) & 0xf, ext_model = (l1.eax >> 16) & 0xf;
    id.family = int(base_family == 0xf ? base_family + ext_family : base_family);
    id.model = int((base_family == 0x6 || base_family == 0xf) ? (ext_model << 4) | base_model : base_model);
    id.stepping = int(l1.eax & 0xf);
    if (cpuid(0x80000000).eax >= 0x80000004) {
        char brand[49] = {};
        for (uint32_t i = 0; i < 3; ++i) {
            const Regs r = cpuid(0x80000002 + i);
            std::copy_n(reinterpret_cast<const char*>(&r), 16, brand + 16 * i);
        }
        std::string s = brand;
        s.erase(0, s.find_first_not_of(' '));
        s.erase(s.find_last_not_of(' ') + 1);
        id.model_name = s;
    }
    return id;
}

}  // namespace mf
