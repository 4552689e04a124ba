// MLA decode, Hopper "seesaw" schedule (config seesaw 1; sm_90a, K tiles by TMA, 64-token tiles, 2 stages).
// Same contract as mla_decode_wgmma<> with tma 1 (mla_decode_wgmma.cuh): grid (splits, head blocks of 64, rows),
// MlaDecodeParams with the cache tensor map, normalised partials + log2-sum-exp, or the final rows with one split.
//
// One CTA = one split x 64 heads x one query row; 2 warpgroups, one CTA per SM. The tiles alternate between the
// warpgroups: warpgroup i % 2 owns tile i. The owner computes S(i) = Q K(i)^T (36 wgmma m64n64k16) and the online
// softmax of tile i, starting from the running row max m(i - 1) that the other warpgroup left in shared memory,
// writes P(i) (bf16) and alpha(i), m(i); then BOTH warpgroups do O_half = alpha(i) O_half + P(i) V(i) over their
// 256 value columns (4 wgmma m64n256k16). While one warpgroup is in softmax(i) (CUDA cores), the other's S(i + 1)
// runs on the tensor cores. Warp w of either warpgroup holds heads 16 (w % 4) .. + 15 (rows row0, row0 + 8) in
// S, P and O alike, so the row state handed over is per thread pair (tid, tid ^ 128).
// Shared memory (1024-byte aligned, 128-byte swizzle atoms): Q [9][64][128]; 2 K stages [9][64][128]; alpha [2][64],
// row max [2][64] (by tile parity), row sums [2][64]; mbarriers full [2][9], empty [2], ready [2]: 222,976 bytes
// + 1 KB alignment slack = 224,000 (the tma 1 kernel: 231,808).
// P(i) has no buffer of its own: it goes into column block 8 of tile i's own stage (the 64 rope columns), dead
// once S(i) is done, since P V reads only the 512 latent columns.
//
// Pass j of warpgroup w (j = w, w + 2, ... < n_tiles; tile 0 runs before the loop as steps 3, 5, 6, 8; a last
// pass j == n_tiles, when the other warpgroup owns the last tile, is steps 1 and 4 only):
//   1. wait for PV(j - 2) (own, issued at the end of the previous pass); arrive on empty[j % 2]
//   2. (its elected thread) wait until both warpgroups released tile j - 2, then TMA tile j into that stage
//   3. zero the tail rows of a last partial tile; issue S(j), the 4 k-steps of each 64-column box once its
//      full barrier says it landed (one barrier per box: S starts with the first box, not the last)
//   4. wait ready[(j - 1) % 2]; read alpha(j - 1), m(j - 1); rescale O and l; issue PV(j - 1)
//   5. wait for S(j) and PV(j - 1); arrive on empty[(j - 1) % 2]; warpgroup barrier: no warp still reads the
//      rope block
//   6. softmax of S(j) -> P(j) into the rope block, alpha(j), m(j) to shared memory; arrive on ready[j % 2]
//   8. wait ready[j % 2] (all of P(j)); rescale O; issue PV(j)
// With 2 stages the stage of tile j - 2 takes tile j: its copy starts only once both warpgroups are done with
// PV(j - 2), and S(j) follows the copy. The copy latency is on the critical path (the tma 1 kernel issues each
// copy a whole tile ahead): S consumes the 9 boxes as they land, one full barrier per box.
// H200 (tests/bench/cuda_mla_decode_results.md): correct, but 1.2-1.3x slower than the tma 1 kernel at batch 64
// (a refill waits ~2.4k cycles per tile for the other warpgroup's release): it needs a third K stage.
// Every wait depends only on earlier steps of the other warpgroup, and a barrier never gets two phases ahead of
// a waiter: ready(i + 2) needs m(i + 1), which the other warpgroup writes after consuming ready(i); the other
// warpgroup releases tile i + 2 after its PV(i + 2), which needs P(i + 2), written after the owner released i.
// Registers: O (128 fp32) and S (32) in every thread, as warpgroup 0 of the wgmma kernel (ptxas, NVRTC 13, sm_90a:
// 224 bf16 partials, 247 fp32 + profile; no spills, no wgmma serialization). ptxas serializes every wgmma when
// an accumulator may be in flight on some path it cannot rule out, hence the shape of the loop: tile 0 runs
// before it, every pass owns a tile, the waits are unconditional, and the spin waits converge (__syncwarp).
#pragma once
#include "bf16.cuh"
#include "grid_dependency.cuh"
#include "mla_cycle_profile.cuh"
#include "mla_decode.cuh"        // mla_zero_rows
#include "mla_decode_wgmma.cuh"  // sw128
#include "mla_params.cuh"
#include "mla_wgmma_epilogue.cuh"
#include "mma_sm80.cuh"
#include "tma_sm90.cuh"
#include "wgmma_sm90.cuh"

