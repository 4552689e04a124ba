// q4_K, q5_K and q6_K: quantisation (a plain min/max fit per sub-block, then 6- or 8-bit sub-block scales
// under an fp16 super-block scale) and dequantisation in llama.cpp's bit order and float order.
#include <algorithm>
#include <cmath>

#include "model/block_formats.hpp"
#include "model/float_formats.hpp"

namespace mf {
namespace {

float fp16_round(float x) {
    return f16_to_f32(f32_to_f16(x));
}

int clamp_round(float v, int lo, int hi) {
    return std::clamp(int(std::lround(v)), lo, hi);
}

// Shared by q4_K (levels 15) and q5_K (levels 31): per sub-block of 32, x ~ scale*q - min with q in
// 0..levels. Writes d, dmin, the packed scales and q[256] (unpacked levels).
void fit_k_block(const float* x, int levels, uint16_t& d_out, uint16_t& dmin_out, uint8_t scales[12],
                 uint8_t q[256]) {
    float scale[8], minv[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
        float lo = 0, hi = 0;  // the range always includes 0, so mins are >= 0 as the format requires
        for (int l = 0; l < 32; ++l) {
            lo = std::min(lo, x[32 * j + l]);
            hi = std::max(hi, x[32 * j + l]);
        }
        scale[j] = (hi - lo) / float(levels);
        minv[j] = -lo;
        max_scale = std::max(max_scale, scale[j]);
        max_min = std::max(max_min, minv[j]);
    }
    d_out = f32_to_f16(max_scale / 63.0f);
    dmin_out = f32_to_f16(max_min / 63.0f);
    const float d = f16_to_f32(d_out), dmin = f16_to_f32(dmin_out);
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; ++j) {
        // ceil: the step never shrinks below the fit, so the top value is not clipped
        sc[j] = d > 0 ? uint8_t(std::clamp(int(std::ceil(scale[j] / d)), 0, 63)) : 0;
        m[j] = dmin > 0 ? uint8_t(clamp_round(minv[j] / dmin, 0, 63)) : 0;
    }
    q4k_pack_scales(sc, m, scales);
    for (int j = 0; j < 8; ++j) {
        const float step = d * float(sc[j]);
        const float shift = dmin * float(m[j]);
        for (int l = 0; l < 32; ++l)
            q[32 * j + l] = step > 0 ? uint8_t(clamp_round((x[32 * j + l] + shift) / step, 0, levels)) : 0;
    }
}

}  // namespace

