// MLA decode, Hopper path (sm_90a only): warpgroup MMA (wgmma) with both operands in shared memory and a
// multistage ring filled by cp.async or TMA. Same contract as mla_decode<> in mla_decode.cuh: same grid (splits, head blocks
// of 64, rows), same MlaDecodeParams, same normalised fp32 partials + log2-sum-exp for mla_combine.
//
// One CTA = one split of the context x 64 heads x one query row; 2 warpgroups (256 threads), one CTA per SM.
// Warp w of warpgroup wg = w / 4 owns heads 16 (w % 4) .. +15 in both phases (the wgmma accumulator layout
// puts warp w % 4 on rows 16 (w % 4)..), so a thread's two softmax rows are also its two output rows.
// Per tile of TILE cache tokens (K = V = the tile's [latent | rope] rows; V = the first LATENT columns):
//   phase A (warpgroup 0): S[64][TILE] = Q . K^T, D / 16 wgmma m64nTILEk16, Q and K from shared memory
//            (K-major). The online softmax needs only quad shuffles (each warp holds 16 heads whole);
//            P = exp2(S - m) goes to shared memory as bf16 (K-major, swizzled), the rescale alpha per head
//            next to it.
//   phase B (both warpgroups): O[64][256 wg .. +255] = alpha O + P . V, TILE / 16 wgmma m64n256k16, P and V
//            from shared memory; V is the K tile read MN-major (transposed B), 128 fp32 accumulators/thread.
// Warpgroup 1 idles during phase A unless QKS (config qk_split): then each warpgroup computes S for half of the
// tile's tokens and the two row maxima meet in shared memory. The normalised output rows leave through shared
// memory (staged over Q/K) as whole-row 16-byte stores.
// Shared memory, 1024-byte aligned (128-byte swizzle atoms, see wgmma_sm90.cuh), bytes:
//   Q [D/64 column blocks][64 rows][128]; STAGES x K [D/64][TILE][128]; P [64][128] (TILE 32 fills the first
//   64 bytes of each row); alpha [64], row max [2][64], row sum [2][64] fp32; full [4], empty [4], q mbarriers
//   (TMA). Tile i + STAGES - 1 streams in while tile i is computed. t64 s2: 231,808 bytes of the 232,448.
// Registers (ptxas, t64 s2): 228-254 per thread, no spills: warpgroup 0 holds O (128 fp32) and S (32).
// K tiles arrive by cp.async (all 256 threads, 16 bytes each) or, with TMA (config tma, page a multiple of the
// tile), by thread 128 (warpgroup 1 idles in phase A) as D/64 swizzled boxes of 64 columns x TILE rows counted
// on the stage's full mbarrier. TMA 2: the two head-block CTAs of one (row, split) form a cluster (1, 2, 1)
// and read the same tiles, so each issues half of every tile's boxes multicast to both (half the L2->SM
// traffic); a stage is refilled once both CTAs arrived on the issuer's empty mbarrier.
// CX 2 (config cluster 2, with TMA): two consecutive splits join the cluster (2, 1 or 2, 1): they read the same Q
// rows, so each issues half of Q's boxes multicast to both, and they merge their partial outputs in distributed
// shared memory (mla_wgmma_epilogue.cuh): half the partials to write and to combine. A split without tokens
// still takes part (its pair needs its half of Q and its empty partial).
// PRO (config prologue, with TMA 1): thread 128 sets up the barriers and issues Q (9 boxes through the 3-D q
// map) before the context length is read, then every stage's tile as soon as the first page id arrives (the
// default issues tile STAGES - 1 only during tile 0's phase A): at batch 1 a CTA has 1-8 tiles, and the
// prologue (~3.1k cycles at 8K: seq_len -> page table -> copy, Q behind them) was as long as a tile. PRO 2: the
// page ids come from a read of the row's whole table (<= 512 pages) issued with the context length's.
// FC (config fused_combine 1, 2 or 3): launched cooperatively with p.grid_sync set, the CTAs merge the splits
// themselves after storing their partials (kernels/mla_fused_combine.cuh; 2: the rows are pulled into shared
// memory by bulk copies; 3: no grid barrier, each split's rows are read once its ready flag is set); with
// p.grid_sync null the kernel behaves as without FC.
// BS (config bulk_store): the staged output rows leave as one bulk copy per row (mla_store_rows_bulk).
// L2P (config l2_prefetch): thread 128 also prefetches into L2 the tile L2P tiles beyond the last one it copied
// into shared memory (a TMA prefetch per box), so that at batch 1 the next copies hit L2 instead of HBM.
// MCO (config merge_loads, with FC): the merge's warp loads read whole 512-byte stretches of a partial row
// (mla_merge_column in mla_fused_combine.cuh) instead of half of every sector twice.
// HPB (config head_block 32, TMA 1): a CTA owns 32 heads, not 64: the wgmma M stays 64 (rows 32..63 compute the
// next block's heads, or zeros past the last head, and are dropped), the grid has twice the head blocks, and each
// CTA writes half the partial bytes (at batch 1 with few tiles per split, e.g. 1K, the per-SM partial stores,
// ~2.5k cycles for 64 KB, halve while the tile work per CTA stays one tile).
// CM (config cluster_merge 8 / 16, TMA 1): launched as clusters of CM CTAs along x (all splits of a head block and
// row: MlaAttention picks it for short contexts), the splits merge in distributed shared memory instead of
// through global partials and a grid barrier (mla_cluster_merge in mla_wgmma_epilogue.cuh: each CTA pushes the
// rows of the heads a peer owns into the peer's shared memory by bulk copies, counted on the peer's receive
// mbarrier, armed in the prologue). A split without tokens still takes part. Launched without a cluster, the
// kernel is the one without CM (fused combine or partials for the combine kernel).
// CLAIM (config tile_claim 1, with PRO and FC 1 / 2, launched fused): the row's tiles are handed out at run time
// instead of as a fixed range per split, so that at long contexts all CTAs of a head block finish within about a
// tile of each other (the grid barrier waited 4-5k cycles for the last of 8-tile splits). Split s takes tiles s and
// s + num_splits, .. (STAGES of them, fixed: issued in the prologue as before); every further tile is claimed by
// thread 128 from a per-(row, head block) counter in p.grid_sync (mla_tile_claim_counter: tile STAGES x num_splits
// + the counter's old value), two tiles ahead of its copy so the claim's round trip and the page id's read are off
// the copy's path. The claimed tile index reaches the consumers in shared memory beside the stage (s_tile, written
// before the stage's arrive.expect_tx, read after its wait: the mbarrier orders it); a tile past the row's end is
// the sentinel (-1, the stage completed by a plain arrival): the loop ends there. Tiles are claimed in increasing
// order, so a CTA's tiles are valid up to its first sentinel. A split's partial covers whichever tiles it got (the
// lse merge does not care); splits s >= the row's tiles get none (lse -inf, as before). After the grid barrier
// CTA x = 0 of each (row, head block) sets its counter back to 0 for the next launch (mla_fused_combine).
// ESM (config epilogue_stmatrix, bf16 rows): the epilogue stages the normalised rows by stmatrix.x4 (16 per thread)
// instead of 64 4-byte shared stores (mla_stage_rows; session 6 timed the staging at ~2-5k cycles).
// MEL (config merge_early, with FC): the fused combine reads the context length its first merge unit's loads wait
// for before the grid barrier, not after its release (mla_fused_combine's EARLY).
// BW (config tile_box_wait, with PRO, TMA 1): each of a tile's D/64 boxes (64 columns) counts on a barrier of its own
// (after the mbarrier block: STAGES x D/64 more, 8 bytes each), and warpgroup 0 waits for box cb only before the
// four k-steps of S that read it: phase A starts when the tile's first 8 KB landed instead of all 72 KB (at batch 1
// the tile waits are ~1-3k cycles a tile). Warpgroup 1 waits for all boxes before its P V; a partial last tile
// (zeroed tail rows) waits for all of them first, as before. BW 2: Q's D/64 boxes likewise (D/64 more barriers after
// the tiles'), waited for with tile 0's: S starts when Q's and the tile's first 8 KB landed, not all 72 KB of Q.
// (The prologue's barrier set-up and first copies: mla_wgmma_prologue.cuh.)
// ET (config early_tiles, PRO 1): launched as a programmatic dependent of the cache append, whose kernel lets it start
// at once: the barriers, the context length, the page ids and the K copies of the first stages whose tile does not
// hold the row's token len - 1 go out before griddepcontrol.wait; Q, that tile and every output after it. ET 2: Q's copy
// too before the wait, first as without ET (the append writes no Q: it was written before the append started).
// OVL (config pv_overlap, with PRO, BW, 64-token tiles, 2 stages): the tile loop of mla_wgmma_overlap.cuh, where
// S(j + 1) goes to the tensor cores right behind P V(j) (no CTA barrier between tiles, P in the tile's rope block);
// OVL 2: only in a CTA with 2 tiles or more (one tile: the loop below, where both P V halves start together).
// QOR (config q_own_rows, HPB 32, PRO): Q's boxes hold the CTA's own HPB heads only (the q map's box has HPB rows:
// mla_decode_bind_cache), rows HPB..63 of sQ are zeroed: half of Q's bytes into each SM (batch 1 at 1K moves ~144 KB
// into every SM before its one tile is done, Q half of it); the epilogue stages only rows 0 .. HPB - 1.
#pragma once
#include "bf16.cuh"
#include "grid_dependency.cuh"
#include "mla_decode.cuh"  // mla_zero_rows
#include "mla_fused_combine.cuh"
#include "mla_params.cuh"
#include "mla_wgmma_epilogue.cuh"
#include "mla_wgmma_overlap.cuh"
#include "mla_wgmma_prologue.cuh"
#include "mma_sm80.cuh"
#include "tma_sm90.cuh"
#include "wgmma_sm90.cuh"

