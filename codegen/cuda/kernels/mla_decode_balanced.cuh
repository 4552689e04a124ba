// MLA decode with a balanced tile schedule (config balanced_splits 1; sm_90a): the "P V late" kernel
// (mla_decode_pvlate.cuh: mla_pvlate_unit) over an even share of the whole launch's tiles per CTA instead of one
// (split, head block, row) per CTA.
//
// Why: at batch 64 with 128 heads the grid of the P V late kernel is 64 x 2 = 128 CTAs, one split each, on a
// 132-SM GPU: 4 SMs idle for the whole launch (~3%). Here the launch has one CTA per SM (MlaDecodeParams::
// num_splits = gridDim.x = G CTAs); the tiles of all (row, head block) segments, flattened in the order (row, head
// block, tile), T in all, are cut into G contiguous ranges: CTA c takes tiles [c T / G, (c + 1) T / G). A range may
// start and end inside a segment; each piece of a segment is one unit of mla_pvlate_unit (the pipeline drains
// between units; its mbarriers are set up again).
//   - A segment inside one CTA's range is written to MlaDecodeParams::out directly.
//   - A segment cut between CTAs ("parts"): each part writes its normalised rows and log2-sum-exps to a slot of the
//     workspace (o_part: CTA c's first unit in slot 2c, its last in slot 2c + 1, 64 rows of LATENT each, then the
//     slots' lse [2G][64] fp32), then arrives on the segment's counter (grid_sync word kMlaReadyFlags +
//     kMlaReadyFlagStride c0, c0 the segment's first CTA); the last part to arrive merges every part's rows into
//     `out` (lse-weighted, as mla_combine) and sets the counter back to 0 (no other part touches it again in this
//     launch, and the next launch is ordered after this one on the stream: graph replays need no reset). No CTA
//     waits for another, so the launch needs no co-residency.
//   - Rows without context: CTA c writes zeros for rows c, c + G, ...
// The prefix sums of tiles per row come from the context lengths on the GPU: warp 0 of every CTA reads them
// (batch / 32 per lane), scans, and finds the row holding its range's first tile.
// Without `out` (the benchmark's "decode only"), every unit writes its slot and nothing is merged; without
// grid_sync, cut segments are left as partials (never both set and cut: the host always passes both).
#pragma once
#include "mla_decode_pvlate.cuh"
#include "mla_wgmma_epilogue.cuh"  // mla_unpack16