void q4k_scale_min(const uint8_t s[12], int j, uint8_t& sc, uint8_t& m) {
    if (j < 4) {
        sc = s[j] & 63;
        m = s[j + 4] & 63;
    } else {
        sc = uint8_t((s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4));
        m = uint8_t((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

void q4k_pack_scales(const uint8_t sc[8], const uint8_t m[8], uint8_t s[12]) {
    for (int j = 0; j < 4; ++j) {
        s[j] = uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        s[j + 4] = uint8_t((m[j] & 63) | ((m[j + 4] >> 4) << 6));
        s[j + 8] = uint8_t((sc[j + 4] & 0xf) | ((m[j + 4] & 0xf) << 4));
    }
}

void q4k_unpack(const BlockQ4K& b, Q4KGroups& dst) {
    const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
    for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        q4k_scale_min(b.scales, j, sc, m);
        dst.scale[j] = d * float(sc);
        dst.min[j] = dmin * float(m);
    }
    for (int c = 0; c < 4; ++c)
        for (int l = 0; l < 32; ++l) {
            dst.q[64 * c + l] = b.qs[32 * c + l] & 0xf;
            dst.q[64 * c + 32 + l] = b.qs[32 * c + l] >> 4;
        }
}

void dequantize_row_q4_k(const BlockQ4K* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n / kQK_K; ++i) {
        const BlockQ4K& b = src[i];
        const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
        float* y = dst + i * kQK_K;
        for (int c = 0; c < 4; ++c) {
            uint8_t sc0, m0, sc1, m1;
            q4k_scale_min(b.scales, 2 * c, sc0, m0);
            q4k_scale_min(b.scales, 2 * c + 1, sc1, m1);
            const float d0 = d * sc0, o0 = dmin * m0, d1 = d * sc1, o1 = dmin * m1;
            for (int l = 0; l < 32; ++l) {
                y[64 * c + l] = d0 * float(b.qs[32 * c + l] & 0xf) - o0;
                y[64 * c + 32 + l] = d1 * float(b.qs[32 * c + l] >> 4) - o1;
            }
        }
    }
}

void quantize_row_q4_k(const float* src, BlockQ4K* dst, int64_t n) {
    for (int64_t i = 0; i < n / kQK_K; ++i) {
        BlockQ4K& b = dst[i];
        uint8_t q[256];
        fit_k_block(src + i * kQK_K, 15, b.d, b.dmin, b.scales, q);
        for (int c = 0; c < 4; ++c)
            for (int l = 0; l < 32; ++l)
                b.qs[32 * c + l] = uint8_t(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
    }
}

void dequantize_row_q5_k(const BlockQ5K* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n / kQK_K; ++i) {
        const BlockQ5K& b = src[i];
        const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
        float* y = dst + i * kQK_K;
        for (int c = 0; c < 4; ++c) {
            uint8_t sc0, m0, sc1, m1;
            q4k_scale_min(b.scales, 2 * c, sc0, m0);
            q4k_scale_min(b.scales, 2 * c + 1, sc1, m1);
            const float d0 = d * sc0, o0 = dmin * m0, d1 = d * sc1, o1 = dmin * m1;
            const uint8_t u0 = uint8_t(1u << (2 * c)), u1 = uint8_t(2u << (2 * c));
            for (int l = 0; l < 32; ++l) {
                const int lo = (b.qs[32 * c + l] & 0xf) + ((b.qh[l] & u0) ? 16 : 0);
                const int hi = (b.qs[32 * c + l] >> 4) + ((b.qh[l] & u1) ? 16 : 0);
                y[64 * c + l] = d0 * float(lo) - o0;
                y[64 * c + 32 + l] = d1 * float(hi) - o1;
            }
        }
    }
}

void quantize_row_q5_k(const float* src, BlockQ5K* dst, int64_t n) {
    for (int64_t i = 0; i < n / kQK_K; ++i) {
        BlockQ5K& b = dst[i];
        uint8_t q[256];
        fit_k_block(src + i * kQK_K, 31, b.d, b.dmin, b.scales, q);
        std::fill(b.qh, b.qh + 32, 0);
        for (int c = 0; c < 4; ++c)
            for (int l = 0; l < 32; ++l) {
                const uint8_t lo = q[64 * c + l], hi = q[64 * c + 32 + l];
                b.qs[32 * c + l] = uint8_t((lo & 0xf) | ((hi & 0xf) << 4));
                b.qh[l] |= uint8_t(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
            }
    }
}

void dequantize_row_q6_k(const BlockQ6K* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n / kQK_K; ++i) {
        const BlockQ6K& b = src[i];
        const float d = f16_to_f32(b.d);
        for (int h = 0; h < 2; ++h) {
            const uint8_t* ql = b.ql + 64 * h;
            const uint8_t* qh = b.qh + 32 * h;
            const int8_t* sc = b.scales + 8 * h;
            float* y = dst + i * kQK_K + 128 * h;
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is + 0] * float(q1);
                y[l + 32] = d * sc[is + 2] * float(q2);
                y[l + 64] = d * sc[is + 4] * float(q3);
                y[l + 96] = d * sc[is + 6] * float(q4);
            }
        }
    }
}

void quantize_row_q6_k(const float* src, BlockQ6K* dst, int64_t n) {
    for (int64_t i = 0; i < n / kQK_K; ++i) {
        const float* x = src + i * kQK_K;
        BlockQ6K& b = dst[i];
        float s[16], max_s = 0;
        for (int j = 0; j < 16; ++j) {
            float amax = 0;
            for (int l = 0; l < 16; ++l) amax = std::max(amax, std::fabs(x[16 * j + l]));
            s[j] = amax / 31.0f;
            max_s = std::max(max_s, s[j]);
        }
        b.d = f32_to_f16(max_s / 127.0f);
        const float d = fp16_round(max_s / 127.0f);
        uint8_t q[256];
        for (int j = 0; j < 16; ++j) {
            b.scales[j] = d > 0 ? int8_t(std::clamp(int(std::ceil(s[j] / d)), 0, 127)) : 0;
            const float step = d * float(b.scales[j]);
            for (int l = 0; l < 16; ++l)
                q[16 * j + l] = uint8_t(step > 0 ? clamp_round(x[16 * j + l] / step, -32, 31) + 32 : 32);
        }
        for (int h = 0; h < 2; ++h) {
            const uint8_t* qq = q + 128 * h;
            for (int l = 0; l < 32; ++l) {
                b.ql[64 * h + l] = uint8_t((qq[l] & 0xf) | ((qq[l + 64] & 0xf) << 4));
                b.ql[64 * h + l + 32] = uint8_t((qq[l + 32] & 0xf) | ((qq[l + 96] & 0xf) << 4));
                b.qh[32 * h + l] = uint8_t((qq[l] >> 4) | ((qq[l + 32] >> 4) << 2) |
                                           ((qq[l + 64] >> 4) << 4) | ((qq[l + 96] >> 4) << 6));
            }
        }
    }
}

}  // namespace mf
