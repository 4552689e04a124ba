// MLA decode, Hopper producer/consumer schedule (config producer_consumer 1; sm_90a, K tiles by TMA, 64-token
// tiles, 3 stages). Same contract as mla_decode_wgmma<> with tma 1 (mla_decode_wgmma.cuh): grid (splits, head
// blocks of 64, rows), MlaDecodeParams with the cache tensor map, normalised partials + log2-sum-exp, or the final
// rows with one split.
//
// One CTA = one split x 64 heads x one query row; 3 warpgroups (384 threads), one CTA per SM.
//   Warpgroup 0, the producer of S, holds Q (64 heads x 576 bf16) as the A operand of S = Q K^T: column blocks
//   0..7 in registers (RS wgmma, 32 k-steps x 4 registers = 128 per thread), block 8 (the rope part) in shared
//   memory (4 SS k-steps). Per tile j it waits for the tile's copy, then for each half h of the tile's 64 tokens:
//   S(j, h) = Q K(j, h)^T (36 wgmma m64n32k16; 16 accumulators), the online softmax (quad shuffles only: warp w
//   holds heads 16 w .. + 15 whole), P(j, h) (bf16, 64 heads x 32 tokens, 64-byte swizzle) into the tile's
//   rope rows 32 h .. 32 h + 31 (column block 8: dead once S(j, h) read them; P V reads only the 512 latent
//   columns), the rescale factor alpha(j, h) per head, then "P(j, h) ready". While S(j, 1) runs, warp 0 refills
//   the stage of tile j - 1 with tile j + 2 once the consumers released it.
//   Warpgroups 1 and 2, the consumers, hold one half of O each (64 heads x 256 value columns, fp32: 128
//   registers). Per half tile: wait for P(j, h) ready; O *= alpha(j, h) (only when a row max moved);
//   O += P(j, h) V(j, h) (2 wgmma m64n256k16, V = the tile's latent rows read MN-major); after both halves,
//   release the stage (empty barrier).
// Registers (setmaxnreg): producer 184, consumers 160 each: 128 x (184 + 2 x 160) = 384 x 168, the launch's
// allocation (the pool setmaxnreg.inc draws from). ptxas (NVRTC 13) needs ~154 for one m64n256 accumulator loop
// and ~28 beyond the A fragments and accumulators of an RS loop, hence the half tiles (16 accumulators instead of
// 32) and Q's rope block in shared memory.
// Shared memory (1024-byte aligned): 3 K stages [9][64][128] (216 KB, 128-byte swizzle); Q block 8 [64][128];
// alpha [3][2][64], row sums [64] fp32; mbarriers full [3] (TMA bytes), ready [3][2] (the 4 producer warps,
// after writing P(j, h)), empty [3] (the 8 consumer warps, after their P V of the tile). 232,288 bytes with the
// 1 KB alignment slack (the limit is 232,448).
// Every mbarrier phase is waited at most one phase behind its arrivals: the producer refills tile j + 2 only after
// empty(j - 1), arrives on ready(j, h) only after full(j) (which needed empty(j - 3)); consumers release tile j
// only after ready(j, 1).
// Epilogue: the producer leaves the row sums and the log2-sum-exp, the consumers normalise their halves and store
// the rows through shared memory (staged over the K stages) as whole-row 16-byte stores.
// ptxas notes (NVRTC 13, sm_90a): the setmaxnreg budgets hold only without an early return and with warp-uniform
// branch conditions (from __shfl_sync); inside the producer, divergent code (C++ spin loops, `if (lane == 0)`)
// made ptxas spill the Q fragments, hence the asm spin loop (mbar_wait_pc) and predicated instructions.
#pragma once
#include "bf16.cuh"
#include "grid_dependency.cuh"
#include "mla_cycle_profile.cuh"
#include "mla_decode.cuh"         // mla_split_tiles, mla_zero_rows
#include "mla_decode_seesaw.cuh"  // sw128, mbar_arrive_warp, warpgroup_sync
#include "mla_params.cuh"
#include "mla_wgmma_epilogue.cuh"
#include "mma_sm80.cuh"
#include "tma_sm90.cuh"
#include "wgmma_sm90.cuh"