namespace mf {

// The balanced schedule's cut: flattened tile at which CTA c's range starts ...
__device__ __forceinline__ long long mla_bal_start(int c, long long total, int ctas) {
    return (long long)c * total / ctas;
}
// ... and the CTA whose range holds flattened tile t (0 <= t < total): the largest c with mla_bal_start(c) <= t
// (CTAs before it with the same start have empty ranges).
__device__ __forceinline__ int mla_bal_cta(long long t, long long total, int ctas) {
    return (int)(((t + 1) * ctas - 1) / total);
}

// The merge of a cut segment (last part to arrive): rows 0 .. rows - 1 of out = the lse-weighted mean of the n
// parts' rows in slots slot[0 .. n - 1] (ints in shared memory at s_slot); weights staged in shared memory at s_w
// ([n][64] fp32). All threads of the CTA call it.
template <int LATENT, class PT>
__device__ __forceinline__ void mla_balanced_merge(const PT* parts, const float* lses, const int* s_slot, float* s_w,
                                                   int n, bf16* out, int rows, int tid) {
    constexpr int HB = 64, CH = 16;  // a thread's item: 16 columns of one row
    constexpr int ITEMS = HB * (LATENT / CH) / 256;
    static_assert(HB * (LATENT / CH) % 256 == 0, "whole items per thread");
    if (tid < rows) {
        float m = neg_inf();
        for (int k = 0; k < n; ++k) m = fmaxf(m, __ldcg(lses + s_slot[k] * HB + tid));
        float sum = 0.f;
        for (int k = 0; k < n; ++k) {
            const float w = exp2f(__ldcg(lses + s_slot[k] * HB + tid) - m);
            s_w[k * HB + tid] = w;
            sum += w;
        }
        const float inv = 1.f / sum;
        for (int k = 0; k < n; ++k) s_w[k * HB + tid] *= inv;
    }
    __syncthreads();
    constexpr int V = 16 / (int)sizeof(PT);  // values per 16-byte load
    float acc[ITEMS][CH];
#pragma unroll
    for (int i = 0; i < ITEMS; ++i)
#pragma unroll
        for (int e = 0; e < CH; ++e) acc[i][e] = 0.f;
    for (int k = 0; k < n; ++k) {
        const PT* src = parts + (size_t)s_slot[k] * HB * LATENT;
#pragma unroll
        for (int i = 0; i < ITEMS; ++i) {
            const int item = tid + 256 * i, r = item / (LATENT / CH), c0 = item % (LATENT / CH) * CH;
            if (r >= rows) continue;
            const float w = s_w[k * HB + r];
            float4 raw[CH / V];
#pragma unroll
            for (int q = 0; q < CH / V; ++q)
                raw[q] = __ldcg(reinterpret_cast<const float4*>(src + (size_t)r * LATENT + c0) + q);
#pragma unroll
            for (int q = 0; q < CH / V; ++q) {
                float v[V];
                mla_unpack16<PT>(raw[q], v);
#pragma unroll
                for (int e = 0; e < V; ++e) acc[i][q * V + e] += w * v[e];
            }
        }
    }
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) {
        const int item = tid + 256 * i, r = item / (LATENT / CH), c0 = item % (LATENT / CH) * CH;
        if (r >= rows) continue;
        uint4* dst = reinterpret_cast<uint4*>(out + (size_t)r * LATENT + c0);
#pragma unroll
        for (int q = 0; q < CH / 8; ++q)
            dst[q] = make_uint4(pack_bf16x2(acc[i][8 * q], acc[i][8 * q + 1]),
                                pack_bf16x2(acc[i][8 * q + 2], acc[i][8 * q + 3]),
                                pack_bf16x2(acc[i][8 * q + 4], acc[i][8 * q + 5]),
                                pack_bf16x2(acc[i][8 * q + 6], acc[i][8 * q + 7]));
    }
}

// Template arguments as mla_decode_pvlate<> (no multicast).
template <int HEADS, int LATENT, int ROPE, int PAGE, class PT, bool PDL, bool DPDL, bool PROF, int LATE, bool FAST,
          bool MC = false, int SYNC = -1, bool PRS = false, int QR = 0, bool PVE = false>
