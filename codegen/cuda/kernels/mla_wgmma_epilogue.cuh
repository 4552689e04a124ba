// Epilogue of the Hopper MLA decode (mla_decode_wgmma.cuh): the normalised output rows leave through shared
// memory as whole-row 16-byte stores, and (cluster 2) the partials of two consecutive splits are merged in
// distributed shared memory so that one partial per split pair reaches global memory, or (cluster_merge 8 / 16)
// all splits of a head block, one cluster, merge into the final rows with no partials in global memory.
//
// Accumulator layout (wgmma m64n256, per warpgroup wg = its 256 columns): thread (warp w % 4, g = lane / 4,
// t = lane % 4) holds rows row0 = 16 (w % 4) + g and row0 + 8, columns wg * 256 + 8 j + 2 t, + 1 (j < 32).
// Staged rows: 64 rows of LATENT OT values, SO bytes apart (padded so that the staging stores hit distinct banks).
#pragma once
#include "bf16.cuh"
#include "cluster_sm90.cuh"
#include "mma_sm80.cuh"  // smem_addr
#include "tma_sm90.cuh"   // bulk copies
#include "mla_params.cuh"         // kMlaProfileCtaSlots
#include "mla_wgmma_softmax.cuh"  // stmatrix_x4

namespace mf {

// Config profile: this CTA's kMlaProfileCtaSlots values (the last one's bits 32.. get the SM id) into
// profile[32 + kMlaProfileCtaSlots cta ..] (mla_params.cuh), for the first kMlaProfileCtas CTAs of the grid.
__device__ __forceinline__ void mla_profile_cta(unsigned long long* profile,
                                                const unsigned long long (&v)[kMlaProfileCtaSlots]) {
    const unsigned cta = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    if (!profile || cta >= unsigned(kMlaProfileCtas)) return;
    unsigned smid;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(smid));
    constexpr int last = kMlaProfileCtaSlots - 1;
#pragma unroll
    for (int k = 0; k < kMlaProfileCtaSlots; ++k)
        profile[32 + kMlaProfileCtaSlots * cta + k] = v[k] | (k == last ? (unsigned long long)smid << 32 : 0);
}

template <class OT, int LATENT>
__host__ __device__ constexpr int mla_stage_stride() {
    return LATENT * (int)sizeof(OT) + (sizeof(OT) == 4 ? 32 : 16);
}

