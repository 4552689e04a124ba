// Rotary position embedding on `heads` vectors of ROPE values per row, one thread per (row, head, pair).
// INTERLEAVED pairs are (2i, 2i+1) (DeepSeek's reference code, GGUF / llama.cpp); otherwise (i, i + ROPE/2)
// (HF's rotate_half layout). Frequency of pair i is inv_freq[i]; the angle is computed in fp32 as pos * inv_freq.
#pragma once
#include "bf16.cuh"
#include "layer_params.cuh"

namespace mf {

template <class T, int ROPE, bool INTERLEAVED>
__device__ __forceinline__ void rope(const RopeParams& p) {
    constexpr int HALF = ROPE / 2;
    const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long total = (long long)p.rows * p.heads * HALF;
    if (idx >= total) return;
    const int i = (int)(idx % HALF);
    const int h = (int)((idx / HALF) % p.heads);
    const int r = (int)(idx / ((long long)HALF * p.heads));
    const T* src = static_cast<const T*>(p.src) + (size_t)r * p.src_row_stride + (size_t)h * p.src_head_stride;
    T* dst = static_cast<T*>(p.dst) + (size_t)r * p.dst_row_stride + (size_t)h * p.dst_head_stride;
    const int i0 = INTERLEAVED ? 2 * i : i;
    const int i1 = INTERLEAVED ? 2 * i + 1 : i + HALF;
    float sn, cs;
    sincosf((float)p.positions[r] * p.inv_freq[i], &sn, &cs);
    cs *= p.cos_sin_scale;
    sn *= p.cos_sin_scale;
    const float x0 = load_f32(src + i0), x1 = load_f32(src + i1);
    store_f32(dst + i0, x0 * cs - x1 * sn);
    store_f32(dst + i1, x0 * sn + x1 * cs);
}

}  // namespace mf
