// Thread-block-cluster primitives (sm_90+): distributed shared memory reads and the cluster barrier, as inline
// PTX. On older targets the bodies compile to nothing; callers only reach them when CLUSTER > 1 (sm_90 configs).
#pragma once

namespace mf {

// The shared::cluster address of `smem_addr` (a shared::cta address) in the CTA of cluster rank `rank`.
__device__ __forceinline__ unsigned cluster_map(unsigned smem_addr, unsigned rank) {
    unsigned r = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(r) : "r"(smem_addr), "r"(rank));
#endif
    return r;
}

__device__ __forceinline__ float ld_cluster_f32(unsigned addr) {
    float v = 0.f;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("ld.shared::cluster.f32 %0, [%1];\n" : "=f"(v) : "r"(addr) : "memory");
#endif
    return v;
}

__device__ __forceinline__ float4 ld_cluster_f32x4(unsigned addr) {
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("ld.shared::cluster.v4.f32 {%0,%1,%2,%3}, [%4];\n"
                 : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
                 : "r"(addr)
                 : "memory");
#endif
    return v;
}

// All threads of all CTAs of the cluster; orders shared-memory writes before the barrier with reads after it.
__device__ __forceinline__ void cluster_sync() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
#endif
}

// The cluster barrier in two halves: the arrival releases this CTA's earlier memory accesses (e.g. its last reads
// of a buffer that peers write after their wait), the wait acquires the peers'.
__device__ __forceinline__ void cluster_arrive() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("barrier.cluster.arrive.release.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void cluster_wait_acquire() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("barrier.cluster.wait.acquire.aligned;\n" ::: "memory");
#endif
}

// CTAs in this CTA's cluster: 1 when the kernel was launched without one.
__device__ __forceinline__ unsigned cluster_nctarank() {
    unsigned n = 1;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("mov.u32 %0, %%cluster_nctarank;\n" : "=r"(n));
#endif
    return n;
}

// Bulk copy (the TMA engine, no tensor map) of `bytes` (a multiple of 16, both addresses 16-byte aligned) from
// this CTA's shared memory (shared::cta address `src`) into the shared memory of a CTA of the cluster
// (shared::cluster address `dst`, from cluster_map), counted there on the mbarrier at shared::cluster address
// `bar` (complete_tx): the receiver waits on its own barrier; the sender is not told when its source has been
// read, so it must not overwrite the source or exit before the receiver has waited (a cluster barrier).
__device__ __forceinline__ void bulk_copy_s2cluster(unsigned dst, unsigned src, unsigned bytes, unsigned bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile(
        "cp.async.bulk.shared::cluster.shared::cta.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
        "r"(src), "r"(bytes), "r"(bar)
        : "memory");
#endif
}

__device__ __forceinline__ unsigned cluster_ctarank() {
    unsigned r = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
#endif
    return r;
}

}  // namespace mf