// Normalises this thread's accumulators by inv[h] and stages all 64 rows in shared memory as OT. The caller
// synchronises before the rows are read. SXM (config epilogue_stmatrix, bf16 rows): by stmatrix.x4, 16 per thread
// instead of 64 4-byte stores. The accumulator's 8-column block j of rows row0 / row0 + 8 is an 8 x 8 stmatrix
// fragment (lane 4 g + t: row g, columns 2 t, + 1); one x4 takes blocks j and j + 1 of both row halves: lane l gives
// the address of row l % 8 of matrix l / 8 = (half (l / 8) % 2, block j + l / 16). The row stride (SO = 1040 bytes,
// 16 mod 128) puts a matrix's 8 rows of 16 bytes in distinct banks. ROWS < 64 (32: config q_own_rows, the CTA's
// own heads): the warps of rows ROWS .. 63 (computed and dropped) stage nothing.
template <class OT, int LATENT, int NACC, bool SXM = false, int ROWS = 64>
__device__ __forceinline__ void mla_stage_rows(unsigned char* stage, const float (&o)[NACC], const float (&inv)[2],
                                               int row0, int wg, int t) {
    static_assert(ROWS % 16 == 0, "whole warps' rows");
    if (ROWS < 64 && row0 >= ROWS) return;  // (warp-uniform: a warp holds rows 16 (w % 4) .. + 15)
    constexpr int SO = mla_stage_stride<OT, LATENT>();
    static_assert(NACC == LATENT / 4, "LATENT / 2 columns x 2 rows over 4 lanes");
    static_assert(!SXM || sizeof(OT) == 2, "stmatrix stages bf16 rows");
    if constexpr (SXM) {
        const int lane = threadIdx.x & 31;
        const int row = row0 - (lane >> 2) + 8 * ((lane >> 3) & 1) + (lane & 7);  // matrix l / 8's row l % 8
        const unsigned base = smem_addr(stage) + (unsigned)(row * SO + (wg * (LATENT / 2) + 8 * (lane >> 4)) * 2);
#pragma unroll
        for (int jj = 0; jj < NACC / 8; ++jj) {
            const int j = 2 * jj;
            stmatrix_x4(base + jj * 32, pack_bf16x2(o[4 * j] * inv[0], o[4 * j + 1] * inv[0]),
                        pack_bf16x2(o[4 * j + 2] * inv[1], o[4 * j + 3] * inv[1]),
                        pack_bf16x2(o[4 * j + 4] * inv[0], o[4 * j + 5] * inv[0]),
                        pack_bf16x2(o[4 * j + 6] * inv[1], o[4 * j + 7] * inv[1]));
        }
        return;
    }
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int j = 0; j < NACC / 4; ++j) {
            const float v0 = o[4 * j + 2 * h] * inv[h], v1 = o[4 * j + 2 * h + 1] * inv[h];
            unsigned char* at =
                stage + (row0 + 8 * h) * SO + (wg * (LATENT / 2) + 8 * j + 2 * t) * (int)sizeof(OT);
            if constexpr (sizeof(OT) == 4)
                *reinterpret_cast<float2*>(at) = make_float2(v0, v1);
            else
                *reinterpret_cast<unsigned*>(at) = pack_bf16x2(v0, v1);
        }
}

// Stages the rows (mla_stage_rows), then writes rows 0 .. rows - 1 to dst + r * dst_stride elements with 16-byte
// stores, whole rows per warp (the scattered 8- or 4-byte stores straight from the accumulators cost several us
// per CTA at batch 1).
template <class OT, int LATENT, int NACC, bool SXM = false, int ROWS = 64>
__device__ __forceinline__ void mla_store_rows(unsigned char* stage, const float (&o)[NACC], const float (&inv)[2],
                                               int row0, int wg, int t, int tid, OT* dst, size_t dst_stride,
                                               int rows) {
    constexpr int SO = mla_stage_stride<OT, LATENT>();
    mla_stage_rows<OT, LATENT, NACC, SXM, ROWS>(stage, o, inv, row0, wg, t);  // (rows <= ROWS)
    __syncthreads();
    constexpr int CPR = LATENT * (int)sizeof(OT) / 16;  // 16-byte chunks per row
    for (int idx = tid; idx < rows * CPR; idx += 256) {
        const int r = idx / CPR, c = idx % CPR;
        const uint4 v = *reinterpret_cast<const uint4*>(stage + r * SO + c * 16);
        *reinterpret_cast<uint4*>(reinterpret_cast<unsigned char*>(dst + r * dst_stride) + c * 16) = v;
    }
}

// As mla_store_rows, but each of the first `rows` threads sends one whole staged row with a bulk copy (config
// bulk_store: one instruction per row instead of LATENT * sizeof(OT) / 16 16-byte stores and shared loads per
// row). complete: wait until the rows are written (the fused combine reads them next), else until staged rows
// are read (the CTA may exit).
template <class OT, int LATENT, int NACC, bool SXM = false>
__device__ __forceinline__ void mla_store_rows_bulk(unsigned char* stage, const float (&o)[NACC],
                                                    const float (&inv)[2], int row0, int wg, int t, int tid, OT* dst,
                                                    size_t dst_stride, int rows, bool complete) {
    constexpr int SO = mla_stage_stride<OT, LATENT>();
    static_assert(SO % 16 == 0 && LATENT * sizeof(OT) % 16 == 0, "16-byte aligned rows for the bulk copies");
    mla_stage_rows<OT, LATENT, NACC, SXM>(stage, o, inv, row0, wg, t);
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // staged rows visible to the bulk copies
    __syncthreads();
    if (tid < rows) {
        bulk_store_s2g(dst + tid * dst_stride, smem_addr(stage + tid * SO), LATENT * (unsigned)sizeof(OT));
        bulk_commit_and_wait(complete);
    }
}