namespace mf {

template <int LATENT, int ROPE>
struct MlaPcSmem {
    static constexpr int D = LATENT + ROPE;
    static constexpr int stages = 3;
    static constexpr int k_bytes = (D / 64) * 64 * 128;  // one stage: 64 tokens
    static constexpr int q_bytes = 64 * 128;             // Q's last 64-column block (the rope part)
    static constexpr int row_bytes = 7 * 64 * 4;         // alpha [3][2], row sums
    static constexpr int bar_bytes = 96;                 // full [3], ready [3][2], empty [3], 8 bytes each
    static constexpr int align_slack = 1024;
    static constexpr int total = align_slack + stages * k_bytes + q_bytes + row_bytes + bar_bytes;
    static constexpr int threads = 384;
};

// Hardware barrier `id` (1..15) over `n` threads (a multiple of 32): wait for all, or only count this warp in.
__device__ __forceinline__ void named_barrier_sync(int id, int n) {
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(n) : "memory");
}
__device__ __forceinline__ void named_barrier_arrive(int id, int n) {
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(n) : "memory");
}

// mbar_wait (tma_sm90.cuh) with the spin loop inside one asm statement: ptxas cuts a warpgroup's setmaxnreg budget
// back around a C++ spin loop (NVRTC 13), spilling the producer's Q fragments; a loop in the PTX itself keeps it.
// The timeout counts the low 32 bits of the global nanosecond timer (2 registers fewer than 64-bit time stamps,
// which the consumers' 152-register budget needs): a wait that lasts over 4 s traps, so that a lost copy or
// arrival fails the launch instead of hanging the device.
__device__ __forceinline__ void mbar_wait_pc(unsigned bar, unsigned parity) {
    asm volatile(
        "{\n.reg .pred p;\n.reg .u32 t0, t1;\n"
        "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
        "@p bra PC_DONE_%=;\n"
        "mov.u32 t0, %%globaltimer_lo;\n"
        "PC_WAIT_%=:\n"
        "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
        "@p bra PC_DONE_%=;\n"
        "mov.u32 t1, %%globaltimer_lo;\n"
        "sub.u32 t1, t1, t0;\n"
        "setp.lt.u32 p, t1, 4000000000;\n"
        "@p bra PC_WAIT_%=;\n"
        "trap;\n"
        "PC_DONE_%=:\n}\n" ::"r"(bar),
        "r"(parity)
        : "memory");
}

// Predicated single instructions, for the producer: ptxas spills its Q fragments around any branch that may
// diverge a warp (an `if (lane == 0)`, a per-thread loop bound, a C++ spin loop), even at 256 registers (NVRTC 13),
// so per-thread conditions there become predicates.
__device__ __forceinline__ void st_shared_f32_if(bool pred, unsigned addr, float v) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %0, 0;\n@p st.shared.f32 [%1], %2;\n}\n" ::"r"((int)pred), "r"(addr),
                 "f"(v)
                 : "memory");
}
__device__ __forceinline__ void st_shared_b32(unsigned addr, unsigned v) {
    asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(addr), "r"(v) : "memory");
}
__device__ __forceinline__ void st_shared_zero16_if(bool pred, unsigned addr) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %0, 0;\n@p st.shared.v4.b32 [%1], {%2, %2, %2, %2};\n}\n" ::"r"(
                     (int)pred),
                 "r"(addr), "r"(0)
                 : "memory");
}
__device__ __forceinline__ void st_global_f32_if(bool pred, float* addr, float v) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %0, 0;\n@p st.global.f32 [%1], %2;\n}\n" ::"r"((int)pred), "l"(addr),
                 "f"(v)
                 : "memory");
}
__device__ __forceinline__ void mbar_arrive_if(bool pred, unsigned bar) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %0, 0;\n@p mbarrier.arrive.release.cta.shared::cta.b64 _, [%1];\n}\n" ::"r"(
                     (int)pred),
                 "r"(bar)
                 : "memory");
}
__device__ __forceinline__ void mbar_arrive_expect_tx_if(bool pred, unsigned bar, unsigned bytes) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %0, 0;\n"
        "@p mbarrier.arrive.expect_tx.release.cta.shared::cta.b64 _, [%1], %2;\n}\n" ::"r"((int)pred),
        "r"(bar), "r"(bytes)
        : "memory");
}
__device__ __forceinline__ void tma_load_2d_if(bool pred, unsigned dst, const TmaMap* map, int c0, int c1,
                                               unsigned bar) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %0, 0;\n"
        "@p cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%1], [%2, {%3, %4}], "
        "[%5];\n}\n" ::"r"((int)pred),
        "r"(dst), "l"(reinterpret_cast<unsigned long long>(map)), "r"(c0), "r"(c1), "r"(bar)
        : "memory");
}

