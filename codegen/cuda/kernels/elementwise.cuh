// The glue between GEMMs: embedding gather, SiLU(gate) * up, residual add and dtype casts. Memory-bound one-pass
// kernels, one thread per element, grid-stride; Src/Dst are float or bf16.
#pragma once
#include "bf16.cuh"
#include "layer_params.cuh"

namespace mf {

template <class Src, class Dst>
__device__ __forceinline__ void embedding_gather(const EmbeddingParams& p) {
    const long long total = (long long)p.n * p.dim;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int r = (int)(i / p.dim), c = (int)(i % p.dim);
        const int id = p.ids[r];
        const float v = (id >= 0 && id < p.vocab) ? load_f32(static_cast<const Src*>(p.table) + (size_t)id * p.dim + c)
                                                  : 0.f;
        store_f32(static_cast<Dst*>(p.dst) + i, v);
    }
}

template <class Src, class Dst>
__device__ __forceinline__ void silu_mul(const SiluMulParams& p) {
    const long long total = (long long)p.rows * p.dim;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int r = (int)(i / p.dim), c = (int)(i % p.dim);
        const float gt = load_f32(static_cast<const Src*>(p.gate) + (size_t)r * p.gate_stride + c);
        const float up = load_f32(static_cast<const Src*>(p.up) + (size_t)r * p.up_stride + c);
        store_f32(static_cast<Dst*>(p.dst) + (size_t)r * p.dst_stride + c, gt / (1.f + expf(-gt)) * up);
    }
}

template <class Src, class Dst>
__device__ __forceinline__ void add_inplace(const ElementwiseParams& p) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < p.count;
         i += (long long)gridDim.x * blockDim.x) {
        Dst* d = static_cast<Dst*>(p.dst) + i;
        store_f32(d, load_f32(d) + load_f32(static_cast<const Src*>(p.src) + i));
    }
}

template <class Src, class Dst>
__device__ __forceinline__ void cast(const ElementwiseParams& p) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < p.count;
         i += (long long)gridDim.x * blockDim.x)
        store_f32(static_cast<Dst*>(p.dst) + i, load_f32(static_cast<const Src*>(p.src) + i));
}

}  // namespace mf