// 16 bytes of OT as floats (4 fp32 or 8 bf16) and back.
template <class OT>
__device__ __forceinline__ void mla_unpack16(const float4& raw, float (&v)[16 / sizeof(OT)]) {
    if constexpr (sizeof(OT) == 4) {
        v[0] = raw.x, v[1] = raw.y, v[2] = raw.z, v[3] = raw.w;
    } else {
        const unsigned w[4] = {__float_as_uint(raw.x), __float_as_uint(raw.y), __float_as_uint(raw.z),
                               __float_as_uint(raw.w)};
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            v[2 * k] = __uint_as_float(w[k] << 16);
            v[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
        }
    }
}

// Cluster of two splits (ranks `self` and `self ^ 1` of the cluster, same head block): both staged their
// normalised rows (stage, SO bytes apart) and log2-sum-exps (s_lse[64], -inf for a split without tokens), and
// the cluster synchronised. This CTA merges rows 32 * (self & 1) .. + 31 of both and writes them as partial
// `part` of num_parts: dst + row * dst_stride elements, lse_dst[row * num_parts]. Rows at or past `rows` (padded
// heads) are skipped. The caller synchronises the cluster again before either CTA leaves.
// Each thread owns one 16-byte column chunk of 32 * 16 / LATENT*sizeof(OT) rows and loads all of them (own rows
// from shared memory, the peer's through DSMEM) before using the first: one DSMEM round trip per 8 rows (H200,
// session 3 run 2: one round trip per row made the epilogue 12k-25k cycles).
template <class OT, int LATENT>
__device__ __forceinline__ void mla_merge_split_pair(const unsigned char* stage, const float* s_lse, unsigned self,
                                                     int tid, OT* dst, size_t dst_stride, float* lse_dst,
                                                     int num_parts, int rows) {
    constexpr int SO = mla_stage_stride<OT, LATENT>();
    constexpr int CPR = LATENT * (int)sizeof(OT) / 16;  // 16-byte chunks per row
    constexpr int E = 16 / (int)sizeof(OT);             // values per chunk
    constexpr int RPP = 256 / CPR;                      // rows per pass of the 256 threads
    constexpr int PASSES = 32 / RPP;                    // rows per thread
    constexpr int BATCH = PASSES < 8 ? PASSES : 8;      // rows loaded before the first is used
    static_assert(256 % CPR == 0 && 32 % RPP == 0 && PASSES % BATCH == 0, "whole passes");
    const unsigned peer = self ^ 1u;
    const unsigned st_peer = cluster_map(smem_addr(stage), peer), lse_peer = cluster_map(smem_addr(s_lse), peer);
    const int c = tid % CPR, r0 = 32 * (int)(self & 1u) + tid / CPR;
#pragma unroll
    for (int k0 = 0; k0 < PASSES; k0 += BATCH) {
        float l_own[BATCH], l_peer[BATCH];
        float4 raw_own[BATCH], raw_peer[BATCH];
#pragma unroll
        for (int k = 0; k < BATCH; ++k) {
            const int r = r0 + (k0 + k) * RPP;
            l_own[k] = s_lse[r];
            l_peer[k] = ld_cluster_f32(lse_peer + r * 4);
            raw_own[k] = *reinterpret_cast<const float4*>(stage + r * SO + c * 16);
            raw_peer[k] = ld_cluster_f32x4(st_peer + r * SO + c * 16);
        }
#pragma unroll
        for (int k = 0; k < BATCH; ++k) {
            const int r = r0 + (k0 + k) * RPP;
            if (r >= rows) continue;
            const float m = fmaxf(l_own[k], l_peer[k]);
            const float w0 = l_own[k] == neg_inf() ? 0.f : exp2f(l_own[k] - m);
            const float w1 = l_peer[k] == neg_inf() ? 0.f : exp2f(l_peer[k] - m);
            const float wsum = w0 + w1, inv = wsum > 0.f ? 1.f / wsum : 0.f;
            float a[E], b[E], v[E];
            mla_unpack16<OT>(raw_own[k], a);
            mla_unpack16<OT>(raw_peer[k], b);
#pragma unroll
            for (int e = 0; e < E; ++e) v[e] = (w0 * a[e] + w1 * b[e]) * inv;
            uint4 out;
            if constexpr (sizeof(OT) == 4) {
                out = make_uint4(__float_as_uint(v[0]), __float_as_uint(v[1]), __float_as_uint(v[2]),
                                 __float_as_uint(v[3]));
            } else {
                out = make_uint4(pack_bf16x2(v[0], v[1]), pack_bf16x2(v[2], v[3]), pack_bf16x2(v[4], v[5]),
                                 pack_bf16x2(v[6], v[7]));
            }
            *reinterpret_cast<uint4*>(reinterpret_cast<unsigned char*>(dst + r * dst_stride) + c * 16) = out;
            if (c == 0) lse_dst[(size_t)r * num_parts] = wsum > 0.f ? m + log2f(wsum) : neg_inf();
        }
    }
}