namespace mf {

// The Q rows head0 .. head0 + HB - 1 of row part_row / HEADS into sQ (128-byte swizzle; rows past HEADS are zero), by
// all 256 threads, as one committed cp.async group (not waited for). Shared by the seesaw and the P V first / late
// kernels.
template <int HEADS, int D, int HB>
__device__ __forceinline__ void mla_load_q_rows(unsigned char* sQ, const unsigned short* q, size_t part_row, int head0,
                                                int tid) {
    for (int idx = tid; idx < HB * (D / 8); idx += 256) {
        const int r = idx / (D / 8), c = idx % (D / 8);
        const bool valid = head0 + r < HEADS;
        const unsigned short* src = q;
        if (valid) src += (part_row + head0 + r) * D + c * 8;
        cp_async_16(sQ + sw128<HB>(r, c), src, valid);
    }
    cp_async_commit();
}

template <int LATENT, int ROPE>
struct MlaSeesawSmem {
    static constexpr int D = LATENT + ROPE;
    static constexpr int q_bytes = (D / 64) * 64 * 128;
    static constexpr int k_bytes = (D / 64) * 64 * 128;  // one stage: 64 tokens
    static constexpr int row_bytes = 6 * 64 * 4;         // alpha [2], row max [2], row sum [2]
    static constexpr int bar_bytes = 256;  // full [2][D / 64] (one per column block), empty [2], ready [2], 8 B each
    static constexpr int align_slack = 1024;
    static constexpr int total = align_slack + q_bytes + 2 * k_bytes + row_bytes + bar_bytes;
};

// One arrival (release, CTA scope) on the mbarrier at shared::cta offset `bar`.
__device__ __forceinline__ void mbar_arrive_local(unsigned bar) {
    asm volatile("mbarrier.arrive.release.cta.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}

// One arrival per warp, once every lane got here: __syncwarp orders the lanes' earlier shared-memory writes (and
// their completed wgmma reads) before lane 0's release, so a waiter's acquire sees the whole warp's (one
// serialized mbarrier update per warp instead of 32).
__device__ __forceinline__ void mbar_arrive_warp(unsigned bar, int lane) {
    __syncwarp();
    if (lane == 0) mbar_arrive_local(bar);
}

// Barrier of the 128 threads of one warpgroup (hardware barrier `id`, 1 or 2; 0 is __syncthreads).
__device__ __forceinline__ void warpgroup_sync(int id) {
    asm volatile("bar.sync %0, 128;\n" ::"r"(id) : "memory");
}

// S[64][64] = Q K^T (Q's descriptor dq) for the stage at sKa (36 k-steps; commits one wgmma group). Column block kb's 4 k-steps
// go out once its box landed (full barrier full + 8 kb, phase parity `parity`): S starts with the first box
// instead of the last one.
template <int D>
__device__ __forceinline__ void seesaw_qk(float (&s)[32], unsigned long long dq, unsigned sKa, unsigned full,
                                          unsigned parity) {
    const unsigned long long dk = wgmma_desc_sw128(sKa, 16, 1024);
#pragma unroll
    for (int e = 0; e < 32; ++e) s[e] = 0.f;
    wgmma_pin(s);  // the zeros are written before the first fence (register arithmetic may move across asm)
#pragma unroll
    for (int kb = 0; kb < D / 64; ++kb) {
        mbar_wait(full + 8 * kb, parity);
        __syncwarp();  // the spin loop exits lane by lane: converge before the .aligned wgmma
        wgmma_fence();  // (else ptxas inserts one on the spin loop's path and serializes every wgmma)
#pragma unroll
        for (int k4 = 0; k4 < 4; ++k4) {  // Q and K blocks are both 64 rows: the same offsets
            const unsigned off = kb * (64 * 128) + k4 * 32;
            wgmma_m64n64k16_ss(s, wgmma_desc_add(dq, off), wgmma_desc_add(dk, off), kb + k4 > 0);
        }
    }
    wgmma_commit();
}

// O = alpha O (skipped when no row's max moved in this warp), then O += P V over warpgroup wg's 256 value
// columns of the stage at sKa, P in its column block NB - 1, the rope columns (commits one wgmma group). The P V
// of the seesaw and the P V first kernels.
template <int NB>
__device__ __forceinline__ void mla_pv_rope_p(float (&o)[128], const float (&alpha)[2], unsigned sKa,
                                              int wg) {
    if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {
#pragma unroll
        for (int j = 0; j < 32; ++j) {
            o[4 * j] *= alpha[0];
            o[4 * j + 1] *= alpha[0];
            o[4 * j + 2] *= alpha[1];
            o[4 * j + 3] *= alpha[1];
        }
    }
    const unsigned long long da = wgmma_desc_sw128(sKa + (NB - 1) * (64 * 128), 16, 1024);  // P
    // V rows (tokens) 16 kk .., columns from block 4 wg: atoms 1024 bytes apart in k, 64 * 128 in n
    const unsigned long long db = wgmma_desc_sw128(sKa + (wg * 4) * (64 * 128), 64 * 128, 1024);
    wgmma_pin(o);  // the rescaled values are written before the fence
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk)
        wgmma_m64n256k16_ss_tb(o, wgmma_desc_add(da, kk * 32), wgmma_desc_add(db, kk * 16 * 128), 1);
    wgmma_commit();
}

// PT, PDL, DPDL, PROF: as mla_decode_wgmma<>. PROF slots per warpgroup: prologue, waits (tile, ready), phase A
// (issuing S and waiting for it), softmax and P, release (PV waits, refill), phase B (rescale, issuing PV),
// epilogue, tiles of the split.
template <int HEADS, int LATENT, int ROPE, int PAGE, class PT, bool PDL, bool DPDL, bool PROF>
__device__ __forceinline__ void mla_decode_seesaw(const MlaDecodeParams& p) {
    if constexpr (DPDL) griddep_wait();
    if constexpr (PDL) griddep_launch_dependents();
    MlaCycleProfile<PROF> prof;
    constexpr int TILE = 64, D = LATENT + ROPE, HB = 64, NB = D / 64;
    using Smem = MlaSeesawSmem<LATENT, ROPE>;
    static_assert(LATENT == 512, "each warpgroup's O half is one m64n256 accumulator");
    static_assert(ROPE == 64, "P (64 heads x 64 tokens bf16) takes the place of exactly one 64-column rope block");
    static_assert(PAGE % TILE == 0, "TMA boxes of one page: the page must be a multiple of the tile");
    static_assert(64 * (LATENT * 4 + 32) <= Smem::q_bytes + 2 * Smem::k_bytes,
                  "the output rows are staged over the Q and K buffers");

    extern __shared__ __align__(1024) unsigned char smem_raw[];
    unsigned char* smem = smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u);
    unsigned char* sQ = smem;
    unsigned char* sK = sQ + Smem::q_bytes;
    float* s_alpha = reinterpret_cast<float*>(sK + 2 * Smem::k_bytes);  // [2][HB] by tile parity
    float* s_max = s_alpha + 2 * HB;                                     // [2][HB] by tile parity
    float* red_sum = s_max + 2 * HB;                                     // [2][HB] by warpgroup
    // full [stage][column block] (+ 8 (NB stage + kb)), then empty [2], ready [2] (+ 8 stage)
    const unsigned bar_full = smem_addr(red_sum + 2 * HB), bar_empty = bar_full + 16 * NB, bar_ready = bar_empty + 16;

    const int split = blockIdx.x, head0 = blockIdx.y * HB, b = blockIdx.z;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wg = warp >> 2, g = lane >> 2, t = lane & 3;
    const int row0 = (warp & 3) * 16 + g;  // this thread's rows: row0 and row0 + 8 (S, P and O)

    const int len = p.seq_lens[b];
    const MlaSplitTiles cut = mla_split_tiles<TILE>(len, p.num_splits, split);
    const int t_begin = cut.t_begin, t_end = cut.t_end, n_tiles = cut.n_tiles;
    const size_t part_row = (size_t)b * HEADS;
    const bool direct = p.num_splits == 1 && p.out != nullptr;
    if (n_tiles == 0) {
        mla_empty_split<HEADS, LATENT, HB>(p, part_row, head0, split, direct, tid);
        return;
    }

    const int* table = p.block_table + (size_t)b * p.block_table_stride;
    if (tid == 0) {
        tma_prefetch_map(&p.kv_map);
        for (int st = 0; st < 2; ++st) {
            for (int kb = 0; kb < NB; ++kb) mbar_init(bar_full + 8 * (NB * st + kb), 1);
            mbar_init(bar_empty + 8 * st, 8);  // every warp of both warpgroups, once per tile
            mbar_init(bar_ready + 8 * st, 4);  // every warp of the owning warpgroup
        }
        mbar_init_fence();
    }
    // Q rows of this head block (rows past HEADS are zero), by all threads
    mla_load_q_rows<HEADS, D, HB>(sQ, p.q, part_row, head0, tid);
    __syncthreads();  // the mbarriers exist

    // The elected thread of each warpgroup loads that warpgroup's tiles; page_next: the page of its next tile.
    const bool issuer = (tid & 127) == 0;
    int page_next = issuer && wg < n_tiles ? table[(t_begin + wg * TILE) / PAGE] : 0;
    auto issue_tile = [&](int i) {
        const int tok0 = t_begin + i * TILE;
        const int row = page_next * PAGE + tok0 % PAGE;
        if (i + 2 < n_tiles) page_next = table[(tok0 + 2 * TILE) / PAGE];
        const unsigned full = bar_full + 8 * NB * (i & 1), dst = smem_addr(sK + (i & 1) * Smem::k_bytes);
        for (int cb = 0; cb < NB; ++cb) {  // one barrier per box: S consumes the boxes as they land
            mbar_arrive_expect_tx(full + 8 * cb, TILE * 128);
            tma_load_2d(dst + cb * (TILE * 128), &p.kv_map, cb * 64, row, full + 8 * cb);
        }
    };
    if (issuer && wg < n_tiles) issue_tile(wg);
    cp_async_wait_all();
    fence_proxy_async_smem();
    __syncthreads();  // Q is in shared memory for every warpgroup's wgmma

    const float sl2 = p.scale * 1.4426950408889634f;
    float m_run[2] = {neg_inf(), neg_inf()};  // running max of rows row0, row0 + 8 after the last tile seen
    float l_run[2] = {0.f, 0.f};              // this thread's share of the row sums (own tiles' columns)
    float o[128];
#pragma unroll
    for (int e = 0; e < 128; ++e) o[e] = 0.f;
    const unsigned sKa0 = smem_addr(sK);
    const unsigned long long dq = wgmma_desc_sw128(smem_addr(sQ), 16, 1024);  // Q (A of S), K-major
    const int wg_bar = 1 + wg;
    // every box of tile i landed (in the order of a tile's boxes)
    auto wait_tile = [&](int i) {
        for (int kb = 0; kb < NB; ++kb) mbar_wait(bar_full + 8 * (NB * (i & 1) + kb), (i >> 1) & 1);
        __syncwarp();  // the spin loops exit lane by lane: converge before the .aligned wgmma instructions
    };
    // 3. S(j) = Q K(j)^T, the tail rows of a last partial tile zeroed first (this warpgroup owns tile j)
    auto compute_s = [&](int j, float (&s)[32]) {
        const int valid = t_end - (t_begin + j * TILE);
        if (valid < TILE) {  // the tail rows hold stale data: zero their latent columns (V)
            wait_tile(j);
            unsigned char* k = sK + (j & 1) * Smem::k_bytes;
            for (int idx = tid & 127; idx < (TILE - valid) * (LATENT / 8); idx += 128) {
                const int r = valid + idx / (LATENT / 8), c = idx % (LATENT / 8);
                *reinterpret_cast<uint4*>(k + sw128<TILE>(r, c)) = make_uint4(0, 0, 0, 0);
            }
            fence_proxy_async_smem();
            warpgroup_sync(wg_bar);
        }
        prof.mark(1);
        seesaw_qk<D>(s, dq, sKa0 + (j & 1) * Smem::k_bytes, bar_full + 8 * NB * (j & 1), (j >> 1) & 1);
        prof.mark(2);
    };
    // 6. the online softmax of S(j) (complete in every warp of this warpgroup; m_run = m(j - 1)): P(j) into the
    // rope block of its stage, alpha(j) and m(j) for the other warpgroup; arrives on ready[j % 2]
    auto softmax = [&](int j, float (&s)[32], float (&alpha)[2]) {
        const int tile_start = t_begin + j * TILE;
        float mx[2] = {neg_inf(), neg_inf()};
#pragma unroll
        for (int e = 0; e < 32; ++e) {
            const int tok = tile_start + (e >> 2) * 8 + 2 * t + (e & 1);
            s[e] = tok < t_end ? s[e] * sl2 : neg_inf();
            mx[(e >> 1) & 1] = fmaxf(mx[(e >> 1) & 1], s[e]);
        }
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
            mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
            const float m_new = fmaxf(m_run[h], mx[h]);  // finite: every tile has a valid token
            alpha[h] = exp2f(m_run[h] - m_new);          // m_run = -inf on the first tile: alpha = 0
            m_run[h] = m_new;
            l_run[h] *= alpha[h];
        }
        unsigned char* sP = sK + (j & 1) * Smem::k_bytes + (NB - 1) * (TILE * 128);
#pragma unroll
        for (int c = 0; c < 8; ++c) {
            const float p0 = exp2f(s[4 * c] - m_run[0]), p1 = exp2f(s[4 * c + 1] - m_run[0]);
            const float p2 = exp2f(s[4 * c + 2] - m_run[1]), p3 = exp2f(s[4 * c + 3] - m_run[1]);
            l_run[0] += p0 + p1;
            l_run[1] += p2 + p3;
            // tokens 8c + 2t, +1: chunk c, bytes 4t..4t+3 of rows row0 and row0 + 8 (128-byte swizzle)
            const unsigned off = row0 * 128 + ((c ^ (row0 & 7)) << 4) + 4 * t;
            *reinterpret_cast<unsigned*>(sP + off) = pack_bf16x2(p0, p1);
            *reinterpret_cast<unsigned*>(sP + off + 8 * 128) = pack_bf16x2(p2, p3);
        }
        if (t == 0) {
            s_alpha[(j & 1) * HB + row0] = alpha[0];
            s_alpha[(j & 1) * HB + row0 + 8] = alpha[1];
            s_max[(j & 1) * HB + row0] = m_run[0];
            s_max[(j & 1) * HB + row0 + 8] = m_run[1];
        }
        fence_proxy_async_smem();
        mbar_arrive_warp(bar_ready + 8 * (j & 1), lane);  // after each lane's proxy fence
        prof.mark(3);
    };
    // 8. PV(j) once the whole warpgroup wrote P(j)
    auto own_pv = [&](int j, const float (&alpha)[2]) {
        mbar_wait(bar_ready + 8 * (j & 1), (j >> 1) & 1);
        __syncwarp();
        fence_proxy_async_smem();
        prof.mark(1);
        mla_pv_rope_p<NB>(o, alpha, sKa0 + (j & 1) * Smem::k_bytes, wg);
        prof.mark(5);
    };
    // 4. PV(i) of a tile i of the other warpgroup (O is not in flight); m_run becomes m(i)
    auto other_pv = [&](int i) {
        const int par = i & 1;
        wait_tile(i);  // long complete; orders the tile's bytes for this thread
        mbar_wait(bar_ready + 8 * par, (i >> 1) & 1);
        __syncwarp();
        fence_proxy_async_smem();
        prof.mark(1);
        const float a[2] = {s_alpha[par * HB + row0], s_alpha[par * HB + row0 + 8]};
        m_run[0] = s_max[par * HB + row0];
        m_run[1] = s_max[par * HB + row0 + 8];
        l_run[0] *= a[0];
        l_run[1] *= a[1];
        mla_pv_rope_p<NB>(o, a, sKa0 + par * Smem::k_bytes, wg);
        prof.mark(5);
    };
    prof.mark(0);
    // Tile 0 (warpgroup 0) has no softmax before it: its pass runs here, so that inside the loop every pass has a
    // PV(j - 1) (ptxas tracks wgmma groups path-insensitively: "S(j) is all but the newest group" must hold on
    // every path, and the waits stay unconditional).
    if (wg == 0) {
        float s[32], alpha[2];
        compute_s(0, s);
        wgmma_wait<0>();
        wgmma_pin(s);
        warpgroup_sync(wg_bar);
        prof.mark(2);
        softmax(0, s, alpha);
        own_pv(0, alpha);
    }
    int j = wg == 0 ? 2 : 1;
    for (; j < n_tiles; j += 2) {  // every pass has a tile of its own (ptxas: no wgmma under "own?" branches)
        // 1. done with tile j - 2 (own: its PV was issued at the end of the previous pass)
        wgmma_wait<0>();
        wgmma_pin(o);
        if (j >= 2) mbar_arrive_warp(bar_empty + 8 * (j & 1), lane);
        // 2. refill its stage with tile j once both warpgroups released tile j - 2
        if (j >= 2 && issuer) {
            mbar_wait(bar_empty + 8 * (j & 1), ((j - 2) >> 1) & 1);
            issue_tile(j);
        }
        prof.mark(4);
        float s[32], alpha[2];
        compute_s(j, s);
        other_pv(j - 1);
        // 5. S(j) and PV(j - 1) are done, in every warp of this warpgroup: release tile j - 1 now, before the
        // softmax (its stage takes tile j + 1, whose copy the other warpgroup's S(j + 1) waits for: on the H200,
        // bee7e8a, that wait chain was the whole gap to the default)
        wgmma_wait<0>();
        wgmma_pin(s);
        wgmma_pin(o);
        mbar_arrive_warp(bar_empty + 8 * ((j - 1) & 1), lane);
        warpgroup_sync(wg_bar);  // no warp still reads the rope block that P(j) overwrites
        prof.mark(2);
        softmax(j, s, alpha);
        own_pv(j, alpha);
    }
    if (j == n_tiles) {  // the other warpgroup owns the last tile: only its PV is left
        wgmma_wait<0>();
        wgmma_pin(o);
        other_pv(j - 1);
    }
    wgmma_wait<0>();
    wgmma_pin(o);