namespace mf {

template <int LATENT, int ROPE, int TILE, int STAGES>
struct MlaWgmmaSmem {
    static constexpr int D = LATENT + ROPE;
    static constexpr int q_bytes = (D / 64) * 64 * 128;
    static constexpr int k_bytes = (D / 64) * TILE * 128;
    static constexpr int p_bytes = 64 * 128;
    static constexpr int row_bytes = 5 * 64 * 4;  // alpha, row max [2], row sum [2]
    static constexpr int bar_bytes = 128;  // full [4], empty [4], q mbarriers, 8 bytes each; FC 3's epoch at + 72
    static constexpr int align_slack = 1024;  // the dynamic window is rounded up to 1024 bytes at run time
    static constexpr int total = align_slack + q_bytes + STAGES * k_bytes + p_bytes + row_bytes + bar_bytes;
};

// Byte offset of 16-byte chunk c (0 .. D/8 - 1) of row r in a [D/64][ROWS][128 B] 128-byte-swizzled tile.
template <int ROWS>
__device__ __forceinline__ unsigned sw128(int r, int c) {
    return (unsigned)((c >> 3) * (ROWS * 128) + r * 128 + (((c & 7) ^ (r & 7)) << 4));
}

template <int TILE>
__device__ __forceinline__ void wgmma_qk(float (&s)[TILE / 2], unsigned long long da, unsigned long long db,
                                         int accumulate) {
    if constexpr (TILE == 64)
        wgmma_m64n64k16_ss(s, da, db, accumulate);
    else
        wgmma_m64n32k16_ss(s, da, db, accumulate);
}

// PT: the type of the partial outputs in p.o_part (float, or bf16 for half the traffic; mla_combine<.., PT>).
// PDL: let the combine kernel (launched as a programmatic dependent) start as soon as SMs free up.
// QKS: both warpgroups compute S, each for half of the tile's tokens (two wgmma chains; the row max is exchanged
// through shared memory), instead of warpgroup 0 alone while warpgroup 1 waits.
// CHAINS: independent accumulator sets for Q K^T (1, 2 or 4), summed after the last k-step.
// TMA: 0 K tiles by cp.async; 1 by TMA; 2 by TMA multicast over the cluster (1, 2, 1) of the head-block pair.
// DPDL: launched as a programmatic dependent of the previous kernel: waits for it before the first global read.
// PROF: threads 0 and 128 (one per warpgroup) of CTA (0, 0, 0) add up clock64() cycles per step and write them to
// p.profile[wg * 8 + k], k = prologue, wait for the tile (copies + barrier), phase A (wgmmas + issuing the next
// copies), softmax and P, barrier, phase B, epilogue, tiles (a benchmark aid; not a tuning candidate); then
// p.profile[16 + wg * 8 + k], k = fused combine: grid barrier wait, merge; epilogue: row sums + lse, stores;
// fused combine: until the arrival is issued (thread 0), release to the first partial rows summed; 2 unused. Every
// CTA (thread 0) also writes p.profile[32 + kMlaProfileCtaSlots cta + k] (mla_params.cuh), k = globaltimer ns at
// its start, at its loop's end, at its end; cycles of its prologue, its loop, its tile waits + phase A, its grid
// barrier wait; its tiles + (SM id << 32).
template <int HEADS, int LATENT, int ROPE, int PAGE, int TILE, int STAGES, class PT, bool PDL, bool QKS,
          int CHAINS, int TMA, int CX, bool DPDL, bool PROF, int FC = 0, int PRO = 0, bool BS = false,
          int L2P = 0, bool MCO = false, int HPB = 64, int CM = 0, int CLAIM = 0, bool ESM = false,
          bool MEL = false, int BW = 0, int OVL = 0, bool QOR = false, int ET = 0>
__device__ __forceinline__ void mla_decode_wgmma(const MlaDecodeParams& p) {
    if constexpr (DPDL) griddep_wait();
    if constexpr (PDL) griddep_launch_dependents();
    long long prof[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    long long prof_t = PROF ? clock64() : 0;
    const unsigned long long t_start_ns = PROF ? global_timer_ns() : 0;  // (the grid's skew: per-CTA slots)
    auto mark = [&](int k) {
        if constexpr (PROF) {
            const long long now = clock64();
            prof[k] += now - prof_t;
            prof_t = now;
        }
    };
    constexpr int NA = QKS ? TILE / 2 : TILE;  // S columns (tokens) per computing warpgroup
    constexpr int D = LATENT + ROPE;
    constexpr int CH = D / 8;  // 16-byte chunks per row
    constexpr int HB = 64;     // heads per CTA (the wgmma M)
    constexpr int NV = LATENT / 2;  // value columns per warpgroup
    using Smem = MlaWgmmaSmem<LATENT, ROPE, TILE, STAGES>;
    static_assert(NV == 256, "phase B gives each warpgroup one m64n256 accumulator: LATENT must be 512");
    static_assert(D % 64 == 0, "rows must be whole 128-byte swizzle atoms");
    static_assert(TILE == 32 || TILE == 64, "tile of 32 or 64 tokens");
    static_assert(STAGES >= 2 && STAGES <= 4, "2 to 4 K stages");
    static_assert(NA == 32 || NA == 64, "S tiles of 32 or 64 tokens per warpgroup");
    static_assert(CHAINS == 1 || CHAINS == 2 || CHAINS == 4, "1, 2 or 4 Q K^T accumulator chains");
    static_assert((LATENT + ROPE) / 16 % CHAINS == 0, "whole k-steps per chain");
    static_assert(TMA == 0 || PAGE % TILE == 0, "TMA boxes of one page: the page must be a multiple of the tile");
    static_assert(STAGES * 8 <= 32, "the mbarrier block holds 4 stages");
    static_assert(CX == 1 || (CX == 2 && TMA != 0), "a split pair shares Q through TMA multicast");
    static_assert(!(FC || PRO || BS || L2P) || (TMA == 1 && CX == 1), "fc, pro, bs, l2p: TMA 1, no cluster");
    static_assert(64 * (LATENT * 4 + 32) <= MlaWgmmaSmem<LATENT, ROPE, TILE, STAGES>::q_bytes +
                                                STAGES * MlaWgmmaSmem<LATENT, ROPE, TILE, STAGES>::k_bytes,
                  "the output rows are staged over the Q and K buffers");

    extern __shared__ __align__(1024) unsigned char smem_raw[];
    unsigned char* smem = smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u);
    unsigned char* sQ = smem;
    unsigned char* sK = sQ + Smem::q_bytes;
    unsigned char* sP = sK + STAGES * Smem::k_bytes;
    float* s_alpha = reinterpret_cast<float*>(sP + Smem::p_bytes);  // [HB]
    float* red_max = s_alpha + HB;                                   // [2][HB]
    float* red_sum = red_max + 2 * HB;                               // [2][HB]
    const unsigned bar_full = smem_addr(red_sum + 2 * HB), bar_empty = bar_full + 32;  // + 8 * stage
    const unsigned bar_q = bar_full + 64;
    const unsigned bar_box0 = bar_full + Smem::bar_bytes;  // BW: box cb of stage st at + 8 (st D/64 + cb)
    auto bar_box = [&](int st, int cb) { return bar_box0 + 8 * (st * (D / 64) + cb); };
    auto bar_qbox = [&](int cb) { return bar_box0 + 8 * (STAGES * (D / 64) + cb); };  // BW 2: Q's box cb
    static_assert(BW >= 0 && BW <= 2 && (!BW || (TMA == 1 && CX == 1 && PRO != 0 && !QKS && CLAIM == 0 && L2P == 0)),
                  "tile_box_wait: TMA 1, prologue, no split pairs, qk_split, tile_claim or l2_prefetch");
    const unsigned bar_recv = bar_empty;  // CM: the rows the cluster's peers push here (empty [0] is unused by TMA 1)
    // OVL: "P(j) ready" [2] and the stages' release [2] in the full barriers' place (unused with BW)
    const unsigned bar_ovl_ready = bar_full, bar_ovl_empty = bar_full + 16;
    static_assert(!OVL || (BW != 0 && TILE == 64 && STAGES == 2 && CHAINS == 1 && ROPE == 64),
                  "pv_overlap: tile_box_wait, 64-token tiles, 2 stages, one Q K^T chain, rope_dim 64");

    static_assert(HPB == 64 || (HPB == 32 && TMA == 1 && CX == 1), "32 heads per CTA: TMA 1, no cluster");
    const int split = blockIdx.x, head0 = blockIdx.y * HPB, b = blockIdx.z;
    // FC with config merge_helpers: the cooperative grid has more CTAs along x than splits; those only merge
    const bool helper = FC != 0 && split >= p.num_splits;
    static_assert(CM == 0 || ((CM == 8 || CM == 16) && TMA == 1 && CX == 1), "cluster merge: 8 or 16, TMA 1");
    static_assert(CM == 0 || (64 + HPB) * mla_stage_stride<bf16, LATENT>() <= Smem::q_bytes + STAGES * Smem::k_bytes,
                  "the cluster merge stages 64 rows and receives HPB rows over the Q and K buffers");
    // CM, launched as a cluster of CM splits (MlaAttention: the launch holds all splits of a head block): the
    // splits merge in distributed shared memory (mla_cluster_merge); launched without one, as without CM
    const bool clustered = CM != 0 && cluster_nctarank() > 1;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wg = warp >> 2, g = lane >> 2, t = lane & 3;
    const int row0 = (warp & 3) * 16 + g;  // this thread's rows: row0 and row0 + 8 (S, P and O)

    const int len = p.seq_lens[b];  // (loaded while the barriers are set up and Q is issued: PRO)
    const int* table = p.block_table + (size_t)b * p.block_table_stride;
    // PRO 2: warp 4 loads the row's page ids (up to 32 x TBL) together with len, not after it (one L2 round trip
    // less before the first tiles are issued); a shared table (stride 0, prefill) or a longer one: as PRO 1
    constexpr int TBL = PRO == 2 ? 16 : 1;
    const bool tbl_regs = PRO == 2 && p.block_table_stride > 0 && p.block_table_stride <= 32 * TBL;
    int tbl[TBL];
#pragma unroll
    for (int k = 0; k < TBL; ++k)
        tbl[k] = tbl_regs && warp == 4 && !helper && k * 32 + lane < p.block_table_stride ? table[k * 32 + lane] : 0;
    // FC 3: this launch's ready flag value, from the launch epoch before this CTA's arrival (mla_ready_arrive), kept
    // in shared memory beside the mbarriers
    unsigned* s_epoch = reinterpret_cast<unsigned*>(red_sum + 2 * HB) + 18;
    if (FC == 3 && tid == 0 && p.grid_sync != nullptr)
        *s_epoch = mla_ready_value(ld_relaxed_gpu_u64(mla_epoch_counter(p.grid_sync)));
    static_assert(!QOR || (HPB < HB && PRO), "q_own_rows: 32 heads per CTA, Q by the prologue's TMA");
    constexpr int QROWS = QOR ? HPB : HB;  // Q rows per box that TMA writes (mla_wgmma_prologue.cuh)
    if constexpr (PRO)
        mla_wgmma_prologue<LATENT, D, STAGES, BW, OVL, CM, HPB, QOR, ET>(p, sQ, tid, helper, head0, b, bar_full,
                                                                          bar_q, bar_box0, bar_recv, bar_ovl_ready,
                                                                          bar_ovl_empty, bar_qbox);
    static_assert(ET >= 0 && ET <= 2 &&
                      (!ET || (PRO == 1 && TMA == 1 && CX == 1 && CLAIM == 0 && FC != 3 && !DPDL && !PDL)),
                  "early_tiles: prologue 1, TMA 1, no split pairs, tile_claim, ready flags or other PDL");
    static_assert(!ESM || (sizeof(PT) == 2 && CX == 1), "epilogue_stmatrix: bf16 partials, no split pairs");
    static_assert(CLAIM == 0 || (CLAIM == 1 && PRO != 0 && (FC == 1 || FC == 2) && CM == 0 && L2P == 0),
                  "tile_claim: prologue, fused_combine 1 or 2 (its grid barrier orders the counter's reset), no "
                  "cluster_merge, no l2_prefetch");
    // CLAIM: only a fused launch claims tiles (the counters are reset after its grid barrier); else fixed ranges
    const bool claim = CLAIM != 0 && p.grid_sync != nullptr && !(p.num_splits == 1 && p.out != nullptr);
    const int row_tiles = (len + TILE - 1) / TILE;
    const MlaSplitTiles cut = mla_split_tiles<TILE>(len, p.num_splits, split);
    // (claim: tokens [0, len) in tiles handed out at run time, the loop ends at the first sentinel; helpers: none)
    const int t_begin = claim ? 0 : cut.t_begin, t_end = claim ? len : cut.t_end;
    const int n_tiles = claim ? (split < p.num_splits && split < row_tiles ? 0x7fffffff : 0) : cut.n_tiles;
    // claim: this CTA's fixed tile k < STAGES (-1 past the row), the first claimable tile, the counter, the slots
    auto fixed_tile = [&](int k) { return split + k * p.num_splits < row_tiles ? split + k * p.num_splits : -1; };
    const int claim_base = STAGES * p.num_splits;
    unsigned* claim_ctr = CLAIM && claim ? mla_tile_claim_counter(p.grid_sync, b * gridDim.y + blockIdx.y) : nullptr;
    int* s_tile = reinterpret_cast<int*>(red_sum + 2 * HB) + 20;  // [STAGES] beside the mbarriers (+ 80 bytes)

    const size_t part_row = (size_t)b * HEADS;  // + head, then * n_parts + part
    const int n_parts = p.num_splits / CX, part = split / CX;  // partials written (CX 2: one per split pair)
    const int xr = CX == 2 ? split & 1 : 0, yr = TMA == 2 ? blockIdx.y & 1 : 0;  // cluster coordinates
    const unsigned rank = xr + CX * yr;                                        // %cluster_ctarank
    const bool direct = p.num_splits == 1 && p.out != nullptr;  // final bf16 output, no partials
    const bool fused = FC != 0 && p.grid_sync != nullptr && !direct;  // this launch merges the splits itself
    constexpr int SCRATCH = Smem::q_bytes + STAGES * Smem::k_bytes;    // free for the merge after the stores
    // the whole cluster leaves here or none of it: the pair's first split has no tokens, so neither has any
    // (CM clusters: a split without tokens takes part in the merge with lse -inf and zero rows)
    if (!clustered && (CX == 1 ? n_tiles == 0 : (split - xr) * cut.tiles_per_split * TILE >= len)) {
        if constexpr (ET) {  // (no tiles: nothing to issue early) the outputs (ET 1: and Q) only after the append
            griddep_wait();
            if (ET == 1 && tid == 128 && !helper) mla_wgmma_issue_q<D, BW, QROWS>(p, sQ, head0, b, bar_q, bar_qbox);
        }
        if (direct)
            mla_zero_rows<LATENT>(p.out + (part_row + head0) * LATENT, min(HPB, HEADS - head0), tid, blockDim.x);
        else if (xr == 0 && !helper)
            for (int r = tid; r < HPB; r += blockDim.x)
                if (head0 + r < HEADS) p.lse_part[(part_row + head0 + r) * n_parts + part] = neg_inf();
        if (PRO && !helper)  // Q's copy must land before the CTA leaves (or reuses it)
            for (int cb = 0; cb < (BW == 2 ? D / 64 : 1); ++cb) mbar_wait(BW == 2 ? bar_qbox(cb) : bar_q, 0);
        if constexpr (FC)
            if (fused)
                mla_fused_combine<HEADS, LATENT, TILE, PT, FC == 2, SCRATCH, MCO, FC == 3, HPB, CLAIM != 0, MEL>(
                    p, smem, nullptr, s_epoch);
        return;
    }

    constexpr int NB = D / 64;  // 64-column boxes per tile
    // TMA 2: this CTA issues boxes [cb0, cb1) of every tile, multicast to the head-block pair (ranks xr, xr + CX)
    const int cb0 = TMA == 2 ? yr * ((NB + 1) / 2) : 0, cb1 = TMA == 2 && yr == 0 ? (NB + 1) / 2 : NB;
    const unsigned short k_mask = (unsigned short)((1u << xr) | (1u << (xr + CX)));
    if constexpr (TMA != 0 && !PRO) {
        if (tid == 128) {
            tma_prefetch_map(&p.kv_map);
            for (int st = 0; st < STAGES; ++st) {
                mbar_init(bar_full + 8 * st, 1);
                if (TMA == 2) mbar_init(bar_empty + 8 * st, 2);  // one arrival per CTA of the pair
            }
            mbar_init(bar_q, 1);
            if (CM) mbar_init(bar_recv, 1);
            mbar_init_fence();
            if (CM) mbar_arrive_expect_tx(bar_recv, mla_cluster_merge_bytes<LATENT, CM, HPB>());
        }
        if constexpr (TMA == 2 || CX == 2)
            cluster_sync();  // every CTA's barriers exist before any copies or arrives
        else
            __syncthreads();
    }
    if constexpr (CX == 2) {  // Q: boxes [q0, q1) from this split, multicast to the split pair of this head block
        if (tid == 128) {
            const int q0 = xr * ((NB + 1) / 2), q1 = xr == 0 ? (NB + 1) / 2 : NB;
            mbar_arrive_expect_tx(bar_q, Smem::q_bytes);
            for (int cb = q0; cb < q1; ++cb)
                tma_load_3d_multicast(smem_addr(sQ + cb * (HB * 128)), &p.q_map, cb * 64, head0, b, bar_q,
                                      (unsigned short)(3u << (CX * yr)));
        }
    }
    // Thread 128 only: tile i into `stage`, its page read ahead (page_next: the page of tile i).
    int page_next = TMA != 0 && !PRO && tid == 128 && n_tiles > 0 ? table[t_begin / PAGE] : 0;
    auto issue_tile = [&](int i, int stage) {
        const int tok0 = t_begin + i * TILE;
        const int row = page_next * PAGE + tok0 % PAGE;
        if (i + 1 < n_tiles) page_next = table[(tok0 + TILE) / PAGE];
        const unsigned full = bar_full + 8 * stage, dst = smem_addr(sK + stage * Smem::k_bytes);
        if constexpr (BW) {  // each box on its own barrier
            for (int cb = 0; cb < NB; ++cb) {
                mbar_arrive_expect_tx(bar_box(stage, cb), TILE * 128);
                tma_load_2d(dst + cb * (TILE * 128), &p.kv_map, cb * 64, row, bar_box(stage, cb));
            }
            return;
        }
        mbar_arrive_expect_tx(full, Smem::k_bytes);  // the whole tile lands here, whoever issued the boxes
        for (int cb = cb0; cb < cb1; ++cb) {
            if constexpr (TMA == 2)
                tma_load_2d_multicast(dst + cb * (TILE * 128), &p.kv_map, cb * 64, row, full, k_mask);
            else
                tma_load_2d(dst + cb * (TILE * 128), &p.kv_map, cb * 64, row, full);
        }
    };
    auto prefetch_tile = [&](int j) {  // thread 128: tile j of this split into L2
        if (j >= n_tiles) return;
        const int tok0 = t_begin + j * TILE;
        const int row = table[tok0 / PAGE] * PAGE + tok0 % PAGE;
        for (int cb = 0; cb < NB; ++cb) tma_prefetch_l2_2d(&p.kv_map, cb * 64, row);
    };
    auto load_tile = [&](int i, int stage) {
        unsigned char* dst = sK + stage * Smem::k_bytes;
        const int tok0 = t_begin + i * TILE;  // < t_end
        if constexpr (PAGE % TILE == 0) {
            // tiles start at multiples of TILE, so a tile lies in one page: one page-table read per tile
            const unsigned short* base = p.kv_cache + ((size_t)table[tok0 / PAGE] * PAGE + tok0 % PAGE) * D;
#pragma unroll 6
            for (int idx = tid; idx < TILE * CH; idx += 256) {
                const int r = idx / CH, c = idx % CH;
                const bool valid = tok0 + r < t_end;
                cp_async_16(dst + sw128<TILE>(r, c), valid ? base + r * D + c * 8 : p.kv_cache, valid);
            }
        } else {
            for (int idx = tid; idx < TILE * CH; idx += 256) {
                const int r = idx / CH, c = idx % CH;
                const int tok = tok0 + r;
                const bool valid = tok < t_end;
                const unsigned short* src = p.kv_cache;
                if (valid) src += ((size_t)table[tok / PAGE] * PAGE + tok % PAGE) * D + c * 8;
                cp_async_16(dst + sw128<TILE>(r, c), src, valid);
            }
        }
    };

    // CLAIM, thread 128 (warp 4 lane 0 with PRO 2): tile `tile` (-1: the sentinel) into `stage`, its index into
    // s_tile[stage] before the arrival that releases it
    auto issue_claimed = [&](int tile, int page, int stage) {
        s_tile[stage] = tile;
        const unsigned full = bar_full + 8 * stage;
        if (tile < 0) {
            mbar_arrive_expect_tx(full, 0);  // a plain arrival: the phase completes with no bytes
            return;
        }
        mbar_arrive_expect_tx(full, Smem::k_bytes);
        const int tok0 = tile * TILE, row = page * PAGE + tok0 % PAGE;
        const unsigned dst = smem_addr(sK + stage * Smem::k_bytes);
        for (int cb = 0; cb < NB; ++cb) tma_load_2d(dst + cb * (TILE * 128), &p.kv_map, cb * 64, row, full);
    };
    // claim state (the issuing thread): the next tile to issue and its page (resolved one iteration ahead), the
    // counter's reply in flight (claim_pending: an atomicAdd's return value, not waited for until resolved)
    int claim_tile = -1, claim_page = 0;
    unsigned claim_pending = 0;
    bool claim_inflight = false, claim_sent = false;
    auto claim_first = [&]() {  // after the fixed tiles: one claim in flight if the row has claimable tiles
        if (claim_base < row_tiles) {
            claim_pending = atomicAdd(claim_ctr, 1u);
            claim_inflight = true;
        }
    };
    auto claim_resolve = [&]() {  // the reply in flight -> claim_tile, its page read and the next claim sent
        const int next_tile = claim_base + (int)claim_pending;
        claim_tile = claim_inflight && next_tile < row_tiles ? next_tile : -1;
        claim_inflight = false;
        if (claim_tile >= 0) {
            claim_page = table[claim_tile * TILE / PAGE];
            claim_pending = atomicAdd(claim_ctr, 1u);
            claim_inflight = true;
        }
    };
    // Q rows of this head block (rows past HEADS are zero) go with tile 0; then tiles 1 .. STAGES - 2. One
    // commit group per tile, empty ones included, so that "group i" is always tile i.
    for (int idx = tid; CX == 1 && !PRO && idx < HB * CH; idx += 256) {
        const int r = idx / CH, c = idx % CH;
        const bool valid = head0 + r < HEADS;
        const unsigned short* src = p.q;
        if (valid) src += (part_row + head0 + r) * D + c * 8;
        cp_async_16(sQ + sw128<HB>(r, c), src, valid);
    }
    // ET: the stages held back until the append is done (it writes token len - 1 of each row; rows sharing one page
    // table, a prefill chunk, may have more fresh tokens: there every stage waits)
    auto late = [&](int st) {
        return !(p.block_table_stride != 0 || p.batch == 1) || (st == n_tiles - 1 && t_end == len);
    };
    if constexpr (TMA != 0) {
        cp_async_commit();  // Q: group 0
        if (PRO == 2 && warp == 4) {  // every stage from the page ids warp 4 holds (or one round trip, as PRO 1)
            int pg[STAGES];
#pragma unroll
            for (int st = 0; st < STAGES; ++st) {
                const int idx = claim ? max(0, fixed_tile(st)) * TILE / PAGE : (t_begin + st * TILE) / PAGE;
                int v = 0;
#pragma unroll
                for (int k = 0; k < TBL; ++k) v = k == idx / 32 ? tbl[k] : v;
                v = __shfl_sync(0xffffffffu, v, idx & 31);
                pg[st] = tbl_regs ? v : lane == 0 && (claim ? fixed_tile(st) >= 0 : st < n_tiles) ? table[idx] : 0;
            }
            if (lane == 0 && claim) {
#pragma unroll
                for (int st = 0; st < STAGES; ++st) issue_claimed(fixed_tile(st), pg[st], st);
                claim_first();
            } else if (lane == 0) {
#pragma unroll
                for (int st = 0; st < STAGES; ++st)
                    if (st < n_tiles) {
                        page_next = pg[st];
                        issue_tile(st, st);
                    }
                for (int j = STAGES; j < STAGES - 1 + L2P; ++j) prefetch_tile(j);
            }
        }
        if (PRO != 2 && tid == 128) {
            if (PRO && claim) {  // the fixed tiles (the page ids in one round trip), then the first claim
                int pg[STAGES];
#pragma unroll
                for (int st = 0; st < STAGES; ++st)
                    pg[st] = fixed_tile(st) >= 0 ? table[fixed_tile(st) * TILE / PAGE] : 0;
#pragma unroll
                for (int st = 0; st < STAGES; ++st) issue_claimed(fixed_tile(st), pg[st], st);
                claim_first();
            } else if constexpr (PRO) {  // every stage, the page ids of all of them in one round trip
                int pg[STAGES];
#pragma unroll
                for (int st = 0; st < STAGES; ++st) pg[st] = st < n_tiles ? table[(t_begin + st * TILE) / PAGE] : 0;
#pragma unroll
                for (int st = 0; st < STAGES; ++st)
                    if (st < n_tiles && (!ET || !late(st))) {  // ET: the rest after the wait
                        page_next = pg[st];
                        issue_tile(st, st);
                    }
            } else {
                for (int st = 0; st < STAGES - 1 && st < n_tiles; ++st) issue_tile(st, st);
            }
            for (int j = STAGES; j < STAGES - 1 + L2P; ++j) prefetch_tile(j);  // iteration i takes i + S - 1 + L2P
        }
    } else {
#pragma unroll
        for (int st = 0; st < STAGES - 1; ++st) {
            if (st < n_tiles) load_tile(st, st);
            cp_async_commit();
        }
    }
    if constexpr (ET) {  // every thread: nothing the append may write (the last page; ET 1: Q) is read before this
        griddep_wait();
        if (tid == 128)
            mla_wgmma_issue_after_wait<D, BW, QROWS, STAGES, TILE, PAGE, ET == 1>(p, sQ, head0, b, bar_q, bar_qbox,
                                                                                n_tiles, t_begin, table, page_next,
                                                                                issue_tile, late);
    }

    const float sl2 = p.scale * 1.4426950408889634f;
    float m_run[2] = {neg_inf(), neg_inf()};  // running max of rows row0, row0 + 8 (log2 domain; the same in
                                              // both warpgroups with QKS, else warpgroup 0's)
    float l_run[2] = {0.f, 0.f};              // this thread's partial row sums (computing warpgroups)
    float o[NV / 2];
#pragma unroll
    for (int e = 0; e < NV / 2; ++e) o[e] = 0.f;

    const unsigned sKa0 = smem_addr(sK);
    const unsigned long long dq = wgmma_desc_sw128(smem_addr(sQ), 16, 1024);  // Q (A of S), K-major
    const unsigned long long dp = wgmma_desc_sw128(smem_addr(sP), 16, 1024);  // P (A of P V), K-major
    if constexpr (BW == 2) {  // Q box by box with tile 0's (a CM split without tiles: all of it before the epilogue)
        if (n_tiles == 0)
            for (int cb = 0; cb < D / 64; ++cb) mbar_wait(bar_qbox(cb), 0);
    } else if constexpr (CX == 2 || PRO) {
        mbar_wait(bar_q, 0);  // also before the epilogue reuses Q's space (no tiles)
    }
    mark(0);
    int tiles_done = 0;  // (profile: tiles this CTA computed)
    const bool overlap = OVL == 1 || (OVL == 2 && n_tiles >= 2);  // (OVL 1: the loop below is not compiled)
    if constexpr (OVL != 0)
        if (overlap && n_tiles > 0)
            mla_wgmma_overlap_loop<LATENT, D, BW == 2>(sK, Smem::k_bytes, dq, bar_ovl_ready, bar_ovl_empty, s_alpha,
                                                       red_max, n_tiles, t_begin, t_end, sl2, m_run, l_run, o, row0,
                                                       wg, lane, tid, bar_box, bar_qbox, issue_tile, mark);
    for (int i = 0; !overlap && i < n_tiles; ++i) {
        int tile_start = t_begin + i * TILE;
        if constexpr (TMA != 0) {
            cp_async_wait_group<0>();  // Q (only the first time)
            if constexpr (BW) {  // (a partial tile: all boxes before its tail is zeroed; else per box in phase A)
                if (t_end - tile_start < TILE)
                    for (int cb = 0; cb < NB; ++cb) mbar_wait(bar_box(i % STAGES, cb), (i / STAGES) & 1);
            } else {
                mbar_wait(bar_full + 8 * (i % STAGES), (i / STAGES) & 1);
            }
            if (CLAIM && claim) {  // the tile the issuing thread put into this stage, or the sentinel
                const int tl = s_tile[i % STAGES];
                if (tl < 0) break;
                tile_start = tl * TILE;
            }
            if (t_end - tile_start < TILE) {  // the tail rows of the last tile hold stale data: zero them
                const int valid = t_end - tile_start;
                unsigned char* k = sK + (i % STAGES) * Smem::k_bytes;
                for (int idx = tid; idx < (TILE - valid) * CH; idx += 256) {
                    const int r = valid + idx / CH, c = idx % CH;
                    *reinterpret_cast<uint4*>(k + sw128<TILE>(r, c)) = make_uint4(0, 0, 0, 0);
                }
            }
        } else {
            cp_async_wait_group<STAGES - 2>();  // tile i (and Q) landed for this thread's copies
        }
        fence_proxy_async_smem();           // ... and are visible to wgmma after the barrier
        __syncthreads();                    // also: phase B of tile i - 1 is done in both warpgroups
        mark(1);
        const unsigned sKa = sKa0 + (i % STAGES) * Smem::k_bytes;

        // ---- phase A: S = Q K^T (QKS: each warpgroup its half of the tile's tokens, else warpgroup 0 alone)
        // CHAINS independent accumulators, k-step ks into chain ks % CHAINS: a wgmma that accumulates into the
        // previous one's registers waits for it, so one chain of 36 small (n32/n64) wgmmas runs at their
        // latency, not the tensor cores' rate (H200 run 1: ~150 cycles per m64n64k16 step)
        const int tok_off = QKS ? wg * NA : 0;  // first token of this warpgroup's columns in the tile
        float sc[CHAINS][NA / 2];
        if (QKS || wg == 0) {
#pragma unroll
            for (int c = 0; c < CHAINS; ++c)
#pragma unroll
                for (int e = 0; e < NA / 2; ++e) sc[c][e] = 0.f;
            if (BW) {  // box 0 of the tile (BW 2: and of Q, with tile 0); the rest in the chain
                mbar_wait(bar_box(i % STAGES, 0), (i / STAGES) & 1);
                if (BW == 2 && i == 0) mbar_wait(bar_qbox(0), 0);
            }
            wgmma_fence();
            // k-step ks: column block ks / 4, 32 bytes per k-step of 16 within it (one add per descriptor)
            const unsigned long long db = wgmma_desc_sw128(sKa + tok_off * 128, 16, 1024);
#pragma unroll
            for (int ks = 0; ks < D / 16; ++ks) {
                if (BW && ks % 4 == 0 && ks > 0) {  // box ks / 4 (box 0: waited before the fence above)
                    mbar_wait(bar_box(i % STAGES, ks / 4), (i / STAGES) & 1);
                    if (BW == 2 && i == 0) mbar_wait(bar_qbox(ks / 4), 0);
                    wgmma_fence();  // (else ptxas injects one: the wait loop sits between the chain's wgmmas)
                }
                wgmma_qk<NA>(sc[ks % CHAINS], wgmma_desc_add(dq, (ks >> 2) * (HB * 128) + (ks & 3) * 32),
                             wgmma_desc_add(db, (ks >> 2) * (TILE * 128) + (ks & 3) * 32), ks >= CHAINS);
            }
            wgmma_commit();
        }
        {  // the next tile's copies go out while the tensor cores run phase A
            const int next = i + STAGES - 1;  // into the stage tile i - 1 used
            if constexpr (TMA != 0) {
                if (CLAIM && claim) {
                    // thread 128: the tile resolved last iteration (or the sentinel, once) into the stage tile
                    // i - 1 used, then the next claim resolved (its reply came during the tile) and one more sent
                    if (tid == 128 && !claim_sent) {
                        if (next >= STAGES) {
                            issue_claimed(claim_tile, claim_page, next % STAGES);
                            claim_sent = claim_tile < 0;
                        }
                        if (!claim_sent) claim_resolve();
                    }
                } else if (tid == 128 && next < n_tiles && (!PRO || next >= STAGES)) {  // PRO: stages filled ahead
                    if (TMA == 2 && i >= 1) {  // both CTAs are done with tile i - 1 = next - STAGES
                        const unsigned empty = bar_empty + 8 * (next % STAGES);
                        mbar_arrive_cluster(empty, xr);
                        mbar_arrive_cluster(empty, xr + CX);
                        mbar_wait(empty, ((i - 1) / STAGES) & 1);
                    }
                    issue_tile(next, next % STAGES);
                }
                if (L2P > 0 && tid == 128) prefetch_tile(next + L2P);
            } else {
                if (next < n_tiles) load_tile(next, next % STAGES);
                cp_async_commit();
            }
        }
        if (BW && wg == 1)  // V: every box of the tile landed (warpgroup 0 waited for them in phase A)
            for (int cb = 0; cb < NB; ++cb) mbar_wait(bar_box(i % STAGES, cb), (i / STAGES) & 1);
        float alpha[2] = {1.f, 1.f};
        if (QKS || wg == 0) {
            wgmma_wait<0>();
#pragma unroll
            for (int c = 0; c < CHAINS; ++c) wgmma_pin(sc[c]);
            mark(2);
            float s[NA / 2];
#pragma unroll
            for (int e = 0; e < NA / 2; ++e) {
                s[e] = sc[0][e];
#pragma unroll
                for (int c = 1; c < CHAINS; ++c) s[e] += sc[c][e];
            }

            // scale, mask the tail, online softmax over rows row0 and row0 + 8
            float mx[2] = {neg_inf(), neg_inf()};
#pragma unroll
            for (int e = 0; e < NA / 2; ++e) {
                const int tok = tile_start + tok_off + (e >> 2) * 8 + 2 * t + (e & 1);
                s[e] = tok < t_end ? s[e] * sl2 : neg_inf();
                mx[(e >> 1) & 1] = fmaxf(mx[(e >> 1) & 1], s[e]);
            }
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
                mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
            }
            if constexpr (QKS) {  // the other half's row max (a half may be all masked: -inf)
                if (t == 0) {
                    red_max[wg * HB + row0] = mx[0];
                    red_max[wg * HB + row0 + 8] = mx[1];
                }
                __syncthreads();  // both warpgroups are here (QKS)
#pragma unroll
                for (int h = 0; h < 2; ++h)
                    mx[h] = fmaxf(red_max[row0 + 8 * h], red_max[HB + row0 + 8 * h]);
            }
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const float m_new = fmaxf(m_run[h], mx[h]);  // finite: every tile has a valid token
                alpha[h] = exp2f(m_run[h] - m_new);          // m_run = -inf on the first tile: alpha = 0
                m_run[h] = m_new;
                l_run[h] *= alpha[h];
            }
#pragma unroll
            for (int j = 0; j < NA / 8; ++j) {
                const float p0 = exp2f(s[4 * j] - m_run[0]), p1 = exp2f(s[4 * j + 1] - m_run[0]);
                const float p2 = exp2f(s[4 * j + 2] - m_run[1]), p3 = exp2f(s[4 * j + 3] - m_run[1]);
                l_run[0] += p0 + p1;
                l_run[1] += p2 + p3;
                // cols c = tok_off + 8j + 2t, +1: chunk c / 8, bytes 4t..4t+3 of rows row0 and row0 + 8
                const int chunk = tok_off / 8 + j;
                const unsigned off = row0 * 128 + ((chunk ^ (row0 & 7)) << 4) + 4 * t;
                *reinterpret_cast<unsigned*>(sP + off) = pack_bf16x2(p0, p1);
                *reinterpret_cast<unsigned*>(sP + off + 8 * 128) = pack_bf16x2(p2, p3);
            }
            if (!QKS && t == 0) {
                s_alpha[row0] = alpha[0];
                s_alpha[row0 + 8] = alpha[1];
            }
            fence_proxy_async_smem();
        }
        mark(3);
        __syncthreads();
        mark(4);