// Cluster merge (config cluster_merge CM; the launch is one cluster of CM CTAs per head block and row, all of its
// splits): CTA r of the cluster owns rows R r .. R r + R - 1 (R = HPB / CM) of the head block's output.
//   1. each CTA stages its normalised rows in bf16 (as the bf16 partials) over its Q / K buffers, SO = 1040
//      bytes apart, the row's log2-sum-exp in the row's padding (bytes LATENT * 2 ..): 64 rows, 66,560 bytes;
//   2. a CTA barrier (the staged rows are complete: the copies and the merge read rows other warps wrote), then a
//      cluster barrier, arrived at (by the caller, cluster_arrive) when the CTA left its loop and waited for here:
//      every CTA of the cluster is done with its Q / K buffers, so that the area behind its staged rows may receive
//      (the cluster barrier's latency overlaps the staging; it does not order the staging itself);
//   3. thread s (s != r) pushes this CTA's rows of CTA s (R rows, one contiguous block of R x SO bytes, lse
//      included) with one bulk copy into slot r of CTA s's receive area (right after the staged rows), counted on
//      CTA s's receive mbarrier (armed in the prologue with (CM - 1) x R x SO bytes): the copy engine moves the
//      rows, no thread waits for a remote round trip (session 3's pair merge pulled rows with remote loads);
//   4. each CTA waits on its own receive mbarrier, merges its R rows from CM slots (its own staged rows are its
//      own slot) with the lse weights, and writes the final bf16 rows: rows at or past `rows` (padded heads) are
//      skipped;
//   5. a last cluster barrier (arrived at once the rows landed, waited at the end): the sender of a bulk copy
//      is not told when its source was read, so no CTA leaves before every CTA has received everything.
// A split without tokens takes part with lse -inf (weight 0) and zero rows; all -inf (an empty row): zeros.
template <int LATENT, int CM, int HPB>
__host__ __device__ constexpr unsigned mla_cluster_merge_bytes() {  // what a CTA receives
    return (unsigned)(CM - 1) * (HPB / CM) * (unsigned)mla_stage_stride<bf16, LATENT>();
}