    // ---- row sums (each warpgroup holds the sums over its own tiles), the log2-sum-exp, then the normalised
    // rows through shared memory (Q/K are free once both warpgroups passed the barrier: no copies in flight)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 1);
        l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 2);
    }
    if (t == 0) {
        red_sum[wg * HB + row0] = l_run[0];
        red_sum[wg * HB + row0 + 8] = l_run[1];
    }
    __syncthreads();
    float inv[2];
    const int rows = min(HB, HEADS - head0);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int row = row0 + 8 * h;
        const float l = red_sum[row] + red_sum[HB + row];
        inv[h] = l > 0.f ? 1.f / l : 0.f;
        const float lse = l > 0.f ? m_run[h] + log2f(l) : neg_inf();  // m_run: m(n_tiles - 1) in both warpgroups
        if (!direct && wg == 0 && t == 0 && head0 + row < HEADS)
            p.lse_part[(part_row + head0 + row) * p.num_splits + split] = lse;
    }
    if (direct)
        mla_store_rows<bf16, LATENT>(smem, o, inv, row0, wg, t, tid, p.out + (part_row + head0) * LATENT,
                                     (size_t)LATENT, rows);
    else
        mla_store_rows<PT, LATENT>(smem, o, inv, row0, wg, t, tid,
                                   reinterpret_cast<PT*>(p.o_part) + ((part_row + head0) * p.num_splits + split) * LATENT,
                                   (size_t)p.num_splits * LATENT, rows);
    prof.mark(6);
    prof.store(p.profile, wg * 8, n_tiles, (tid & 127) == 0);
}

}  // namespace mf