        // ---- phase B: O = alpha O + P V over this warpgroup's 256 value columns
        if constexpr (!QKS) {  // warpgroup 1 takes warpgroup 0's factors (same rows)
            alpha[0] = s_alpha[row0];
            alpha[1] = s_alpha[row0 + 8];
        }
        if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {  // the max moved for some row
#pragma unroll
            for (int j = 0; j < NV / 8; ++j) {
                o[4 * j] *= alpha[0];
                o[4 * j + 1] *= alpha[0];
                o[4 * j + 2] *= alpha[1];
                o[4 * j + 3] *= alpha[1];
            }
        }
        wgmma_fence();
        {  // V rows (tokens) 16 kk .., columns from block 4 wg: atoms 1024 bytes apart in k, TILE * 128 in n
            const unsigned long long dv = wgmma_desc_sw128(sKa + (wg * 4) * (TILE * 128), TILE * 128, 1024);
#pragma unroll
            for (int kk = 0; kk < TILE / 16; ++kk)
                wgmma_m64n256k16_ss_tb(o, wgmma_desc_add(dp, kk * 32), wgmma_desc_add(dv, kk * 16 * 128), 1);
        }
        wgmma_commit();
        wgmma_wait<0>();
        wgmma_pin(o);
        mark(5);
        ++tiles_done;
    }
    cp_async_wait_all();  // only empty groups can be left; keeps the exit clean
    const unsigned long long t_loop_ns = PROF ? global_timer_ns() : 0;
    // CM: this CTA is done with its Q / K buffers, its peers may push into them (the wait is in mla_cluster_merge,
    // after this CTA staged its rows: the cluster barrier's latency overlaps the staging)
    if (CM != 0 && clustered) cluster_arrive();
    if constexpr (TMA == 2 && CX == 1) cluster_arrive_relaxed();  // (waited for at the exit: see there)

    // ---- row sums (each computing warpgroup holds the sums over its columns), the log2-sum-exp, then the
    // normalised rows through shared memory (the Q/K buffers are free once both warpgroups passed the barrier)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 1);
        l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 2);
    }
    if (t == 0 && (QKS || wg == 0)) {
        red_sum[wg * HB + row0] = l_run[0];
        red_sum[wg * HB + row0 + 8] = l_run[1];
    }
    __syncthreads();
    float inv[2], lse_row[2];
    const int rows = min(HPB, HEADS - head0);  // (HPB 32: rows 32..63 computed heads of the next block or zeros)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int row = row0 + 8 * h;
        const float l = red_sum[row] + (QKS ? red_sum[HB + row] : 0.f);  // 0 only for a split without tokens
        inv[h] = l > 0.f ? 1.f / l : 0.f;
        const float lse = l > 0.f ? m_run[h] + log2f(l) : neg_inf();
        if (CX == 2 && wg == 0 && t == 0) red_max[row] = lse;  // for the pair merge
        lse_row[h] = lse;
        if (CX == 1 && !direct && !clustered && wg == 0 && t == 0 && row < HPB && head0 + row < HEADS)
            p.lse_part[(part_row + head0 + row) * p.num_splits + split] = lse;
    }
    const long long t_store = PROF ? clock64() : 0;  // the epilogue's stores start
    long long cm_prof[4] = {0, 0, 0, 0};  // CM, profile builds: cluster barrier wait, push + rows landed, merge, fence
    if constexpr (CX == 2) {
        mla_stage_rows<PT, LATENT>(smem, o, inv, row0, wg, t);
        cluster_sync();  // both splits' rows and lse are staged
        mla_merge_split_pair<PT, LATENT>(
            smem, red_max, rank, tid, reinterpret_cast<PT*>(p.o_part) + ((part_row + head0) * n_parts + part) * LATENT,
            (size_t)n_parts * LATENT, p.lse_part + (part_row + head0) * n_parts + part, n_parts, rows);
        cluster_sync();  // no CTA leaves while its pair still reads its shared memory
    } else if (CM != 0 && clustered) {
        if constexpr (CM != 0)
            mla_cluster_merge<LATENT, CM, HPB, NV / 2, ESM, QROWS>(
                smem, o, inv, lse_row, row0, wg, t, tid, bar_recv, cluster_ctarank(),
                p.out + (part_row + head0) * LATENT, rows, PROF ? cm_prof : nullptr);
    } else if (BS && direct)
        mla_store_rows_bulk<bf16, LATENT, NV / 2, ESM>(
            smem, o, inv, row0, wg, t, tid, p.out + (part_row + head0) * LATENT, (size_t)LATENT, rows, false);
    else if (BS)
        mla_store_rows_bulk<PT, LATENT, NV / 2, ESM>(
            smem, o, inv, row0, wg, t, tid,
            reinterpret_cast<PT*>(p.o_part) + ((part_row + head0) * p.num_splits + split) * LATENT,
            (size_t)p.num_splits * LATENT, rows, fused);
    else if (direct)
        mla_store_rows<bf16, LATENT, NV / 2, ESM, QROWS>(smem, o, inv, row0, wg, t, tid,
                                                         p.out + (part_row + head0) * LATENT, (size_t)LATENT, rows);
    else
        mla_store_rows<PT, LATENT, NV / 2, ESM, QROWS>(
            smem, o, inv, row0, wg, t, tid,
            reinterpret_cast<PT*>(p.o_part) + ((part_row + head0) * p.num_splits + split) * LATENT,
            (size_t)p.num_splits * LATENT, rows);
    if constexpr (TMA == 2 && CX == 1)  // no CTA leaves while its pair may still touch its shared memory
        cluster_wait();
    // profile: fused combine barrier wait, merge; epilogue before the stores (row sums, lse), the stores
    long long prof_x[8] = {0, 0, PROF ? t_store - prof_t : 0, PROF ? clock64() - t_store : 0, 0, 0, 0, 0};
    if (PROF && clustered) {  // stores = staging; "grid wait" = the cluster barrier; merge (first = rows landed)
        prof_x[3] -= cm_prof[0] + cm_prof[1] + cm_prof[2] + cm_prof[3];
        prof_x[0] = cm_prof[0];
        prof_x[1] = cm_prof[1] + cm_prof[2];
        prof_x[4] = cm_prof[3];  // ("arrival": the proxy fence after the staging)
        prof_x[5] = cm_prof[1];
    }
    if constexpr (FC)
        if (fused) {
            mark(6);
            mla_fused_combine<HEADS, LATENT, TILE, PT, FC == 2, SCRATCH, MCO, FC == 3, HPB, CLAIM != 0, MEL>(
                p, smem, PROF ? prof_x : nullptr, s_epoch);
            if constexpr (PROF) prof_t = clock64();
        }
    if constexpr (PROF) {
        mark(6);
        prof[7] = CLAIM ? tiles_done : n_tiles;
        if (p.profile && blockIdx.x == 0 && blockIdx.y == 0 && blockIdx.z == 0 && (tid & 127) == 0)
#pragma unroll
            for (int k = 0; k < 8; ++k) p.profile[wg * 8 + k] = (unsigned long long)prof[k];
        if (p.profile && blockIdx.x == 0 && blockIdx.y == 0 && blockIdx.z == 0 && (tid & 127) == 0)
#pragma unroll
            for (int k = 0; k < 8; ++k) p.profile[16 + wg * 8 + k] = (unsigned long long)prof_x[k];
        if (tid == 0)
            mla_profile_cta(p.profile, {t_start_ns, t_loop_ns, global_timer_ns(), (unsigned long long)prof[0],
                                        (unsigned long long)(prof[1] + prof[2] + prof[3] + prof[4] + prof[5]),
                                        (unsigned long long)(prof[1] + prof[2]), (unsigned long long)prof_x[0],
                                        (unsigned long long)prof[7]});
    }
}

}  // namespace mf