// The caller has arrived on the cluster barrier (cluster_arrive) after its last use of the Q / K buffers. ROWS: as
// mla_stage_rows (HPB with config q_own_rows: the rows past HPB are never sent).
template <int LATENT, int CM, int HPB, int NACC, bool SXM = false, int ROWS = 64>
__device__ __forceinline__ void mla_cluster_merge(unsigned char* stage, const float (&o)[NACC], const float (&inv)[2],
                                                  const float (&lse)[2], int row0, int wg, int t, int tid,
                                                  unsigned bar_recv, unsigned rank, bf16* dst, int rows,
                                                  long long* prof) {
    constexpr int SO = mla_stage_stride<bf16, LATENT>();
    constexpr int R = HPB / CM;            // rows per CTA
    constexpr int SLOT = R * SO;           // bytes one peer sends
    constexpr int CPR = LATENT * 2 / 16;   // 16-byte chunks per row
    static_assert(HPB % CM == 0 && SO >= LATENT * 2 + 4 && SLOT % 16 == 0, "whole rows, the lse in the padding");
    unsigned char* recv = stage + 64 * SO;  // [CM][R] rows (slot r: this CTA's own rows stay staged)
    mla_stage_rows<bf16, LATENT, NACC, SXM, ROWS>(stage, o, inv, row0, wg, t);
    if (wg == 0 && t == 0) {
        *reinterpret_cast<float*>(stage + row0 * SO + LATENT * 2) = lse[0];
        *reinterpret_cast<float*>(stage + (row0 + 8) * SO + LATENT * 2) = lse[1];
    }
    long long t0 = prof ? clock64() : 0;
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // staged rows visible to the bulk copies
    // every warp's rows and the lse are staged before warp 0 copies them out and before the merge reads this CTA's
    // own slot: the cluster barrier below was arrived at before the staging, so it does not order it
    __syncthreads();
    if (prof) {  // (profile: the fence and the CTA barrier, to tell them from the staging stores)
        const long long now = clock64();
        prof[3] = now - t0;
        t0 = now;
    }
    cluster_wait_acquire();  // (arrived at by the caller after its loop)
    if (prof) {
        const long long now = clock64();
        prof[0] = now - t0;
        t0 = now;
    }
    if (tid < CM && tid != (int)rank)
        bulk_copy_s2cluster(cluster_map(smem_addr(recv + rank * SLOT), tid), smem_addr(stage + tid * SLOT), SLOT,
                            cluster_map(bar_recv, tid));
    mbar_wait(bar_recv, 0);
    __syncwarp();
    cluster_arrive_relaxed();  // this CTA has all its rows: its peers' copies into it are done
    if (prof) {
        const long long now = clock64();
        prof[1] = now - t0;
        t0 = now;
    }
    for (int idx = tid; idx < R * CPR; idx += 256) {
        const int i = idx / CPR, c = idx % CPR, row = (int)rank * R + i;
        float l[CM];
        float4 raw[CM];
#pragma unroll
        for (int s = 0; s < CM; ++s) {
            const unsigned char* src = s == (int)rank ? stage + row * SO : recv + (s * R + i) * SO;
            l[s] = *reinterpret_cast<const float*>(src + LATENT * 2);
            raw[s] = *reinterpret_cast<const float4*>(src + c * 16);
        }
        float m = l[0];
#pragma unroll
        for (int s = 1; s < CM; ++s) m = fmaxf(m, l[s]);
        float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f}, wsum = 0.f;
#pragma unroll
        for (int s = 0; s < CM; ++s) {
            const float w = l[s] == neg_inf() ? 0.f : exp2f(l[s] - m);
            wsum += w;
            float v[8];
            mla_unpack16<bf16>(raw[s], v);
#pragma unroll
            for (int e = 0; e < 8; ++e) acc[e] += w * v[e];
        }
        const float winv = wsum > 0.f ? 1.f / wsum : 0.f;
        if (row < rows)
            *reinterpret_cast<uint4*>(dst + (size_t)row * LATENT + c * 8) =
                make_uint4(pack_bf16x2(acc[0] * winv, acc[1] * winv), pack_bf16x2(acc[2] * winv, acc[3] * winv),
                           pack_bf16x2(acc[4] * winv, acc[5] * winv), pack_bf16x2(acc[6] * winv, acc[7] * winv));
    }
    if (prof) prof[2] = clock64() - t0;
    cluster_wait();  // every CTA of the cluster has received its rows: the sources may go
}

}  // namespace mf
