// MLA decode, Hopper "P V late" schedule (config producer_consumer 4..7: LATE 2, 1, 3, 4; sm_90a, K tiles by TMA,
// 64-token tiles, 2 stages). Same contract as mla_decode_pvfirst<> (kernels/mla_decode_pvfirst.cuh), whose schedule it
// changes in one place: part of warpgroup 1's P V(j - 1) runs on the tensor cores while warpgroup 0 is in
// softmax(j), where pc2's tensor cores idle (~650 cycles a tile, H200, session 5).
//
// Warpgroup 1's O half (value columns 256..511 = column blocks 4..7) is issued in two parts: the early part,
// blocks 4 .. 7 - LATE (m64n(256 - 64 LATE)), as soon as P(j - 1) is ready (beside warpgroup 0's P V(j - 1), as in
// pc2), and the late part, blocks 8 - LATE .. 7 (m64n(64 LATE)), only once warpgroup 0 has issued all of S(j)
// (mbarrier "S issued"), so that the tensor cores take it after S(j), in the softmax window (LATE 4: no early
// part, all of warpgroup 1's P V is late, one m64n256 part chained onto O). The stage of tile
// j - 1 is then released in two parts, refilled with tile j + 1 by thread 128:
//   lo = column blocks 0 .. 7 - LATE: read by S(j - 1), warpgroup 0's P V(j - 1) (blocks 0..3) and the early part;
//        released once both are done (~0.8k cycles into tile j: "empty lo", 8 warps), lands in time;
//   hi = blocks 8 - LATE .. 7 and block 8 (the rope block, where P(j - 1) sits): read by the late part too,
//        released after it (~at the end of tile j); S(j + 1) goes through lo first and reaches hi ~1.8k cycles
//        (LATE 2) after its refill was issued.
// Each half has its own full mbarrier per stage. Warpgroup 0's pass j: P V(j - 1) (blocks 0..3), wait for
// tile j's lo, S(j)'s first 12 k-steps, wait for the P V and release lo(j - 1), the rest of lo's k-steps, wait for
// hi, hi's k-steps, "S issued", wait for S, softmax(j) (P(j) into tile j's rope block, alpha(j), "P(j) ready").
// Warpgroup 1's pass j: wait for P(j) ready; rescale; early part; wait for it, release lo(j), thread 128 refills
// lo with tile j + 2 once warpgroup 0 released it too; wait for "S(j + 1) issued" (not on the last tile); late part
// (into fresh accumulators: 32 LATE registers); wait for it, warpgroup barrier, thread 128 refills hi with tile
// j + 2; add the late part to O. (H100, first version: the lo refill waited behind "S(j + 1) issued", i.e. behind
// the hi half of tile j + 1, and tile j + 2's lo landed ~0.5k cycles late: 3.09k cycles a tile, pc2 3.02k.)
// Predicted (H200 cycles per tile, LATE 2): P V halves 512 + 256 + S ~1300 + max(softmax, late part 256 + issue)
// ~2.5k, against pc2's 3.04k, if the hi refill lands within ~1.8k cycles of its issue.
// Shared memory: MlaPvLateSmem (Q, 2 K stages, alpha [2][64], row sums, mbarriers full lo [2], full hi [2],
// empty lo [2], ready [2], S issued, MC: pair lo [2], pair hi [2]).
// MC (config tma 2): the head-block pair is a cluster (1, 2, 1) and shares each tile: each CTA issues every other
// box of a half, multicast to both, and refills a half once both CTAs released it (pair mbarriers, one remote
// arrival per CTA). H100: 1.55x slower (each CTA's refill waits for the other's release).
// ptxas: every wgmma group is committed and waited unconditionally (tile 0's S before the loop, the last P V
// after it), so that ptxas does not serialize the wgmmas (see mla_decode_seesaw.cuh).
#pragma once
#include "cluster_sm90.cuh"  // cluster_sync
#include "mla_decode_pvfirst.cuh"
#include "mla_pvlate_unit.cuh"  // MlaPvLateUnit (UNIT)
#include "mla_split_rows.cuh"   // mla_split_rows_store, mla_row_inv_lse

