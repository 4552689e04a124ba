// ISA features as bits with a subset order, read once from CPUID/XGETBV, plus a cap for testing fallbacks.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mf {

enum class IsaFeature : uint32_t {
    fma,
    avx2,
    avx512f,
    avx512bw,
    avx512vl,
    avx512_vnni,
    avx512_bf16,
    avx512_fp16,
    amx_tile,
    amx_int8,
    amx_bf16,
    count
};

std::string_view isa_feature_name(IsaFeature f);

struct IsaSet {
    uint32_t bits = 0;

    bool has(IsaFeature f) const { return bits & (1u << static_cast<uint32_t>(f)); }
    IsaSet& add(IsaFeature f) {
        bits |= 1u << static_cast<uint32_t>(f);
        return *this;
    }
    bool contains(IsaSet other) const { return (bits & other.bits) == other.bits; }
    bool operator==(const IsaSet&) const = default;
    std::vector<std::string> names() const;
    static IsaSet from_names(const std::vector<std::string>& names);  // throws on an unknown name
};

// Features the CPU reports *and* the OS has enabled in XCR0 (AMX additionally needs the per-process permission,
// see request_amx_permission).
IsaSet detect_cpu_isa();

// Named levels for --max-isa: "avx2", "avx512" (F/BW/VL/VNNI/BF16/FP16), "amx" (everything).
IsaSet cap_isa(IsaSet isa, std::string_view max_level);  // throws std::invalid_argument on an unknown level

// Linux gates AMX tile data per process (arch_prctl ARCH_REQ_XCOMP_PERM). Idempotent; false if refused.
bool request_amx_permission();

struct AmxPalette {
    int id = 0;  // 0 = no AMX
    int max_tiles = 0;
    int bytes_per_tile = 0;
    int bytes_per_row = 0;
    int max_rows = 0;
    int tmul_max_k = 0;         // rows of the B operand the multiplier takes
    int tmul_max_n_bytes = 0;   // bytes per B row
};
AmxPalette read_amx_palette();

struct CpuIdentity {
    std::string vendor;
    std::string model_name;
    int family = 0, model = 0, stepping = 0;
};
CpuIdentity read_cpu_identity();

}  // namespace mf
