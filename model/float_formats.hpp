// Scalar conversions between fp32 and the small float formats model files store: IEEE fp16, bfloat16 and
// FP8 e4m3 (the "fn" variant of the official DeepSeek-V3 release: bias 7, no infinities, 0x7f/0xff are NaN).
#pragma once
#include <cstdint>
#include <cstring>

namespace mf {

inline uint32_t f32_bits(float x) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    return u;
}
inline float f32_from_bits(uint32_t u) {
    float x;
    std::memcpy(&x, &u, 4);
    return x;
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float x);  // round to nearest even; overflow gives ±inf, NaN stays NaN

inline float bf16_to_f32(uint16_t h) {
    return f32_from_bits(uint32_t(h) << 16);
}
uint16_t f32_to_bf16(float x);  // round to nearest even; NaN stays NaN

float f8e4m3_to_f32(uint8_t b);
uint8_t f32_to_f8e4m3(float x);  // round to nearest even, saturating at ±448; NaN gives 0x7f

}  // namespace mf