namespace mf {

// MlaPvFirstSmem with room for the pair barriers of MC (pair lo [2], pair hi [2] after the 9 of pc2's layout).
template <int LATENT, int ROPE>
struct MlaPvLateSmem : MlaPvFirstSmem<LATENT, ROPE> {
    static constexpr int bar_bytes = 112;
    static constexpr int total = MlaPvFirstSmem<LATENT, ROPE>::total - MlaPvFirstSmem<LATENT, ROPE>::bar_bytes + bar_bytes;
};

// d (+)= P V over value column blocks b0 .. b0 + N / 64 - 1 of the stage at sKa, P in its column block NB - 1
// (no rescale; commits one wgmma group). FRESH: d = P V (scale_d 0 on the first k-step).
template <int N, int NB, bool FRESH = false>
__device__ __forceinline__ void mla_pv_part(float (&d)[N / 2], unsigned sKa, int b0) {
    const unsigned long long da = wgmma_desc_sw128(sKa + (NB - 1) * (64 * 128), 16, 1024);  // P
    const unsigned long long db = wgmma_desc_sw128(sKa + b0 * (64 * 128), 64 * 128, 1024);  // V, N-major
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
        const unsigned long long a = wgmma_desc_add(da, kk * 32), b = wgmma_desc_add(db, kk * 16 * 128);
        const int acc = !FRESH || kk > 0;
        if constexpr (N == 64) wgmma_m64n64k16_ss_tb(d, a, b, acc);
        else if constexpr (N == 128) wgmma_m64n128k16_ss_tb(d, a, b, acc);
        else if constexpr (N == 192) wgmma_m64n192k16_ss_tb(d, a, b, acc);
        else wgmma_m64n256k16_ss_tb(d, a, b, acc);
    }
    wgmma_commit();
}

// PT, PDL, DPDL: as mla_decode_wgmma<>. LATE: warpgroup 1's value blocks issued after S (1..4). FAST: the softmax
// (mla_wgmma_softmax.cuh). PROF slots: thread 0 (warpgroup 0): prologue, P V(j - 1) issued + tile j's lo waited
// for, the rest of S (lo, hi wait, hi) issued and S waited for, softmax, S's first k-steps + the P V wait, the last
// P V, epilogue, tiles; thread 128 (warpgroup 1): prologue, P-ready wait, rescale + early part issued and waited for
// + lo refill, the "S issued" wait + late part issued, late part waited for + hi refill, -, epilogue, tiles.
// SYNC (config softmax_fast 2, 3: -1 otherwise): the softmax keeps P in registers until the warpgroup barrier that
// lets it overwrite the rope block (mla_softmax_tile_sync), with SYNC of its exponentials per thread on the FP32
// pipe (0 or 8). PRS (config producer_consumer 8, LATE 4, SYNC >= 0): warpgroup 0's P V takes P from the
// softmax's registers (wgmma_m64n256k16_rs_tb), not from shared memory: 8 KB less shared-memory reading per tile
// (S and P V read ~300 KB a tile at 128 bytes a cycle), and its issue no longer reads the other warps' stores.
// QR (config producer_consumer 9: 8): S's first QR k-steps take Q from registers (wgmma_m64n64k16_rs, 4 registers
// a k-step, loaded once by ldmatrix): an SS m64n64k16 reads 4 KB of shared memory in its 32 tensor cycles, all of
// the 128 bytes a cycle, so S ran at ~36 cycles a k-step beside the tile copies; RS reads 2 KB.
// PVE (config producer_consumer 10: with QR 8, 11: without; PRS): warpgroup 0 issues its P V(j) inside softmax(j),
// as soon as P(j) is in its registers, before the barrier, the P stores, the proxy fence and "P(j) ready" (which
// only warpgroup 1 needs), not at the start of pass j + 1: the tensor cores idled ~350 cycles a tile there (pc7).
// PROF also reports threads 96 (warpgroup 0's last warp) and 224 in profile[16 .. 31] (the skew of the warps:
// warpgroup 0's P V waits for its slowest warp).
// UNIT (kernels/mla_decode_balanced.cuh): the CTA's work is *unit (MlaPvLateUnit) instead of the grid's (split, head
// block, row), and `epilogue(smem, o, inv, lse, row0, wg, t, tid, rows)` stores its rows once every wgmma is done (o:
// this thread's accumulators, inv: 1 / row sum of rows row0, row0 + 8, lse: their log2-sum-exp (in warpgroup 0),
// smem: the Q and K buffers, free): mla_pvlate_store, or the balanced schedule's merge. `again`: a later unit of the
// same CTA: the mbarriers are invalidated before they are initialised again (the caller synchronised the CTA).
// BOX (config stage_box_wait 1; grid schedule, no MC): each 64-column box of a stage lands on an mbarrier of its own
// (box barriers [2][NB] after the pair barriers; the full lo / hi barriers stay unused): S(j) waits box by box, so
// that it starts once box 0 of tile j landed instead of the whole lo half (pc7 sf2, H200 64 x 32K: tile j's lo lands
// ~150-200 cycles after warpgroup 0 is ready for it, the tensor cores idle meanwhile), and warpgroup 1 waits for
// its value boxes 4..7 only. BOX 2 (stage_box_wait 2, LATE 4, P from shared memory): also warpgroup 0's P V(j - 1)
// as two m64n128 groups (value blocks 0, 1 then 2, 3), boxes 0 and 1 released as soon as the first is done (an
// "empty a" barrier per stage beside the lo one): their refill goes out ~256 tensor cycles earlier.
struct MlaPvLateGridEpilogue {};
template <int HEADS, int LATENT, int ROPE, int PAGE, class PT, bool PDL, bool DPDL, bool PROF, int LATE, bool FAST,
          bool MC = false, int SYNC = -1, bool PRS = false, int QR = 0, bool PVE = false, bool UNIT = false,
          class EPI = MlaPvLateGridEpilogue, int BOX = 0>
