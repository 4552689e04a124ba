// RMSNorm, one CTA per row: a strided pass accumulates the sum of squares in fp32, a block reduction, and a second
// pass (from L1/L2) scales and writes. Src/Dst are float or bf16.
#pragma once
#include "bf16.cuh"
#include "layer_params.cuh"

namespace mf {

template <class Src, class Dst, int DIM, int THREADS>
__device__ __forceinline__ void rms_norm(const RmsNormParams& p) {
    __shared__ float partial[THREADS / 32];
    const int r = blockIdx.x;
    if (r >= p.rows) return;
    const Src* src = static_cast<const Src*>(p.src) + (size_t)r * p.src_stride;
    Dst* dst = static_cast<Dst*>(p.dst) + (size_t)r * p.dst_stride;
    float ss = 0.f;
    for (int i = threadIdx.x; i < DIM; i += THREADS) {
        const float v = load_f32(src + i);
        ss += v * v;
    }
    ss = warp_sum(ss);
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = ss;
    __syncthreads();
    float total = 0.f;
#pragma unroll
    for (int w = 0; w < THREADS / 32; ++w) total += partial[w];
    const float inv = rsqrtf(total / DIM + p.eps);
    for (int i = threadIdx.x; i < DIM; i += THREADS) store_f32(dst + i, load_f32(src + i) * inv * p.weight[i]);
}

}  // namespace mf
