// Hopper (sm_90) bulk tensor copies (TMA) and the shared-memory mbarriers that count their bytes, as inline PTX.
// Include only from kernels whose configs are restricted to sm_90.
//
// A tensor map (CUtensorMap, 128 opaque bytes made on the host by cuTensorMapEncodeTiled) describes a global
// tensor and a box; one cp.async.bulk.tensor copies a box into shared memory, applying the map's swizzle, and
// adds the bytes it wrote to an mbarrier's transaction count ("complete_tx"). A consumer arms the barrier with
// the bytes it expects (arrive.expect_tx) and waits for the phase to flip (try_wait.parity). The map must live in
// kernel-parameter space (a __grid_constant__ parameter), constant or global memory: its generic address goes
// into the instruction.
//
// Multicast (.multicast::cluster): the box lands at the same shared-memory offset in every CTA of the cluster
// named by the 16-bit mask, and each of them gets the complete_tx on its mbarrier at the same offset.
#pragma once
#include "mla_params.cuh"  // TmaMap

namespace mf {

__device__ __forceinline__ void mbar_init(unsigned bar, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}

// Ends the mbarrier at `bar` (no thread waits on it any more, no copy completes on it): its memory may then hold a
// new mbarrier (mbar_init).
__device__ __forceinline__ void mbar_inval(unsigned bar) {
    asm volatile("mbarrier.inval.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}

// Makes mbarrier.init visible to the other CTAs of the cluster and to the async proxy (TMA complete_tx).
__device__ __forceinline__ void mbar_init_fence() {
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

// One arrival that also expects `bytes` more transaction bytes in the current phase.
__device__ __forceinline__ void mbar_arrive_expect_tx(unsigned bar, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.release.cta.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
                 : "memory");
}

// One arrival on the barrier at shared::cta offset `bar` in the CTA of cluster rank `rank` (may be this one).
__device__ __forceinline__ void mbar_arrive_cluster(unsigned bar, unsigned rank) {
    asm volatile(
        "{\n.reg .b32 ra;\n"
        "mapa.shared::cluster.u32 ra, %0, %1;\n"
        "mbarrier.arrive.release.cluster.shared::cluster.b64 _, [ra];\n}\n" ::"r"(bar),
        "r"(rank)
        : "memory");
}

__device__ __forceinline__ bool mbar_try_wait(unsigned bar, unsigned parity) {
    unsigned done;
    asm volatile(
        "{\n.reg .pred p;\n"
        "mbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
    return done != 0;
}

__device__ __forceinline__ unsigned long long global_timer_ns() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

// Blocks until the phase with parity `parity` has completed (acquire at cluster scope: the data other CTAs
// released before arriving is visible). A phase that never completes is a bug (a copy that was never issued,
// a lost arrival): after 10 s the kernel traps, so that the launch fails with an error instead of hanging.
__device__ __forceinline__ void mbar_wait(unsigned bar, unsigned parity) {
    if (mbar_try_wait(bar, parity)) return;
    const unsigned long long t0 = global_timer_ns();
    while (!mbar_try_wait(bar, parity))
        if (global_timer_ns() - t0 > 10000000000ull) __trap();
}

__device__ __forceinline__ void tma_prefetch_map(const TmaMap* map) {
    asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<unsigned long long>(map)) : "memory");
}

// Box at coordinates (c0 innermost, c1) of `map` into shared memory at `dst`; bytes counted on `bar`.
__device__ __forceinline__ void tma_load_2d(unsigned dst, const TmaMap* map, int c0, int c1, unsigned bar) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], "
        "[%4];\n" ::"r"(dst),
        "l"(reinterpret_cast<unsigned long long>(map)), "r"(c0), "r"(c1), "r"(bar)
        : "memory");
}

// The same box into every CTA of the cluster whose rank bit is set in `cta_mask` (same offsets there).
__device__ __forceinline__ void tma_load_2d_multicast(unsigned dst, const TmaMap* map, int c0, int c1,
                                                      unsigned bar, unsigned short cta_mask) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster "
        "[%0], [%1, {%2, %3}], [%4], %5;\n" ::"r"(dst),
        "l"(reinterpret_cast<unsigned long long>(map)), "r"(c0), "r"(c1), "r"(bar), "h"(cta_mask)
        : "memory");
}

// The box at (c0, c1) of `map` from global memory into L2 only (no shared memory, no barrier): a later copy of
// it hits L2.
__device__ __forceinline__ void tma_prefetch_l2_2d(const TmaMap* map, int c0, int c1) {
    asm volatile("cp.async.bulk.prefetch.tensor.2d.L2.global.tile [%0, {%1, %2}];\n" ::"l"(
                     reinterpret_cast<unsigned long long>(map)),
                 "r"(c0), "r"(c1)
                 : "memory");
}

// Box at (c0, c1, c2) of a 3-D map into this CTA's shared memory at `dst`; bytes counted on `bar`.
__device__ __forceinline__ void tma_load_3d(unsigned dst, const TmaMap* map, int c0, int c1, int c2, unsigned bar) {
    asm volatile(
        "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], "
        "[%5];\n" ::"r"(dst),
        "l"(reinterpret_cast<unsigned long long>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
        : "memory");
}

// Box at (c0, c1, c2) of a 3-D map into every CTA of the cluster in `cta_mask`.
__device__ __forceinline__ void tma_load_3d_multicast(unsigned dst, const TmaMap* map, int c0, int c1, int c2,
                                                      unsigned bar, unsigned short cta_mask) {
    asm volatile(
        "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster "
        "[%0], [%1, {%2, %3, %4}], [%5], %6;\n" ::"r"(dst),
        "l"(reinterpret_cast<unsigned long long>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar), "h"(cta_mask)
        : "memory");
}

// Bulk copy (no tensor map) of `bytes` (a multiple of 16, both addresses 16-byte aligned) from this CTA's shared
// memory to global memory, in the executing thread's bulk group; then commit and wait for the thread's groups:
// COMPLETE waits until the writes are performed (then fence.proxy.async.global makes them visible to generic-proxy
// readers, e.g. other CTAs after a release), else only until the shared memory has been read.
__device__ __forceinline__ void bulk_store_s2g(void* dst, unsigned src, unsigned bytes) {
    asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;\n" ::"l"(dst), "r"(src), "r"(bytes)
                 : "memory");
}
// Bulk copy of `bytes` (a multiple of 16, 16-byte aligned) from global memory into this CTA's shared memory,
// counted on mbarrier `bar` (complete_tx).
__device__ __forceinline__ void bulk_load_g2s(unsigned dst, const void* src, unsigned bytes, unsigned bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
                 "l"(src), "r"(bytes), "r"(bar)
                 : "memory");
}
__device__ __forceinline__ void bulk_commit_and_wait(bool complete) {
    asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
    if (complete)
        asm volatile("cp.async.bulk.wait_group 0;\nfence.proxy.async.global;\n" ::: "memory");
    else
        asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
}

// Cluster barrier in two halves, so that work can go on between them.
__device__ __forceinline__ void cluster_arrive_relaxed() {
    asm volatile("barrier.cluster.arrive.relaxed.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void cluster_wait() { asm volatile("barrier.cluster.wait.aligned;\n" ::: "memory"); }

}  // namespace mf