__device__ __forceinline__ void mla_decode_pvlate(const MlaDecodeParams& p, const MlaPvLateUnit<PT>* unit = nullptr,
                                                  bool again = false, EPI&& epilogue = EPI{}) {
    if constexpr (DPDL) griddep_wait();
    if constexpr (PDL) griddep_launch_dependents();
    MlaCycleProfile<PROF> prof;
    constexpr int TILE = 64, D = LATENT + ROPE, HB = 64, NB = D / 64, KS = D / 16;
    constexpr int KS_EARLY = 12;         // S(j)'s k-steps issued before warpgroup 0 waits for its P V(j - 1)
    constexpr int LO = NB - 1 - LATE;    // column blocks 0 .. LO - 1 are the lo half, LO .. NB - 1 the hi half
    constexpr int NE = 64 * (4 - LATE);  // warpgroup 1's early part: blocks 4 .. LO - 1 (N columns)
    using Smem = MlaPvLateSmem<LATENT, ROPE>;
    static_assert(LATENT == 512, "each warpgroup's O half is one m64n256 accumulator");
    static_assert(ROPE == 64, "P (64 heads x 64 tokens bf16) takes the place of exactly one 64-column rope block");
    static_assert(LATE >= 1 && LATE <= 4, "the late part is 1..4 of warpgroup 1's 4 value blocks");
    static_assert(!PRS || SYNC >= 0, "P V with P from registers takes them from mla_softmax_tile_sync");
    static_assert(QR >= 0 && QR <= KS_EARLY, "Q from registers for some of S's first k-steps");
    static_assert(!PVE || PRS, "P V issued inside the softmax takes P from its registers");
    static_assert(!BOX || (!UNIT && !MC && QR == 0), "box barriers: grid schedule, no multicast, Q from shared memory");
    static_assert(BOX < 2 || (LATE == 4 && !PRS && !PVE), "BOX 2 splits warpgroup 0's P V (from shared memory)");
    static_assert(4 * LO >= KS_EARLY, "S's first k-steps read the lo half only");
    static_assert(PAGE % TILE == 0, "TMA boxes of one page: the page must be a multiple of the tile");
    static_assert(64 * (LATENT * 4 + 32) <= Smem::q_bytes + 2 * Smem::k_bytes,
                  "the output rows are staged over the Q and K buffers");

    extern __shared__ __align__(1024) unsigned char smem_raw[];
    unsigned char* smem = smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u);
    unsigned char* sQ = smem;
    unsigned char* sK = sQ + Smem::q_bytes;
    float* s_alpha = reinterpret_cast<float*>(sK + 2 * Smem::k_bytes);  // [2][HB] by stage
    float* red_sum = s_alpha + 2 * HB;                                   // [HB]
    const unsigned bar_full = smem_addr(red_sum + HB), bar_full_hi = bar_full + 16, bar_empty = bar_full_hi + 16;
    const unsigned bar_ready = bar_empty + 16, bar_issued = bar_ready + 16;
    const unsigned bar_pair = bar_issued + 8;  // MC: pair lo [2], pair hi [2] (both CTAs released the half)
    const unsigned bar_box0 = bar_pair + 32;   // BOX: box cb of stage st at bar_box0 + 8 (NB st + cb)
    auto bar_box = [&](int st, int cb) { return bar_box0 + 8 * (NB * st + cb); };
    const unsigned bar_empty_a = bar_box0 + 8 * 2 * NB;  // BOX 2: boxes 0, 1 of stage st released (8 warps)

    const int split = UNIT ? 0 : blockIdx.x, head0 = UNIT ? unit->head0 : blockIdx.y * HB;
    const int b = UNIT ? unit->b : blockIdx.z;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wg = warp >> 2;
    const int yr = MC ? blockIdx.y & 1 : 0;  // MC: this CTA's rank in the head-block pair (cluster (1, 2, 1))
    const int row0 = (warp & 3) * 16 + (lane >> 2);  // this thread's rows: row0 and row0 + 8 (S, P and O)

    const MlaSplitTiles cut = UNIT ? MlaSplitTiles{0, unit->t_begin, unit->t_end,
                                                   (unit->t_end - unit->t_begin + TILE - 1) / TILE}
                                   : mla_split_tiles<TILE>(p.seq_lens[b], p.num_splits, split);
    const int t_begin = cut.t_begin, t_end = cut.t_end, n_tiles = cut.n_tiles;
    const size_t part_row = (size_t)b * HEADS;
    const bool direct = p.num_splits == 1 && p.out != nullptr;
    if (!UNIT && n_tiles == 0) {
        mla_empty_split<HEADS, LATENT, HB>(p, part_row, head0, split, direct, tid);
        return;
    }

    const int* table = p.block_table + (size_t)b * p.block_table_stride;
    // the lo (hi false) or hi (hi true) half of tile i at cache page `page` into its stage (one thread)
    // (BOX: boxes [cb0, cb1) of the half when cb0 >= 0)
    auto issue_half = [&](int i, int page, bool hi, int cb0 = -1, int cb1 = -1) {
        const int row = page * PAGE + (t_begin + i * TILE) % PAGE;
        const unsigned full = (hi ? bar_full_hi : bar_full) + 8 * (i & 1);
        const unsigned dst = smem_addr(sK + (i & 1) * Smem::k_bytes);
        if constexpr (BOX) {  // each box on its own barrier
            for (int cb = cb0 >= 0 ? cb0 : hi ? LO : 0; cb < (cb0 >= 0 ? cb1 : hi ? NB : LO); ++cb) {
                mbar_arrive_expect_tx(bar_box(i & 1, cb), TILE * 128);
                tma_load_2d(dst + cb * (TILE * 128), &p.kv_map, cb * 64, row, bar_box(i & 1, cb));
            }
            return;
        }
        mbar_arrive_expect_tx(full, (hi ? NB - LO : LO) * (TILE * 128));  // the whole half lands here
        for (int cb = hi ? LO : 0; cb < (hi ? NB : LO); ++cb) {
            if constexpr (MC) {  // every other box, multicast to both CTAs of the pair
                if ((cb & 1) == yr) tma_load_2d_multicast(dst + cb * (TILE * 128), &p.kv_map, cb * 64, row, full, 3);
            } else {
                tma_load_2d(dst + cb * (TILE * 128), &p.kv_map, cb * 64, row, full);
            }
        }
    };
    // MC, thread 128: both CTAs of the pair released the lo (hi false) or hi half of tile j's stage
    auto pair_release = [&](int j, bool hi) {
        const unsigned bar = bar_pair + 16 * hi + 8 * (j & 1);
        mbar_arrive_cluster(bar, 0);
        mbar_arrive_cluster(bar, 1);
        mbar_wait(bar, (j >> 1) & 1);
    };
    // (UNIT) the mbarriers of the previous unit, before they are initialised again
    auto inval_barriers = [&] {
        for (unsigned bar = bar_full; bar < bar_issued + 8; bar += 8) mbar_inval(bar);
    };
    auto init_barriers = [&] {
        for (int st = 0; st < 2; ++st) {
            mbar_init(bar_full + 8 * st, 1);
            mbar_init(bar_full_hi + 8 * st, 1);
            mbar_init(bar_empty + 8 * st, 8);  // every warp of both warpgroups, once per tile
            mbar_init(bar_ready + 8 * st, 4);  // every warp of warpgroup 0
        }
        mbar_init(bar_issued, 4);  // every warp of warpgroup 0, once per tile from tile 1 on
        if (MC)
            for (int k = 0; k < 4; ++k) mbar_init(bar_pair + 8 * k, 2);  // one arrival per CTA of the pair
        if (BOX)
            for (int k = 0; k < 2 * NB; ++k) mbar_init(bar_box0 + 8 * k, 1);
        if (BOX >= 2)
            for (int st = 0; st < 2; ++st) mbar_init(bar_empty_a + 8 * st, 8);
        mbar_init_fence();
    };
    const bool pre = UNIT && unit->pre;  // (UNIT) the barriers and tile 0 are set up already
    if (tid == 0) {
        tma_prefetch_map(&p.kv_map);
        if (UNIT && again && !pre) inval_barriers();
        if (!pre) init_barriers();
    }
    if constexpr (MC) cluster_sync();  // both CTAs' barriers exist before any multicast lands
    // (UNIT) the page of the next unit's tile 0 (set up before the epilogue)
    const int next_page = UNIT && tid == 0 && unit->next_b >= 0
                              ? p.block_table[(size_t)unit->next_b * p.block_table_stride + unit->next_t_begin / PAGE]
                              : 0;
    if (tid == 0)
        for (int i = pre ? 1 : 0; i < 2 && i < n_tiles; ++i) {
            const int page = table[(t_begin + i * TILE) / PAGE];
            issue_half(i, page, false);
            issue_half(i, page, true);
        }
    // thread 128 refills the stages from tile 2 on; page_next: the page of the next tile it issues
    int page_next = tid == 128 && n_tiles > 2 ? table[(t_begin + 2 * TILE) / PAGE] : 0;
    // Q rows of this head block (rows past HEADS are zero), by all threads
    mla_load_q_rows<HEADS, D, HB>(sQ, p.q, part_row, head0, tid);
    cp_async_wait_all();
    fence_proxy_async_smem();
    __syncthreads();  // Q is in shared memory and the mbarriers exist

    const float sl2 = p.scale * 1.4426950408889634f;
    float m_run[2] = {neg_inf(), neg_inf()};  // warpgroup 0: running max of rows row0, row0 + 8 (log2 domain)
    float l_run[2] = {0.f, 0.f};              // warpgroup 0: this thread's partial row sums
    float o[128];