__device__ __forceinline__ void mla_decode_balanced(const MlaDecodeParams& p) {
    static_assert(!MC, "the balanced schedule's CTAs are not paired");
    static_assert(!PDL, "no combine launch follows");
    if constexpr (DPDL) griddep_wait();
    constexpr int TILE = 64, HB = 64, NHB = (HEADS + HB - 1) / HB;
    constexpr int MAX_PARTS = kMlaBalancedMaxCtas;  // the merge's weights [MAX_PARTS][64] in shared memory
    static_assert(MAX_PARTS * (HB + 1) * 4 <= MlaPvLateSmem<LATENT, ROPE>::total - 1024, "merge staging fits");
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    unsigned char* smem = smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u);
    float* s_w = reinterpret_cast<float*>(smem);
    int* s_slot = reinterpret_cast<int*>(smem + MAX_PARTS * HB * 4);
    __shared__ int s_row, s_off, s_last;
    __shared__ long long s_total;

    const int ctas = gridDim.x, c = blockIdx.x, tid = threadIdx.x, lane = tid & 31;
    PT* parts = reinterpret_cast<PT*>(p.o_part);
    float* lses = reinterpret_cast<float*>(parts + (size_t)2 * ctas * HB * LATENT);

    if (p.out)  // rows without context: zeros
        for (int r = c; r < p.batch; r += ctas)
            if (p.seq_lens[r] == 0)
                for (int i = tid; i < HEADS * LATENT / 8; i += 256)
                    reinterpret_cast<uint4*>(p.out + (size_t)r * HEADS * LATENT)[i] = make_uint4(0u, 0u, 0u, 0u);

    if (tid < 32) {  // warp 0: tiles per row, their prefix sums, the row holding this CTA's first tile
        const int per = (p.batch + 31) / 32, r0 = min(p.batch, lane * per), r1 = min(p.batch, r0 + per);
        int sum = 0;
        for (int r = r0; r < r1; ++r) sum += (p.seq_lens[r] + TILE - 1) / TILE;
        int incl = sum;
#pragma unroll
        for (int d = 1; d < 32; d <<= 1) {
            const int v = __shfl_up_sync(0xffffffffu, incl, d);
            if (lane >= d) incl += v;
        }
        const long long total = (long long)__shfl_sync(0xffffffffu, incl, 31) * NHB;
        const long long lo = total > 0 ? mla_bal_start(c, total, ctas) : 0;
        long long pos = (long long)(incl - sum) * NHB;
        if (total > 0 && lo >= pos && lo < (long long)incl * NHB) {  // one lane
            int r = r0;
            for (;; ++r) {
                const long long n = (long long)((p.seq_lens[r] + TILE - 1) / TILE) * NHB;
                if (lo < pos + n) break;
                pos += n;
            }
            s_row = r;
            s_off = (int)(lo - pos);
        }
        if (lane == 0) s_total = total;
    }
    __syncthreads();
    const long long total = s_total;
    if (total == 0) return;
    const long long hi = mla_bal_start(c + 1, total, ctas);
    long long pos = mla_bal_start(c, total, ctas);
    int r = s_row, off = s_off;  // the unit's row and its first tile within the row's NHB x tiles
    for (bool first = true; pos < hi; first = false) {
        int nt = (p.seq_lens[r] + TILE - 1) / TILE;
        while (off >= nt * NHB) {  // (the row is done, or empty)
            ++r;
            off = 0;
            nt = (p.seq_lens[r] + TILE - 1) / TILE;
        }
        const int hb = off / nt, t0 = off % nt;
        const int take = (int)min((long long)(nt - t0), hi - pos);
        const long long seg0 = pos - t0;  // the segment's first tile
        const int c0 = mla_bal_cta(seg0, total, ctas), c1 = mla_bal_cta(seg0 + nt - 1, total, ctas);
        const bool whole = c0 == c1;
        const int head0 = hb * HB, rows = min(HB, HEADS - head0);
        const int slot = 2 * c + (first ? 0 : 1);
        bf16* out_rows = p.out ? p.out + ((size_t)r * HEADS + head0) * LATENT : nullptr;
        const MlaPvLateUnit<PT> u{r,
                                  head0,
                                  t0 * TILE,
                                  min(p.seq_lens[r], (t0 + take) * TILE),
                                  whole ? out_rows : nullptr,
                                  parts + (size_t)slot * HB * LATENT,
                                  (size_t)LATENT,
                                  lses + slot * HB,
                                  1};
        if (!first) {  // the previous unit's staged rows are read; its generic shared stores before the next copies
            fence_proxy_async_smem();
            __syncthreads();
        }
        mla_pvlate_unit<HEADS, LATENT, ROPE, PAGE, PT, PROF, LATE, FAST, MC, SYNC, PRS, QR, PVE>(p, u, !first);
        pos += take;
        off += take;
        if (whole || !out_rows || !p.grid_sync) continue;
        __syncthreads();  // every thread's partial stores are issued (and the staged rows read)
        if (tid == 0) {
            __threadfence();  // this CTA's part (ordered by the barrier above) before the arrival
            unsigned* counter = p.grid_sync + kMlaReadyFlags + kMlaReadyFlagStride * c0;
            int n = 0;
            for (int k = c0; k <= c1; ++k)
                if (mla_bal_start(k + 1, total, ctas) > mla_bal_start(k, total, ctas)) {
                    // part k's slot: its first unit (2k) unless the segment starts after k's range does (c0 only)
                    s_slot[n++] = 2 * k + (mla_bal_start(k, total, ctas) < seg0 ? 1 : 0);
                }
            const bool last = atomicAdd(counter, 1u) + 1 == (unsigned)n;
            if (last) atomicExch(counter, 0u);
            __threadfence();
            s_last = last ? n : 0;
        }
        __syncthreads();
        if (s_last) mla_balanced_merge<LATENT, PT>(parts, lses, s_slot, s_w, s_last, out_rows, rows, tid);
    }
}

}  // namespace mf
