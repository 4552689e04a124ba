// q8_0 and the row dispatch over every format (plain floats, GGML blocks, FP8).
#include "model/block_formats.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "model/float_formats.hpp"

namespace mf {

void dequantize_row_q8_0(const BlockQ8_0* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n / kQK8_0; ++i) {
        const float d = f16_to_f32(src[i].d);
        for (int l = 0; l < kQK8_0; ++l) dst[i * kQK8_0 + l] = float(src[i].qs[l]) * d;
    }
}

void quantize_row_q8_0(const float* src, BlockQ8_0* dst, int64_t n) {
    for (int64_t i = 0; i < n / kQK8_0; ++i) {
        const float* x = src + i * kQK8_0;
        float amax = 0;
        for (int l = 0; l < kQK8_0; ++l) amax = std::max(amax, std::fabs(x[l]));
        const float d = amax / 127.0f;
        dst[i].d = f32_to_f16(d);
        const float inv = d > 0 ? 1.0f / d : 0.0f;
        for (int l = 0; l < kQK8_0; ++l)
            dst[i].qs[l] = int8_t(std::clamp(int(std::lround(x[l] * inv)), -127, 127));
    }
}

bool can_dequantize(GgmlType type) {
    switch (type) {
        case GgmlType::f32:
        case GgmlType::f16:
        case GgmlType::bf16:
        case GgmlType::q8_0:
        case GgmlType::q4_k:
        case GgmlType::q5_k:
        case GgmlType::q6_k:
        case GgmlType::f8_e4m3:
            return true;
        default:
            return false;
    }
}

bool can_quantize(GgmlType type) {
    return can_dequantize(type);
}

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
    switch (type) {
        case GgmlType::f32:
            std::memcpy(dst, src, size_t(n) * 4);
            return;
        case GgmlType::f16: {
            const auto* s = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
            return;
        }
        case GgmlType::bf16: {
            const auto* s = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
            return;
        }
        case GgmlType::f8_e4m3: {
            const auto* s = static_cast<const uint8_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = f8e4m3_to_f32(s[i]);
            return;
        }
        case GgmlType::q8_0:
            dequantize_row_q8_0(static_cast<const BlockQ8_0*>(src), dst, n);
            return;
        case GgmlType::q4_k:
            dequantize_row_q4_k(static_cast<const BlockQ4K*>(src), dst, n);
            return;
        case GgmlType::q5_k:
            dequantize_row_q5_k(static_cast<const BlockQ5K*>(src), dst, n);
            return;
        case GgmlType::q6_k:
            dequantize_row_q6_k(static_cast<const BlockQ6K*>(src), dst, n);
            return;
        default:
            break;
    }
    throw std::invalid_argument("dequantize_row: unsupported type " + ggml_type_name(type));
}

void quantize_row(GgmlType type, const float* src, void* dst, int64_t n) {
    switch (type) {
        case GgmlType::f32:
            std::memcpy(dst, src, size_t(n) * 4);
            return;
        case GgmlType::f16: {
            auto* d = static_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
            return;
        }
        case GgmlType::bf16: {
            auto* d = static_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
            return;
        }
        case GgmlType::f8_e4m3: {
            auto* d = static_cast<uint8_t*>(dst);
            for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f8e4m3(src[i]);
            return;
        }
        case GgmlType::q8_0:
            quantize_row_q8_0(src, static_cast<BlockQ8_0*>(dst), n);
            return;
        case GgmlType::q4_k:
            quantize_row_q4_k(src, static_cast<BlockQ4K*>(dst), n);
            return;
        case GgmlType::q5_k:
            quantize_row_q5_k(src, static_cast<BlockQ5K*>(dst), n);
            return;
        case GgmlType::q6_k:
            quantize_row_q6_k(src, static_cast<BlockQ6K*>(dst), n);
            return;
        default:
            break;
    }
    throw std::invalid_argument("quantize_row: unsupported type " + ggml_type_name(type));
}

}  // namespace mf