#pragma unroll
    for (int e = 0; e < 128; ++e) o[e] = 0.f;
    const unsigned sKa0 = smem_addr(sK);
    const unsigned long long dq = wgmma_desc_sw128(smem_addr(sQ), 16, 1024);  // Q (A of S), K-major
    prof.mark(0);

    if (wg == 0) {
        float alpha[2] = {1.f, 1.f};  // alpha(j - 1) of this thread's rows, for P V(j - 1)
        unsigned pv[16];              // SYNC: P(j - 1) of this thread's rows (bf16 pairs), PRS: for P V(j - 1)
        // warpgroup 0's P V(j - 1) (value blocks 0..3) of the stage at sKa: P from the rope block, or (PRS) from pv
        unsigned qa[QR > 0 ? QR : 1][4];  // QR: Q's A fragments of S's first QR k-steps (this warp's 16 rows)
        if constexpr (QR > 0) {
            // ldmatrix: lane l addresses row l % 8 (+ 8 for odd l / 8) of 16-byte chunk 2 (ks % 4) + l / 16
            const int mi = lane >> 3, r = (warp & 3) * 16 + (lane & 7) + 8 * (mi & 1);
#pragma unroll
            for (int ks = 0; ks < QR; ++ks) {
                const int chunk = (ks & 3) * 2 + (mi >> 1);
                ldmatrix_x4(smem_addr(sQ) + (ks >> 2) * (HB * 128) + r * 128 + ((chunk ^ (r & 7)) << 4), qa[ks][0],
                            qa[ks][1], qa[ks][2], qa[ks][3]);
            }
        }
        auto issue_pv = [&](unsigned sKa) {
            if constexpr (BOX >= 2) {  // two groups: value blocks 0, 1 (o[0 .. 63]), then 2, 3
                if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) mla_rescale_o(o, alpha);
                wgmma_pin(o);
                mla_pv_part<128, NB>(*reinterpret_cast<float(*)[64]>(o), sKa, 0);
                mla_pv_part<128, NB>(*reinterpret_cast<float(*)[64]>(o + 64), sKa, 2);
            } else if constexpr (PRS) {
                if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {
                    mla_rescale_o(o, alpha);
                }
                const unsigned long long db = wgmma_desc_sw128(sKa, 64 * 128, 1024);  // V, N-major
                wgmma_pin(o);
                wgmma_fence();
#pragma unroll
                for (int kk = 0; kk < 4; ++kk) {
                    const unsigned a[4] = {pv[4 * kk], pv[4 * kk + 1], pv[4 * kk + 2], pv[4 * kk + 3]};
                    wgmma_m64n256k16_rs_tb(o, a, wgmma_desc_add(db, kk * 16 * 128), 1);
                }
                wgmma_commit();
            } else {
                mla_pv_rope_p<NB>(o, alpha, sKa, 0);
            }
        };
        // k-steps [k0, k1) of S(j) for the stage of tile j (commits one group); `first` zeroes s first, and the
        // tail rows of a last partial tile (both halves landed: the caller waited for them)
        auto issue_s = [&](int j, float (&s)[32], int k0, int k1, bool first) {
            const unsigned sKa = sKa0 + (j & 1) * Smem::k_bytes;
            const int valid = t_end - (t_begin + j * TILE);
            if (first && valid < TILE) {  // stale tail rows: zero their latent columns (V) before anyone's P V(j)
                unsigned char* k = sK + (j & 1) * Smem::k_bytes;
                for (int idx = tid; idx < (TILE - valid) * (LATENT / 8); idx += 128) {
                    const int r = valid + idx / (LATENT / 8), c = idx % (LATENT / 8);
                    *reinterpret_cast<uint4*>(k + sw128<TILE>(r, c)) = make_uint4(0, 0, 0, 0);
                }
                fence_proxy_async_smem();  // ordered before this warp's ready arrival
                __syncwarp();
            }
            if (first) {
#pragma unroll
                for (int e = 0; e < 32; ++e) s[e] = 0.f;
                wgmma_pin(s);
            }
            if constexpr (BOX) {  // box by box (k0, k1: multiples of 4)
                const unsigned long long db = wgmma_desc_sw128(sKa, 16, 1024);
#pragma unroll
                for (int ks = k0; ks < k1; ++ks) {
                    if (ks % 4 == 0) {  // (the fence after the wait: else ptxas injects one)
                        mbar_wait(bar_box(j & 1, ks / 4), (j >> 1) & 1);
                        __syncwarp();
                        wgmma_fence();
                    }
                    const unsigned long long b = wgmma_desc_add(db, (ks >> 2) * (TILE * 128) + (ks & 3) * 32);
                    wgmma_m64n64k16_ss(s, wgmma_desc_add(dq, (ks >> 2) * (HB * 128) + (ks & 3) * 32), b,
                                       !first || ks > k0);
                }
                wgmma_commit();
                return;
            }
            wgmma_fence();
            const unsigned long long db = wgmma_desc_sw128(sKa, 16, 1024);
#pragma unroll
            for (int ks = k0; ks < k1; ++ks) {  // column block ks / 4, 32 bytes per k-step within it
                const unsigned long long b = wgmma_desc_add(db, (ks >> 2) * (TILE * 128) + (ks & 3) * 32);
                if (ks < QR)
                    wgmma_m64n64k16_rs(s, qa[ks < QR ? ks : 0], b, !first || ks > k0);
                else
                    wgmma_m64n64k16_ss(s, wgmma_desc_add(dq, (ks >> 2) * (HB * 128) + (ks & 3) * 32), b,
                                       !first || ks > k0);
            }
            wgmma_commit();
        };
        auto softmax = [&](int j, float (&s)[32]) {
            unsigned char* sP = sK + (j & 1) * Smem::k_bytes + (NB - 1) * (TILE * 128);
            // (before P goes to the rope block: every warp's S(j) is done, no wgmma still reads it)
            if constexpr (SYNC < 0) {
                warpgroup_sync(1);
                mla_softmax_tile<FAST>(s, t_end - (t_begin + j * TILE), sl2, m_run, l_run, alpha, sP, row0, lane);
            } else {
                mla_softmax_tile_sync<SYNC>(s, t_end - (t_begin + j * TILE), sl2, m_run, l_run, alpha, sP, row0, lane,
                                            pv, [&] {
                                                if constexpr (PVE) issue_pv(sKa0 + (j & 1) * Smem::k_bytes);  // P V(j)
                                                warpgroup_sync(1);
                                            });
            }
            if ((lane & 3) == 0) {
                s_alpha[(j & 1) * HB + row0] = alpha[0];
                s_alpha[(j & 1) * HB + row0 + 8] = alpha[1];
            }
            fence_proxy_async_smem();
            mbar_arrive_warp(bar_ready + 8 * (j & 1), lane);  // after each lane's proxy fence
        };
        // waits for both halves of tile j when it is a last partial tile (its tail is zeroed before S)
        auto wait_tail = [&](int j) {
            if (BOX && t_end - (t_begin + j * TILE) < TILE) {
                for (int cb = 0; cb < NB; ++cb) mbar_wait(bar_box(j & 1, cb), (j >> 1) & 1);
            } else if (t_end - (t_begin + j * TILE) < TILE) {
                mbar_wait(bar_full + 8 * (j & 1), (j >> 1) & 1);
                mbar_wait(bar_full_hi + 8 * (j & 1), (j >> 1) & 1);
            }
        };
        {  // tile 0: S only
            float s[32];
            if constexpr (BOX) {
                wait_tail(0);  // (box by box in issue_s unless its tail must be zeroed first)
            } else {
                mbar_wait(bar_full, 0);
                mbar_wait(bar_full_hi, 0);
            }
            __syncwarp();
            prof.mark(1);
            issue_s(0, s, 0, KS, true);
            wgmma_wait<0>();
            wgmma_pin(s);
            prof.mark(2);
            softmax(0, s);
            prof.mark(3);
        }
        for (int j = 1; j < n_tiles; ++j) {
            float s[32];
            if constexpr (!PVE) issue_pv(sKa0 + ((j - 1) & 1) * Smem::k_bytes);  // P V(j - 1), blocks 0..3
            const unsigned parity = (j >> 1) & 1;
            wait_tail(j);
            if (!BOX) mbar_wait(bar_full + 8 * (j & 1), parity);  // tile j's lo half (BOX: box by box in issue_s)
            __syncwarp();
            prof.mark(1);
            issue_s(j, s, 0, KS_EARLY, true);  // keeps the tensor cores busy while this warpgroup waits for the P V
            if constexpr (BOX >= 2) {  // the P V's first group (value blocks 0, 1) is done: release those boxes
                wgmma_wait<2>();
                wgmma_pin(*reinterpret_cast<float(*)[64]>(o));
                mbar_arrive_warp(bar_empty_a + 8 * ((j - 1) & 1), lane);
            }
            wgmma_wait<1>();  // P V(j - 1) is done (groups complete in order); S(j)'s first k-steps may still run
            wgmma_pin(o);
            mbar_arrive_warp(bar_empty + 8 * ((j - 1) & 1), lane);  // lo of tile j - 1 (thread 128 refills it)
            prof.mark(4);
            issue_s(j, s, KS_EARLY, 4 * LO, false);
            if (!BOX) mbar_wait(bar_full_hi + 8 * (j & 1), parity);
            __syncwarp();
            issue_s(j, s, 4 * LO, KS, false);
            mbar_arrive_warp(bar_issued, lane);  // warpgroup 1 may now queue its late part of P V(j - 1)
            wgmma_wait<0>();
            wgmma_pin(s);
            wgmma_pin(o);
            prof.mark(2);
            softmax(j, s);
            prof.mark(3);
        }
        // the last tile's P V
        if constexpr (!PVE) issue_pv(sKa0 + ((n_tiles - 1) & 1) * Smem::k_bytes);
        wgmma_wait<0>();
        wgmma_pin(o);
        prof.mark(5);
    } else {
        constexpr int NEA = NE > 0 ? NE / 2 : 1;  // (LATE 4: no early part)
        float(&o_early)[NEA] = *reinterpret_cast<float(*)[NEA]>(o);
        float(&o_late)[128 - NE / 2] = *reinterpret_cast<float(*)[128 - NE / 2]>(o + NE / 2);
        for (int j = 0; j < n_tiles; ++j) {
            const unsigned st = j & 1, parity = (j >> 1) & 1;
            const unsigned sKa = sKa0 + st * Smem::k_bytes;
            mbar_wait(bar_ready + 8 * st, parity);
            if constexpr (BOX) {  // this warpgroup's value boxes (long complete; they order the bytes for us)
                for (int cb = 4; cb < 8; ++cb) mbar_wait(bar_box(st, cb), parity);
            } else {
                mbar_wait(bar_full + 8 * st, parity);  // long complete; orders the tile's bytes for us
                mbar_wait(bar_full_hi + 8 * st, parity);
            }
            __syncwarp();
            fence_proxy_async_smem();
            prof.mark(1);
            const float alpha[2] = {s_alpha[st * HB + row0], s_alpha[st * HB + row0 + 8]};
            const bool moved = __any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f);
            auto rescale = [&] {
                if (moved) {
                    mla_rescale_o(o, alpha);
                }
                wgmma_pin(o);  // the rescaled values are written before the fence
            };
            if constexpr (NE > 0) {
                rescale();
                mla_pv_part<NE, NB>(o_early, sKa, 4);
                wgmma_wait<0>();  // the early part is done (it runs beside warpgroup 0's P V(j))
                wgmma_pin(o);
            }
            mbar_arrive_warp(bar_empty + 8 * st, lane);
            if constexpr (BOX >= 2) mbar_arrive_warp(bar_empty_a + 8 * st, lane);
            if (tid == 128 && j + 2 < n_tiles) {  // lo of tile j + 2 once warpgroup 0's P V(j) is done too
                if constexpr (BOX >= 2) {  // boxes 0, 1 once its first group is done, then 2 .. LO - 1
                    mbar_wait(bar_empty_a + 8 * st, parity);
                    issue_half(j + 2, page_next, false, 0, 2);
                }
                mbar_wait(bar_empty + 8 * st, parity);
                if constexpr (MC) pair_release(j, false);  // ... in both CTAs of the pair
                if constexpr (BOX >= 2)
                    issue_half(j + 2, page_next, false, 2, LO);
                else
                    issue_half(j + 2, page_next, false);
            }
            __syncwarp();
            prof.mark(2);
            if (j + 1 < n_tiles) mbar_wait(bar_issued, j & 1);  // S(j + 1) is on the tensor cores' queue
            __syncwarp();
            // the late part into fresh accumulators, added to O once done: chained onto O's registers after the
            // waits above, ptxas (NVRTC 13) serializes every wgmma of the kernel (C7511 / C7518 / C7520); LATE 4
            // (one part: no room for 128 more registers) chains onto O, which ptxas accepts
            constexpr int NACC = NE > 0 ? 128 - NE / 2 : 1;
            float acc[NACC];
            if constexpr (NE > 0) {
#pragma unroll
                for (int e = 0; e < NACC; ++e) acc[e] = 0.f;
                wgmma_pin(acc);
                mla_pv_part<256 - NE, NB, true>(acc, sKa, LO);
            } else {
                rescale();
                mla_pv_part<256, NB>(o, sKa, 4);
            }
            prof.mark(3);
            wgmma_wait<0>();
            if constexpr (NE > 0) wgmma_pin(acc);
            wgmma_pin(o);
            warpgroup_sync(2);  // every warp's late part is done: the hi half is free
            if (tid == 128 && j + 2 < n_tiles) {
                if constexpr (MC) pair_release(j, true);
                issue_half(j + 2, page_next, true);
                if (j + 3 < n_tiles) page_next = table[(t_begin + (j + 3) * TILE) / PAGE];
            }
            __syncwarp();
            if constexpr (NE > 0) {
#pragma unroll
                for (int e = 0; e < NACC; ++e) o_late[e] += acc[e];
            }
            prof.mark(4);
        }
    }

    if constexpr (MC) cluster_arrive_relaxed();  // (waited for at the exit: no CTA leaves while its pair may still
                                                 // arrive on its barriers)
    // ---- row sums (warpgroup 0), the log2-sum-exp, then the normalised rows through shared memory (every copy
    // was waited for and every wgmma is done once both warpgroups passed the barrier)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 1);
        l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 2);
    }
    const int t = lane & 3;
    if (wg == 0 && t == 0) {
        red_sum[row0] = l_run[0];
        red_sum[row0 + 8] = l_run[1];
    }
    __syncthreads();
    if constexpr (UNIT) {
        if (tid == 0 && unit->next_b >= 0) {  // every wait and wgmma is done: the next unit's barriers and tile 0
            inval_barriers();
            init_barriers();
            const int row = next_page * PAGE + unit->next_t_begin % PAGE;
            for (int hi = 0; hi < 2; ++hi) {
                const unsigned full = hi ? bar_full_hi : bar_full;
                mbar_arrive_expect_tx(full, (hi ? NB - LO : LO) * (TILE * 128));
                for (int cb = hi ? LO : 0; cb < (hi ? NB : LO); ++cb)
                    tma_load_2d(sKa0 + cb * (TILE * 128), &p.kv_map, cb * 64, row, full);
            }
        }
    }
    if constexpr (UNIT) {
        float inv[2];
        const int rows = min(HB, HEADS - head0);
        float lse[2];
        mla_row_inv_lse(red_sum, m_run, row0, inv, lse);  // m_run: warpgroup 0's
        epilogue(smem, o, inv, lse, row0, wg, t, tid, rows);
    } else {
        mla_split_rows_store<HEADS, LATENT, PT>(p, smem, o, red_sum, m_run, row0, wg, t, tid, part_row, head0, split,
                                                direct);  // m_run: warpgroup 0's
    }
    if constexpr (MC) cluster_wait();
    prof.mark(6);
    prof.store(p.profile, wg * 8, n_tiles, (tid & 127) == 0);
    prof.store(p.profile, 16 + wg * 8, n_tiles, (tid & 127) == 96);
}

}  // namespace mf
