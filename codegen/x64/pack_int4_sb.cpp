#include "codegen/x64/pack_int4_sb.hpp"

#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "codegen/isa.hpp"
#include "codegen/x64/pack_int4.hpp"

namespace mf {
namespace {

uint8_t* sb_at(const PackedMatrix& pm, int64_t panel, int64_t block) {
    return pm.sb.data() + (panel * int4_sb_blocks(pm.k_pad) + block) * kInt4SbBytes;
}

void check_sb(const PackedMatrix& pm, const char* who) {
    if (pm.wtype != WeightType::int4 || !pm.sb.data())
        throw std::logic_error(std::string(who) + ": the matrix has no Q4_K super-block form (" __FILE__ ")");
}

// Where the lo tile of 64-k step t starts in one unpacked panel: super blocks of 4 steps (2 KiB each) and a
// 64-byte d line.
int64_t step_offset(int64_t t) {
    return t / 4 * (4 * 2048 + 64) + t % 4 * 2048;
}
int64_t d_offset(int64_t block, int64_t steps_in_block) {
    return block * (4 * 2048 + 64) + steps_in_block * 2048;
}

}  // namespace

bool factor_int4_super_block(const float* s, int n, float* d, uint8_t* sc) {
    int big = 0;
    for (int g = 1; g < n; ++g)
        if (std::fabs(s[g]) > std::fabs(s[big])) big = g;
    if (s[big] == 0.0f) {
        *d = 0.0f;
        std::memset(sc, 0, size_t(n));
        return true;
    }
    // The largest |s_g| has the largest sc_g; Q4_K's quantiser gives it 63, so try that first.
    for (int top = 63; top >= 1; --top) {
        const float dd = s[big] / float(top);
        bool ok = true;
        for (int g = 0; g < n && ok; ++g) {
            const float q = std::nearbyint(s[g] / dd);
            ok = q >= 0.0f && q <= 63.0f && std::fma(dd, q, -s[g]) == 0.0f;  // exact, not after rounding
            sc[g] = ok ? uint8_t(q) : 0;
        }
        if (ok) {
            *d = dd;
            return true;
        }
    }
    return false;
}

bool build_int4_sb(PackedMatrix& pm) {
    pm.sb = AlignedBytes();
    if (pm.wtype != WeightType::int4) return false;
    const int64_t groups = pm.k_pad / kInt4Group, blocks = int4_sb_blocks(pm.k_pad);
    AlignedBytes sb(size_t(pm.panels() * blocks * kInt4SbBytes));
    float s[kInt4SbGroups];
    uint8_t sc[kInt4SbGroups];
    for (int64_t col = 0; col < pm.panels() * kPanelCols; ++col)
        for (int64_t b = 0; b < blocks; ++b) {
            const int n = int(std::min<int64_t>(kInt4SbGroups, groups - b * kInt4SbGroups));
            for (int g = 0; g < n; ++g) s[g] = int4_scale(pm, col, b * kInt4SbGroups + g);
            float d;
            if (!factor_int4_super_block(s, n, &d, sc)) return false;
            uint8_t* dst = sb.data() + ((col / kPanelCols) * blocks + b) * kInt4SbBytes;
            std::memcpy(dst + (col % kPanelCols) * 4, &d, 4);
            for (int g = 0; g < n; ++g) dst[64 + 16 * g + col % kPanelCols] = sc[g];
        }
    pm.sb = std::move(sb);
    return true;
}

float int4_sb_d(const PackedMatrix& pm, int64_t col, int64_t block) {
    check_sb(pm, "int4_sb_d");
    float d;
    std::memcpy(&d, sb_at(pm, col / kPanelCols, block) + (col % kPanelCols) * 4, 4);
    return d;
}

int int4_sb_sc(const PackedMatrix& pm, int64_t col, int64_t group) {
    check_sb(pm, "int4_sb_sc");
    return sb_at(pm, col / kPanelCols, group / kInt4SbGroups)[64 + 16 * (group % kInt4SbGroups) + col % kPanelCols];
}

namespace {

// Per group: packed row r holds k-quads 2r (low nibbles) and 2r + 1 (high nibbles); group g is rows 8 (g % 2) ..
// of its step's tiles.
void unpack_sb_scalar(const PackedMatrix& pm, int64_t first, int64_t count, uint8_t* dst) {
    const int64_t groups = pm.k_pad / kInt4Group, blocks = int4_sb_blocks(pm.k_pad);
    const int64_t steps = pm.k_pad / 64, pbytes = int4_sb_panel_bytes(pm.k_pad);
    for (int64_t p = 0; p < count; ++p, dst += pbytes) {
        const uint8_t* src = pm.panel(first + p);
        for (int64_t g = 0; g < groups; ++g, src += kInt4GroupBytes) {
            const uint8_t* scs = sb_at(pm, first + p, g / kInt4SbGroups) + 64 + 16 * (g % kInt4SbGroups);
            uint8_t* lo = dst + step_offset(g / 2) + (g % 2) * 512;
            for (int r = 0; r < 4; ++r)
                for (int i = 0; i < 64; ++i) {
                    const int sc = scs[i / 4];
                    const int v0 = (src[r * 64 + i] & 15) * sc, v1 = (src[r * 64 + i] >> 4) * sc;
                    lo[2 * r * 64 + i] = uint8_t(v0 & 255);
                    lo[1024 + 2 * r * 64 + i] = uint8_t(v0 >> 8);
                    lo[(2 * r + 1) * 64 + i] = uint8_t(v1 & 255);
                    lo[1024 + (2 * r + 1) * 64 + i] = uint8_t(v1 >> 8);
                }
        }
        for (int64_t b = 0; b < blocks; ++b)
            std::memcpy(dst + d_offset(b, std::min<int64_t>(4, steps - 4 * b)), sb_at(pm, first + p, b), 64);
    }
}

// Per nibble vector n (bytes 0..15, dword lane j = channel j): vpmaddubsw with the channel's sc in the even
// (odd) byte of each word gives the even (odd) byte's v = sc * q as a word; lo / hi bytes are blended from the
// two. The source is prefetched kPrefetch groups ahead (it usually comes from DRAM or L3).
constexpr int kPrefetch = 8;
__attribute__((target("avx512f,avx512bw"))) void unpack_sb_avx512(const PackedMatrix& pm, int64_t first,
                                                                   int64_t count, uint8_t* dst) {
    const int64_t groups = pm.k_pad / kInt4Group, blocks = int4_sb_blocks(pm.k_pad);
    const int64_t steps = pm.k_pad / 64, pbytes = int4_sb_panel_bytes(pm.k_pad);
    const __m512i mask = _mm512_set1_epi8(0x0f);
    const __mmask64 odd = 0xaaaaaaaaaaaaaaaaull;
    for (int64_t p = 0; p < count; ++p, dst += pbytes) {
        const uint8_t* src = pm.panel(first + p);
        for (int64_t g = 0; g < groups; ++g, src += kInt4GroupBytes) {
            if (g + kPrefetch < groups)
                for (int l = 0; l < 4; ++l)
                    _mm_prefetch(reinterpret_cast<const char*>(src + kPrefetch * kInt4GroupBytes + l * 64),
                                 _MM_HINT_T0);
            const uint8_t* scs = sb_at(pm, first + p, g / kInt4SbGroups) + 64 + 16 * (g % kInt4SbGroups);
            // (maskz forms: gcc 12's plain ones warn of their undefined pass-through operand)
            const __m512i x =
                _mm512_maskz_cvtepu8_epi32(0xffff, _mm_loadu_si128(reinterpret_cast<const __m128i*>(scs)));
            const __m512i sc_even = _mm512_or_si512(x, _mm512_maskz_slli_epi32(0xffff, x, 16));  // sc, 0, sc, 0
            const __m512i sc_odd = _mm512_slli_epi16(sc_even, 8);                  // bytes 0, sc, 0, sc
            uint8_t* lo = dst + step_offset(g / 2) + (g % 2) * 512;
            for (int r = 0; r < 4; ++r) {
                const __m512i v = _mm512_loadu_si512(src + r * 64);
                const __m512i nib[2] = {_mm512_and_si512(v, mask), _mm512_and_si512(_mm512_srli_epi16(v, 4), mask)};
                for (int h = 0; h < 2; ++h) {
                    const __m512i pe = _mm512_maddubs_epi16(nib[h], sc_even);
                    const __m512i po = _mm512_maddubs_epi16(nib[h], sc_odd);
                    _mm512_store_si512(lo + (2 * r + h) * 64,
                                       _mm512_mask_blend_epi8(odd, pe, _mm512_slli_epi16(po, 8)));
                    _mm512_store_si512(lo + 1024 + (2 * r + h) * 64,
                                       _mm512_mask_blend_epi8(odd, _mm512_srli_epi16(pe, 8), po));
                }
            }
        }
        for (int64_t b = 0; b < blocks; ++b)
            std::memcpy(dst + d_offset(b, std::min<int64_t>(4, steps - 4 * b)), sb_at(pm, first + p, b), 64);
    }
}

}  // namespace

void unpack_int4_panels_sb(const PackedMatrix& pm, int64_t first, int64_t count, uint8_t* dst) {
    check_sb(pm, "unpack_int4_panels_sb");
    static const bool avx512 = [] {
        const IsaSet isa = detect_cpu_isa();
        return isa.has(IsaFeature::avx512f) && isa.has(IsaFeature::avx512bw);
    }();
    if (avx512 && reinterpret_cast<uintptr_t>(dst) % 64 == 0)
        unpack_sb_avx512(pm, first, count, dst);
    else
        unpack_sb_scalar(pm, first, count, dst);
}

void unpack_int4_panels_sb_reference(const PackedMatrix& pm, int64_t first, int64_t count, uint8_t* dst) {
    check_sb(pm, "unpack_int4_panels_sb_reference");
    unpack_sb_scalar(pm, first, count, dst);
}

}  // namespace mf
