#include "model/float_formats.hpp"

#include <cmath>

namespace mf {

float f16_to_f32(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1f;
    const uint32_t mant = h & 0x3ff;
    if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000u | (mant << 13));  // inf / NaN
    if (exp == 0) {
        // zero or subnormal: mant * 2^-24, exact in fp32
        const float v = float(mant) * 0x1p-24f;
        return sign ? -v : v;
    }
    return f32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t f32_to_f16(float x) {
    const uint32_t u = f32_bits(x);
    const uint16_t sign = uint16_t((u >> 16) & 0x8000);
    const uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return uint16_t(sign | 0x7e00);   // NaN
    if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00);  // rounds to >= 65520: inf
    if (abs < 0x38800000u) {
        // below the smallest normal fp16 (2^-14): subnormal result, value / 2^-24 rounded to nearest even
        const float a = f32_from_bits(abs);
        const float q = std::nearbyint(a * 0x1p24f);  // default rounding mode is to nearest even
        return uint16_t(sign | uint16_t(q));
    }
    // normal: drop 13 mantissa bits with round to nearest even (a carry into the exponent is correct)
    const uint32_t rebased = abs - (112u << 23);
    const uint32_t lsb = (rebased >> 13) & 1;
    return uint16_t(sign | ((rebased + 0xfff + lsb) >> 13));
}

uint16_t f32_to_bf16(float x) {
    const uint32_t u = f32_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // keep NaN a (quiet) NaN
    const uint32_t lsb = (u >> 16) & 1;
    return uint16_t((u + 0x7fff + lsb) >> 16);
}

float f8e4m3_to_f32(uint8_t b) {
    const bool neg = b & 0x80;
    const int exp = (b >> 3) & 0xf;
    const int mant = b & 7;
    float v;
    if (exp == 0xf && mant == 7)
        v = NAN;
    else if (exp == 0)
        v = float(mant) * 0x1p-9f;  // subnormal: mant/8 * 2^-6
    else
        v = std::ldexp(1.0f + float(mant) / 8.0f, exp - 7);
    return neg ? -v : v;
}

uint8_t f32_to_f8e4m3(float x) {
    if (std::isnan(x)) return 0x7f;
    const uint8_t sign = std::signbit(x) ? 0x80 : 0;
    float a = std::fabs(x);
    if (a >= 448.0f) return uint8_t(sign | 0x7e);
    // The 127 non-negative finite codes are increasing in value: binary search, then round to nearest even.
    int lo = 0, hi = 0x7e;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (f8e4m3_to_f32(uint8_t(mid)) <= a)
            lo = mid;
        else
            hi = mid - 1;
    }
    if (lo == 0x7e) return uint8_t(sign | lo);
    const float below = f8e4m3_to_f32(uint8_t(lo)), above = f8e4m3_to_f32(uint8_t(lo + 1));
    int code = lo;
    if (a - below > above - a || (a - below == above - a && (lo & 1))) code = lo + 1;
    return uint8_t(sign | code);
}

}  // namespace mf