// mla_store_rows for the 256 consumer threads (ctid = tid - 128; hardware barrier 3): stage this thread's
// normalised rows (its warpgroup's 256 columns, half cw), then write rows 0 .. rows - 1 as 16-byte stores.
template <class OT, int LATENT>
__device__ __forceinline__ void mla_pc_store_rows(unsigned char* stage, const float (&o)[LATENT / 4],
                                                  const float (&inv)[2], int row0, int cw, int t, int ctid, OT* dst,
                                                  size_t dst_stride, int rows) {
    constexpr int SO = mla_stage_stride<OT, LATENT>();
    constexpr int CPR = LATENT * (int)sizeof(OT) / 16;  // 16-byte chunks per row
    mla_stage_rows<OT, LATENT>(stage, o, inv, row0, cw, t);
    named_barrier_sync(3, 256);
    for (int idx = ctid; idx < rows * CPR; idx += 256) {
        const int r = idx / CPR, c = idx % CPR;
        const uint4 v = *reinterpret_cast<const uint4*>(stage + r * SO + c * 16);
        *reinterpret_cast<uint4*>(reinterpret_cast<unsigned char*>(dst + r * dst_stride) + c * 16) = v;
    }
}

// PT, PDL, DPDL: as mla_decode_wgmma<>. PROF: thread 0 (producer) writes p.profile[0..7] = prologue, tile wait,
// S (issue + wait, both halves), softmax and P (both halves), refill (empty wait + copy issue), 0, epilogue,
// tiles; thread 128 (consumer) writes p.profile[8..15] = prologue, P-ready waits, 0, rescales, release, P V,
// epilogue, tiles.
template <int HEADS, int LATENT, int ROPE, int PAGE, class PT, bool PDL, bool DPDL, bool PROF>
__device__ __forceinline__ void mla_decode_pc(const MlaDecodeParams& p) {
    if constexpr (DPDL) griddep_wait();
    if constexpr (PDL) griddep_launch_dependents();
    MlaCycleProfile<PROF> prof;
    constexpr int TILE = 64, D = LATENT + ROPE, HB = 64, NB = D / 64, ST = 3, KS = D / 16, KR = KS - 4;
    using Smem = MlaPcSmem<LATENT, ROPE>;
    static_assert(LATENT == 512, "each consumer's O half is one m64n256 accumulator");
    static_assert(ROPE == 64, "P (64 heads x 64 tokens bf16) takes the place of exactly one 64-column rope block");
    static_assert(PAGE % TILE == 0, "TMA boxes of one page: the page must be a multiple of the tile");
    static_assert(64 * (LATENT * 4 + 32) <= ST * Smem::k_bytes, "the output rows are staged over the K stages");
    static_assert(Smem::total <= 232448, "227 KB of shared memory per CTA");
    constexpr int REG_P = 184, REG_C = 160, REG_LAUNCH = 65536 / 384 / 8 * 8;  // 168 at 384 threads
    static_assert(REG_P + 2 * REG_C <= 3 * REG_LAUNCH,
                  "setmaxnreg.inc draws from the registers the consumers released: more would hang the producer");

    extern __shared__ __align__(1024) unsigned char smem_raw[];
    unsigned char* smem = smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u);
    // Every shared address is sKa0 + a constant (one register in the producer's loop, whose budget is tight)
    constexpr unsigned OFF_Q = ST * Smem::k_bytes;          // Q column block NB - 1
    constexpr unsigned OFF_ALPHA = OFF_Q + Smem::q_bytes;   // alpha [ST][2][HB] fp32, by stage and half
    constexpr unsigned OFF_SUM = OFF_ALPHA + ST * 2 * HB * 4;  // row sums [HB] fp32
    constexpr unsigned OFF_FULL = OFF_SUM + HB * 4, OFF_READY = OFF_FULL + 8 * ST, OFF_EMPTY = OFF_READY + 16 * ST;
    constexpr unsigned OFF_P = (NB - 1) * (TILE * 128);     // P(j, h) in a stage: + 4096 h
    const unsigned sKa0 = smem_addr(smem);
    const float* s_sum = reinterpret_cast<const float*>(smem + OFF_SUM);

    const int split = blockIdx.x, head0 = blockIdx.y * HB, b = blockIdx.z;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wg = __shfl_sync(0xffffffffu, tid >> 7, 0);  // warp-uniform for ptxas (setmaxnreg branches)
    const int g = lane >> 2, t = lane & 3;
    const bool warp0 = __shfl_sync(0xffffffffu, warp, 0) == 0;  // warp-uniform for ptxas
    const int row0 = (warp & 3) * 16 + g;  // this thread's rows: row0 and row0 + 8 (S, P and O)

    const int len = p.seq_lens[b];
    const MlaSplitTiles cut = mla_split_tiles<TILE>(len, p.num_splits, split);
    // warp-uniform for ptxas: a branch on them must not look divergent (see st_shared_f32_if)
    const int t_begin = __shfl_sync(0xffffffffu, cut.t_begin, 0), t_end = __shfl_sync(0xffffffffu, cut.t_end, 0);
    const int n_tiles = __shfl_sync(0xffffffffu, cut.n_tiles, 0);
    const size_t part_row = (size_t)b * HEADS;
    const bool direct = p.num_splits == 1 && p.out != nullptr;
    // A split without tokens runs through with n_tiles = 0 (no copies, no tiles): it writes zero rows and a
    // log2-sum-exp of -inf. No early return: ptxas keeps the setmaxnreg budgets only without one (NVRTC 13).
    int page_next = 0;  // warp 0: the page of the next tile to issue
    // tile i into its stage: lane 0 of warp 0 issues (a predicate, not a branch: see st_shared_f32_if); every lane
    // of warp 0 keeps page_next
    auto issue_tile = [&](int i, bool issuer) {
        const int tok0 = t_begin + i * TILE;
        const int row = page_next * PAGE + tok0 % PAGE;
        const int* table = p.block_table + (size_t)b * p.block_table_stride;  // recomputed: no register held
        page_next = table[(t_begin + min(i + 1, n_tiles - 1) * TILE) / PAGE];  // no branch (see st_shared_f32_if)
        const unsigned full = sKa0 + OFF_FULL + 8 * (i % ST), dst = sKa0 + (i % ST) * Smem::k_bytes;
        mbar_arrive_expect_tx_if(issuer, full, Smem::k_bytes);
#pragma unroll
        for (int cb = 0; cb < NB; ++cb) tma_load_2d_if(issuer, dst + cb * (TILE * 128), &p.kv_map, cb * 64, row, full);
    };
    if (tid == 0) {
        tma_prefetch_map(&p.kv_map);
        for (int st = 0; st < ST; ++st) {
            mbar_init(sKa0 + OFF_FULL + 8 * st, 1);
            mbar_init(sKa0 + OFF_READY + 16 * st, 4);      // the producer's warps, half 0
            mbar_init(sKa0 + OFF_READY + 16 * st + 8, 4);  // ... half 1
            mbar_init(sKa0 + OFF_EMPTY + 8 * st, 8);       // the consumers' warps
        }
        mbar_init_fence();
    }
    __syncthreads();  // the mbarriers exist
    if (warp == 0) {  // the first tiles (all lanes keep page_next; lane 0 issues)
        if (n_tiles > 0) page_next = p.block_table[(size_t)b * p.block_table_stride + t_begin / PAGE];
        for (int i = 0; i < ST && i < n_tiles; ++i) issue_tile(i, lane == 0);
    }

    if (wg == 0) {
        // ================= producer: S = Q K^T by half tiles, online softmax, P into the tile's rope rows
        warpgroup_reg_alloc<REG_P>();
        // Q: column blocks 0 .. NB - 2 (k-steps < KR) in registers as the A fragments of wgmma_m64n32k16_rs,
        // block NB - 1 (the rope part) in shared memory (rows past HEADS are zero)
        unsigned qa[KR][4];
        {
            const bool v0 = head0 + row0 < HEADS, v1 = head0 + row0 + 8 < HEADS;
            // rows past HEADS read row HEADS - 1 (an address inside q) and use zeros
            const unsigned* q0 =
                reinterpret_cast<const unsigned*>(p.q + (part_row + min(head0 + row0, HEADS - 1)) * D) + t;
            const unsigned* q1 =
                reinterpret_cast<const unsigned*>(p.q + (part_row + min(head0 + row0 + 8, HEADS - 1)) * D) + t;
#pragma unroll
            for (int ks = 0; ks < KR; ++ks) {
                qa[ks][0] = v0 ? __ldg(q0 + ks * 8) : 0u;
                qa[ks][1] = v1 ? __ldg(q1 + ks * 8) : 0u;
                qa[ks][2] = v0 ? __ldg(q0 + ks * 8 + 4) : 0u;
                qa[ks][3] = v1 ? __ldg(q1 + ks * 8 + 4) : 0u;
            }
#pragma unroll
            for (int it = 0; it < HB * 8 / 128; ++it) {  // 16-byte chunks: uniform trip count, no branch
                const int idx = it * 128 + tid, r = idx / 8, c = idx % 8;
                const bool valid = head0 + r < HEADS;
                const unsigned short* src = p.q + (valid ? (part_row + head0 + r) * D + (NB - 1) * 64 + c * 8 : 0);
                cp_async_16(smem + OFF_Q + sw128<HB>(r, c), src, valid);
            }
            cp_async_commit();
            cp_async_wait_all();
            fence_proxy_async_smem();
            warpgroup_sync(1);  // Q's block in shared memory, for every producer warp's wgmma
        }
        const float sl2 = p.scale * 1.4426950408889634f;
        const unsigned long long dq_rope = wgmma_desc_sw128(sKa0 + OFF_Q, 16, 1024);  // Q's block NB - 1
        float m_run[2] = {neg_inf(), neg_inf()};  // running max of rows row0, row0 + 8 (log2 domain)
        float l_run[2] = {0.f, 0.f};              // this thread's partial row sums
        prof.mark(0);
#pragma unroll 1
        for (int j = 0; j < n_tiles; ++j) {
            const int st = j % ST;
            const int tile_start = t_begin + j * TILE;
            const unsigned sKa = sKa0 + st * Smem::k_bytes;
            mbar_wait_pc(sKa0 + OFF_FULL + 8 * st, (j / ST) & 1);
            __syncwarp();  // the spin loop exits lane by lane: converge before the .aligned wgmma
            const int valid = t_end - tile_start;
            if (valid < TILE) {  // the tail rows hold stale data: zero their latent columns (V) for the consumers
                // (S reads them too, but their columns are masked below; P overwrites the rope block). Uniform
                // trip count, predicated stores (see st_shared_f32_if).
#pragma unroll 4
                for (int it = 0; it < TILE * (LATENT / 8) / 128; ++it) {
                    const int idx = it * 128 + tid, r = idx / (LATENT / 8), c = idx % (LATENT / 8);
                    st_shared_zero16_if(r >= valid, sKa + sw128<TILE>(r, c));
                }
                fence_proxy_async_smem();  // ordered before this warp's ready arrival below
            }
            prof.mark(1);
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                // S(j, h): tokens 32 h .. 32 h + 31 of the tile (K rows at 32 h * 128 bytes into each block)
                float s[16];
#pragma unroll
                for (int e = 0; e < 16; ++e) s[e] = 0.f;
                wgmma_pin(s);
                wgmma_fence();
                const unsigned long long dk = wgmma_desc_sw128(sKa + h * 32 * 128, 16, 1024);
#pragma unroll
                for (int ks = 0; ks < KS; ++ks) {  // column block ks / 4, 32 bytes per k-step within it
                    const unsigned long long db = wgmma_desc_add(dk, (ks >> 2) * (TILE * 128) + (ks & 3) * 32);
                    if (ks < KR)
                        wgmma_m64n32k16_rs(s, qa[ks], db, ks > 0);
                    else
                        wgmma_m64n32k16_ss(s, wgmma_desc_add(dq_rope, (ks - KR) * 32), db, 1);
                }
                wgmma_commit();
                // refill: tile j + 2 into the stage of tile j - 1 once both consumers are done with it (warp 0).
                // Behind S(j, 1): the consumers' last P V of tile j - 1 went out with S(j, 0), so the wait is short
                // (behind S(j, 0) it could hold warp 0, and with it P(j, 0), until that P V ends)
                if (h == 1 && warp0 && j >= 1 && j + 2 < n_tiles) {
                    prof.mark(2);
                    mbar_wait_pc(sKa0 + OFF_EMPTY + 8 * ((j - 1) % ST), ((j - 1) / ST) & 1);
                    issue_tile(j + 2, lane == 0);
                    prof.mark(4);
                }
                __syncwarp();
                wgmma_wait<0>();
                wgmma_pin(s);
                warpgroup_sync(1);  // every warp's S(j, h) is done: no wgmma still reads the rope rows P goes into
                prof.mark(2);

                // scale, mask the tail, online softmax over rows row0 and row0 + 8
                float mx[2] = {neg_inf(), neg_inf()}, alpha[2];
#pragma unroll
                for (int e = 0; e < 16; ++e) {
                    const int tok = tile_start + h * 32 + (e >> 2) * 8 + 2 * t + (e & 1);
                    s[e] = tok < t_end ? s[e] * sl2 : neg_inf();
                    mx[(e >> 1) & 1] = fmaxf(mx[(e >> 1) & 1], s[e]);
                }
#pragma unroll
                for (int r = 0; r < 2; ++r) {
                    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
                    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
                    // finite: half 0 holds the tile's first token, and m_run is finite after it
                    const float m_new = fmaxf(m_run[r], mx[r]);
                    alpha[r] = exp2f(m_run[r] - m_new);  // m_run = -inf on the first tile: alpha = 0
                    m_run[r] = m_new;
                    l_run[r] *= alpha[r];
                }
                // P(j, h): [64 heads][32 tokens] bf16 in the 64-byte swizzle (wgmma_desc_sw64) at rope rows 32 h ..
                const unsigned sPa = sKa + OFF_P + h * 4096 + row0 * 64;
#pragma unroll
                for (int c = 0; c < 4; ++c) {
                    const float p0 = exp2f(s[4 * c] - m_run[0]), p1 = exp2f(s[4 * c + 1] - m_run[0]);
                    const float p2 = exp2f(s[4 * c + 2] - m_run[1]), p3 = exp2f(s[4 * c + 3] - m_run[1]);
                    l_run[0] += p0 + p1;
                    l_run[1] += p2 + p3;
                    // tokens 8c + 2t, +1: chunk c, bytes 4t..4t+3 of rows row0 and row0 + 8 (same swizzle phase)
                    const unsigned off = ((c ^ ((row0 >> 1) & 3)) << 4) + 4 * t;
                    st_shared_b32(sPa + off, pack_bf16x2(p0, p1));
                    st_shared_b32(sPa + off + 8 * 64, pack_bf16x2(p2, p3));
                }
                const unsigned a_at = sKa0 + OFF_ALPHA + ((st * 2 + h) * HB + row0) * 4;
                st_shared_f32_if(t == 0, a_at, alpha[0]);
                st_shared_f32_if(t == 0, a_at + 32, alpha[1]);
                fence_proxy_async_smem();
                __syncwarp();  // every lane's P and proxy fence before lane 0's release
                mbar_arrive_if(lane == 0, sKa0 + OFF_READY + 16 * st + 8 * h);
                prof.mark(3);
            }
        }
        // row sums for the consumers; log2-sum-exp of the partial
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            l_run[r] += __shfl_xor_sync(0xffffffffu, l_run[r], 1);
            l_run[r] += __shfl_xor_sync(0xffffffffu, l_run[r], 2);
            const int row = row0 + 8 * r;
            st_shared_f32_if(t == 0, sKa0 + OFF_SUM + row * 4, l_run[r]);
            st_global_f32_if(t == 0 && !direct && head0 + row < HEADS,
                             p.lse_part + (part_row + head0 + row) * p.num_splits + split,
                             l_run[r] > 0.f ? m_run[r] + log2f(l_run[r]) : neg_inf());
        }
        named_barrier_arrive(2, 384);  // the row sums are in shared memory
        prof.mark(6);
    } else {
        // ================= consumers: O half += P V, by half tiles
        warpgroup_reg_dealloc<REG_C>();
        const int cw = wg - 1;  // value columns 256 cw .. + 255 = column blocks 4 cw .. 4 cw + 3
        const unsigned alpha_a = sKa0 + OFF_ALPHA + row0 * 4;
        float o[128];
#pragma unroll
        for (int e = 0; e < 128; ++e) o[e] = 0.f;
        prof.mark(0);
#pragma unroll 1
        for (int j = 0; j < n_tiles; ++j) {
            const int st = j % ST;
            const unsigned sKa = sKa0 + st * Smem::k_bytes;
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                mbar_wait_pc(sKa0 + OFF_READY + 16 * st + 8 * h, (j / ST) & 1);
                __syncwarp();
                fence_proxy_async_smem();
                prof.mark(1);
                float alpha0, alpha1;  // a 32-bit shared address: a register fewer than a generic pointer
                asm volatile("ld.shared.f32 %0, [%1];\n" : "=f"(alpha0) : "r"(alpha_a + (st * 2 + h) * (HB * 4)));
                asm volatile("ld.shared.f32 %0, [%1];\n" : "=f"(alpha1) : "r"(alpha_a + (st * 2 + h) * (HB * 4) + 32));
                if (__any_sync(0xffffffffu, alpha0 != 1.f || alpha1 != 1.f)) {  // the max moved for some row
#pragma unroll
                    for (int c = 0; c < 32; ++c) {
                        o[4 * c] *= alpha0;
                        o[4 * c + 1] *= alpha0;
                        o[4 * c + 2] *= alpha1;
                        o[4 * c + 3] *= alpha1;
                    }
                }
                prof.mark(3);
                // P(j, h) in the 64-byte swizzle; V rows (tokens) 32 h + 16 kk .., columns from block 4 cw: atoms
                // 1024 bytes apart in k, 64 * 128 in n
                const unsigned long long da = wgmma_desc_sw64(sKa + OFF_P + h * 4096);
                const unsigned long long db =
                    wgmma_desc_sw128(sKa + (cw * 4) * (TILE * 128) + h * 32 * 128, TILE * 128, 1024);
                wgmma_pin(o);  // the rescaled values are written before the fence
                wgmma_fence();
                wgmma_m64n256k16_ss_tb(o, da, db, 1);
                wgmma_m64n256k16_ss_tb(o, wgmma_desc_add(da, 32), wgmma_desc_add(db, 16 * 128), 1);
                wgmma_commit();
                wgmma_wait<0>();
                wgmma_pin(o);
                prof.mark(5);
            }
            mbar_arrive_warp(sKa0 + OFF_EMPTY + 8 * st, lane);  // this warp's reads of the stage are done
            prof.mark(4);
        }
        // every consumer's P V is done and the producer left the row sums: stage the normalised rows over the K
        // stages (no copy is in flight: the producer waited for every tile it issued), then store whole rows
        named_barrier_sync(2, 384);
        float inv[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const float l = s_sum[row0 + 8 * r];
            inv[r] = l > 0.f ? 1.f / l : 0.f;
        }
        const int rows = min(HB, HEADS - head0);
        if (direct)
            mla_pc_store_rows<bf16, LATENT>(smem, o, inv, row0, cw, t, tid - 128, p.out + (part_row + head0) * LATENT,
                                            (size_t)LATENT, rows);
        else
            mla_pc_store_rows<PT, LATENT>(
                smem, o, inv, row0, cw, t, tid - 128,
                reinterpret_cast<PT*>(p.o_part) + ((part_row + head0) * p.num_splits + split) * LATENT,
                (size_t)p.num_splits * LATENT, rows);
        prof.mark(6);
    }
    prof.store(p.profile, (tid >> 7) * 8, n_tiles, tid == 0 || tid == 128);
}

}  // namespace mf
