// MLA decode with a balanced tile schedule (config balanced_splits 1 .. 3; sm_90a): the "P V late" kernel
// (mla_decode_pvlate.cuh with UNIT) over an even share of the whole launch's tiles per CTA instead of one
// (split, head block, row) per CTA.
//
// Why: at batch 64 with 128 heads the grid of the P V late kernel is 64 x 2 = 128 CTAs, one split each, on a
// 132-SM GPU: 4 SMs idle for the whole launch (~3%). Here the launch has one CTA per SM (gridDim.x = G CTAs: the
// host's split count clamped to [head blocks, kMlaBalancedMaxCtas]; MlaDecodeParams::num_splits is not read), in NG = G / NHB groups of one CTA per head block (CTA c: head block c % NHB of
// group c / NHB; the last G % NHB CTAs idle). The tiles of all rows, flattened in the order (row, tile), T in all, are
// cut into NG even contiguous ranges: group g takes tiles [g T / NG, (g + 1) T / NG), each of its CTAs for its head
// block, so that the head blocks of a row read the same tiles at about the same time, as in the grid kernel (one DRAM
// read, the others from L2: flattened over (row, head block, tile), session 8's first version, each tile was read
// from DRAM once per head block: 1.25x the time at 64 x 32K). A range may start and end inside a row; each piece of
// a (row, head block) segment is one unit (MlaPvLateUnit) (the pipeline drains between units; its mbarriers are set
// up again; BAL 3: with the next unit's first tile already in flight).
//   - A segment inside one CTA's range is written to MlaDecodeParams::out directly.
//   - A segment cut between CTAs ("parts"): each part writes its normalised rows and log2-sum-exps to a slot of the
//     workspace (o_part: CTA c's first unit in slot 2c, its last in slot 2c + 1, 64 rows of LATENT each, then the
//     slots' lse [2G][64] fp32), then arrives on the segment's counter (grid_sync word kMlaReadyFlags +
//     kMlaReadyFlagStride c0, c0 the segment's first part's CTA); the last part to arrive merges every part's rows into
//     `out` (lse-weighted, as mla_combine) and sets the counter back to 0 (no other part touches it again in this
//     launch, and the next launch is ordered after this one on the stream: graph replays need no reset). No CTA
//     waits for another, so the launch needs no co-residency.
//     (BAL 2, 3: a part that finds every other part arrived merges at once, its own rows from shared memory.)
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
// parts' rows in slots slot[0 .. n - 1] (ints in shared memory at s_slot) and, where `own` is set, of this CTA's
// part staged in shared memory (bf16 rows of mla_stage_stride, lse own_lse[64]); weights staged in shared memory at
// s_w ([n + 1][64] fp32). All threads of the CTA call it.
template <int LATENT, class PT>
__device__ __forceinline__ void mla_balanced_merge(const PT* parts, const float* lses, const int* s_slot, float* s_w,
                                                   int n, const unsigned char* own, const float* own_lse, bf16* out,
                                                   int rows, int tid) {
    constexpr int HB = 64, CH = 16;  // a thread's item: 16 columns of one row
    constexpr int ITEMS = HB * (LATENT / CH) / 256;
    constexpr int SO = mla_stage_stride<bf16, LATENT>();
    static_assert(HB * (LATENT / CH) % 256 == 0, "whole items per thread");
    if (tid < rows) {
        float m = own ? own_lse[tid] : neg_inf();
        for (int k = 0; k < n; ++k) m = fmaxf(m, __ldcg(lses + s_slot[k] * HB + tid));
        float sum = 0.f;
        for (int k = 0; k < n; ++k) {
            const float w = exp2f(__ldcg(lses + s_slot[k] * HB + tid) - m);
            s_w[k * HB + tid] = w;
            sum += w;
        }
        const float w_own = own ? exp2f(own_lse[tid] - m) : 0.f;
        sum += w_own;
        const float inv = 1.f / sum;
        for (int k = 0; k < n; ++k) s_w[k * HB + tid] *= inv;
        s_w[n * HB + tid] = w_own * inv;
    }
    __syncthreads();
    constexpr int V = 16 / (int)sizeof(PT);  // values per 16-byte load
    constexpr int IG = ITEMS / 2;            // items per pass (64 accumulators)
#pragma unroll 1
    for (int g = 0; g < ITEMS; g += IG) {
        float acc[IG][CH];
#pragma unroll
        for (int i = 0; i < IG; ++i)
#pragma unroll
            for (int e = 0; e < CH; ++e) acc[i][e] = 0.f;
        for (int k = 0; k < n; ++k) {
            const PT* src = parts + (size_t)s_slot[k] * HB * LATENT;
#pragma unroll
            for (int i = 0; i < IG; ++i) {
                const int item = tid + 256 * (g + i), r = item / (LATENT / CH), c0 = item % (LATENT / CH) * CH;
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
        if (own) {
#pragma unroll
            for (int i = 0; i < IG; ++i) {
                const int item = tid + 256 * (g + i), r = item / (LATENT / CH), c0 = item % (LATENT / CH) * CH;
                if (r >= rows) continue;
                const float w = s_w[n * HB + r];
#pragma unroll
                for (int q = 0; q < CH / 8; ++q) {
                    float v[8];
                    mla_unpack16<bf16>(*reinterpret_cast<const float4*>(own + r * SO + c0 * 2 + 16 * q), v);
#pragma unroll
                    for (int e = 0; e < 8; ++e) acc[i][q * 8 + e] += w * v[e];
                }
            }
        }
#pragma unroll
        for (int i = 0; i < IG; ++i) {
            const int item = tid + 256 * (g + i), r = item / (LATENT / CH), c0 = item % (LATENT / CH) * CH;
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
}

__device__ __forceinline__ unsigned mla_bal_ld_acquire(const unsigned* p) {
    unsigned v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
    return v;
}

// Template arguments as mla_decode_pvlate<> (no multicast), then BAL: the config's balanced_splits. BAL 2: a cut
// segment's part reads the counter before its stores; when every other part has arrived it is the last: it stages
// its own rows in shared memory and merges them with the others' partials straight into `out` (no partial of its
// own written and read back), else it stores its partial and arrives as with BAL 1. BAL 3: BAL 2, and a unit that
// has a next one sets up the next one's mbarriers and issues its tile 0 (into the first K stage) before its epilogue,
// so that the copy lands while the rows are stored and Q is loaded (bf16 partials: the rows are staged in the Q
// buffer only).
template <int HEADS, int LATENT, int ROPE, int PAGE, class PT, bool PDL, bool DPDL, bool PROF, int LATE, bool FAST,
          bool MC = false, int SYNC = -1, bool PRS = false, int QR = 0, bool PVE = false, int BAL = 1>
__device__ __forceinline__ void mla_decode_balanced(const MlaDecodeParams& p) {
    static_assert(!MC, "the balanced schedule's CTAs are not paired");
    static_assert(!PDL, "no combine launch follows");
    if constexpr (DPDL) griddep_wait();
    constexpr int TILE = 64, HB = 64, NHB = (HEADS + HB - 1) / HB;
    constexpr int MAX_PARTS = kMlaBalancedMaxCtas;  // the merge's weights [MAX_PARTS][64] in shared memory
    using Smem = MlaPvLateSmem<LATENT, ROPE>;
    // the merge's weights and slots in the second K stage (an epilogue stages bf16 rows in the Q buffer; BAL 3: the
    // next unit's tile 0 lands in the first stage meanwhile)
    static_assert((MAX_PARTS + 1) * (HB + 1) * 4 <= Smem::k_bytes, "merge weights fit one K stage");
    static_assert(HB * mla_stage_stride<bf16, LATENT>() <= Smem::q_bytes, "own rows staged in the Q buffer");
    static_assert(BAL != 3 || sizeof(PT) == 2, "BAL 3: partials staged in bf16 (the Q buffer only)");
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    unsigned char* smem = smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u);
    float* s_w = reinterpret_cast<float*>(smem + Smem::q_bytes + Smem::k_bytes);
    int* s_slot = reinterpret_cast<int*>(smem + Smem::q_bytes + Smem::k_bytes + (MAX_PARTS + 1) * HB * 4);
    __shared__ int s_row, s_off, s_last;
    __shared__ long long s_total;
    __shared__ float s_lse_own[HB];

    const int ctas = gridDim.x, c = blockIdx.x, tid = threadIdx.x, lane = tid & 31;
    PT* parts = reinterpret_cast<PT*>(p.o_part);
    float* lses = reinterpret_cast<float*>(parts + (size_t)2 * ctas * HB * LATENT);

    if (p.out)  // rows without context: zeros
        for (int r = c; r < p.batch; r += ctas)
            if (p.seq_lens[r] == 0)
                for (int i = tid; i < HEADS * LATENT / 8; i += 256)
                    reinterpret_cast<uint4*>(p.out + (size_t)r * HEADS * LATENT)[i] = make_uint4(0u, 0u, 0u, 0u);

    // CTA c: head block hb = c % NHB of group g = c / NHB; the NG groups cut the (row, tile) sequence, so that the
    // head blocks of a row read the same tiles at about the same time (one DRAM read, the others from L2)
    const int NG = ctas / NHB, g = c / NHB, hb = c % NHB;
    if (g >= NG) return;  // (the last ctas % NHB CTAs)
    if (tid < 32) {  // warp 0: tiles per row, their prefix sums, the row holding this group's first tile
        const int per = (p.batch + 31) / 32, r0 = min(p.batch, lane * per), r1 = min(p.batch, r0 + per);
        int sum = 0;
        for (int r = r0; r < r1; ++r) sum += (p.seq_lens[r] + TILE - 1) / TILE;
        int incl = sum;
#pragma unroll
        for (int d = 1; d < 32; d <<= 1) {
            const int v = __shfl_up_sync(0xffffffffu, incl, d);
            if (lane >= d) incl += v;
        }
        const long long total = __shfl_sync(0xffffffffu, incl, 31);
        const long long lo = total > 0 ? mla_bal_start(g, total, NG) : 0;
        long long pos = incl - sum;
        if (total > 0 && lo >= pos && lo < incl) {  // one lane
            int r = r0;
            for (;; ++r) {
                const int n = (p.seq_lens[r] + TILE - 1) / TILE;
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
    // The loop's state lives in shared memory, written by thread 0 between barriers, so that none of it stays in
    // registers across a unit's tile loop (the P V late loop needs ~200 of them).
    struct Piece {
        MlaPvLateUnit<PT> u;
        long long seg0;  // the row's first flattened tile
        int g0, g1;      // the groups whose ranges hold the row's first and last tile
        bf16* out_rows;  // the segment's output rows (null: "decode only")
    };
    __shared__ Piece s_cur, s_next;
    __shared__ long long s_pos;  // thread 0's cursor: flattened tile s_pos = tile s_off of row s_row
    __shared__ int s_more;       // s_next holds the unit after s_cur
    const long long hi = mla_bal_start(g + 1, total, NG);
    // (thread 0) the unit at the cursor (past finished or empty rows) into q, the cursor moved past it; `first`: the
    // CTA's first unit (slot 2c, else 2c + 1)
    auto take_piece = [&](Piece& q, bool first) {
        int r = s_row, off = s_off;
        int nt = (p.seq_lens[r] + TILE - 1) / TILE;
        while (off >= nt) {
            ++r;
            off = 0;
            nt = (p.seq_lens[r] + TILE - 1) / TILE;
        }
        const long long pos = s_pos;
        const int take = (int)min((long long)(nt - off), hi - pos);
        q.seg0 = pos - off;
        q.g0 = mla_bal_cta(q.seg0, total, NG);
        q.g1 = mla_bal_cta(q.seg0 + nt - 1, total, NG);
        const int head0 = hb * HB, slot = 2 * c + (first ? 0 : 1);
        q.out_rows = p.out ? p.out + ((size_t)r * HEADS + head0) * LATENT : nullptr;
        q.u = MlaPvLateUnit<PT>{r,
                                head0,
                                off * TILE,
                                min(p.seq_lens[r], (off + take) * TILE),
                                q.g0 == q.g1 ? q.out_rows : nullptr,
                                parts + (size_t)slot * HB * LATENT,
                                (size_t)LATENT,
                                lses + slot * HB,
                                1,
                                0,
                                -1,
                                0};
        s_row = r;
        s_off = off + take;
        s_pos = pos + take;
    };
    if (mla_bal_start(g, total, NG) >= hi) return;  // (an empty range: fewer tiles than groups)
    if (tid == 0) {
        s_pos = mla_bal_start(g, total, NG);
        take_piece(s_next, true);
        s_more = 1;
    }
    for (bool first = true;; first = false) {
        __syncthreads();  // s_next and s_more written; (a later unit) everyone is done with s_cur
        if (!s_more) break;
        __syncthreads();  // everyone read s_more
        if (tid == 0) {
            s_cur = s_next;
            s_more = s_pos < hi;
            if (s_more) {
                take_piece(s_next, false);
                if constexpr (BAL == 3) {  // the next unit's barriers and tile 0 set up before this one's epilogue
                    s_cur.u.next_b = s_next.u.b;
                    s_cur.u.next_t_begin = s_next.u.t_begin;
                    s_next.u.pre = 1;
                }
            }
        }
        fence_proxy_async_smem();  // (a later unit) the previous one's generic shared stores before the next copies
        __syncthreads();           // s_cur written; the previous unit's staged rows are read
        // whether the segment is cut between groups (and merged by the last part to finish); its counter (at the
        // segment's first part, CTA g0 NHB + hb)
        auto cut = [&] { return s_cur.g0 != s_cur.g1 && s_cur.out_rows && p.grid_sync; };
        auto counter = [&] { return p.grid_sync + kMlaReadyFlags + kMlaReadyFlagStride * (s_cur.g0 * NHB + hb); };
        // (tid 0) the parts' slots into s_slot, except this CTA's with `skip_own`; returns the part count
        auto list_parts = [&](bool skip_own) {
            int n = 0, m = 0;
            for (int k = s_cur.g0; k <= s_cur.g1; ++k)
                if (mla_bal_start(k + 1, total, NG) > mla_bal_start(k, total, NG)) {
                    // group k's CTA of this head block: its first unit's slot unless the row starts after k's range
                    // does (g0 only)
                    ++n;
                    if (!skip_own || k != g)
                        s_slot[m++] = 2 * (k * NHB + hb) + (mla_bal_start(k, total, NG) < s_cur.seg0 ? 1 : 0);
                }
            return n;
        };
        mla_decode_pvlate<HEADS, LATENT, ROPE, PAGE, PT, false, false, PROF, LATE, FAST, MC, SYNC, PRS, QR, PVE, true>(
            p, &s_cur.u, !first,
            [&](unsigned char* sm, const float(&o)[128], const float(&inv)[2], const float(&lse)[2], int row0, int wg,
                int t, int tid_, int rows_) {
                if (BAL >= 2 && cut()) {
                    if (tid == 0) {  // every other part arrived (after its stores): this one is the last
                        const int n = list_parts(true);
                        s_last = mla_bal_ld_acquire(counter()) + 1 == (unsigned)n ? n - 1 : 0;
                        __threadfence();
                    }
                    __syncthreads();
                    if (s_last) {
                        if (wg == 0 && t == 0) {
                            s_lse_own[row0] = lse[0];
                            s_lse_own[row0 + 8] = lse[1];
                        }
                        mla_stage_rows<bf16, LATENT, 128, false>(sm, o, inv, row0, wg, t);
                        __syncthreads();
                        mla_balanced_merge<LATENT, PT>(parts, lses, s_slot, s_w, s_last, sm, s_lse_own, s_cur.out_rows,
                                                       rows_, tid_);
                        if (tid == 0) atomicExch(counter(), 0u);
                        return;
                    }
                }
                mla_pvlate_store<HEADS, LATENT>(s_cur.u, sm, o, inv, lse, row0, wg, t, tid_, rows_);
            });
        if (!cut() || (BAL >= 2 && s_last)) continue;  // (BAL 2, 3: s_last set: merged in the epilogue)
        __syncthreads();  // every thread's partial stores are issued (and the staged rows read)
        if (tid == 0) {
            __threadfence();  // this CTA's part (ordered by the barrier above) before the arrival
            const int n = list_parts(false);
            const bool last = atomicAdd(counter(), 1u) + 1 == (unsigned)n;
            if (last) atomicExch(counter(), 0u);
            __threadfence();
            s_last = last ? n : 0;
        }
        __syncthreads();
        if (s_last)
            mla_balanced_merge<LATENT, PT>(parts, lses, s_slot, s_w, s_last, nullptr, nullptr, s_cur.out_rows,
                                           min(HB, HEADS - s_cur.u.head0), tid);
    }
}

}  // namespace mf
