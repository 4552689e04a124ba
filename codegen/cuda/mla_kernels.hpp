// MLA attention kernels over the paged latent cache: absorbed decode (split over the context), the split
// combine, and the cache append. Device code: kernels/mla_decode.cuh; launch parameters:
// kernels/mla_params.cuh.
//
// Decode of one layer (what the executor does per step):
//   kv_append(new [c_kv | k_pe] rows)  ->  mla_decode(q_abs = [q_nope W_UK | q_pe])  ->  mla_combine -> o_lat
// Chunked prefill uses the same kernels: row i of the chunk is one "batch" entry with seq_len = start + i + 1
// over one shared page table (block_table_stride 0), which makes attention causal inside the chunk. This is
// the absorbed form (576-dim q.k, 512-dim p.v): 3.4x the FLOPs of decompressing K/V for long chunks, but one
// tested kernel, no per-chunk K/V decompression GEMMs and the cache stays the only K/V store.
#pragma once
#include <string>
#include <vector>

#include "codegen/cuda/cuda_dtype.hpp"
#include "codegen/cuda/cuda_kernel_source.hpp"
#include "codegen/cuda/cuda_module.hpp"
#include "codegen/cuda/kernel_fields.hpp"
#include "codegen/cuda/kernels/mla_params.cuh"

namespace mf {

struct MlaDecodeDesc {
    int heads = 128;
    int latent_dim = 512;  // c_kv width; also the value width (must be 512: 8 warps x 64 columns)
    int rope_dim = 64;     // k_pe width; latent + rope must be a multiple of 64
    int page_size = 64;    // tokens per cache page
    CudaDtype dtype = CudaDtype::bf16;

    template <class S, class F>
    static void fields(S& s, F&& f) {
        f("dtype", "", s.dtype);
        f("heads", "h", s.heads);
        f("latent_dim", "lat", s.latent_dim);
        f("rope_dim", "rope", s.rope_dim);
        f("page_size", "pg", s.page_size);
    }
    bool operator==(const MlaDecodeDesc& o) const { return fields_equal(*this, o); }
};

// The kernel variant and its tile choices. wgmma = 0: the portable mma.sync kernel (kernels/mla_decode.cuh,
// sm_80+). wgmma = 1: the Hopper kernel (kernels/mla_decode_wgmma.cuh, sm_90a only): warpgroup MMA from
// shared memory, tiles 32 or 64, 2-4 stages; cluster 2 (with tma): split pairs share Q, merge their partials.
struct MlaDecodeConfig {
    int tile_tokens = 64;  // cache tokens per pipeline step: 16, 32 or 64
    int stages = 2;        // K tiles in flight: 1 or 2 (mma.sync), 2 to 4 (wgmma)
    int cluster = 1;       // splits merged in shared memory by a thread-block cluster (sm_90): 1, 2, 4 or 8
    int wgmma = 0;         // 1: the sm_90a warpgroup-MMA kernel
    // Launch choice, not code: each split of the context takes at least this many tiles (1..64), trading SM
    // fill against partial-output traffic (at batch 1 a split's fp32 partial outweighs its cache tokens).
    int min_split_tiles = 1;
    // 1: partial outputs in bf16 (half the workspace traffic of fp32; wgmma kernel only).
    int partial_bf16 = 0;
    // 1: the combine is launched as a programmatic dependent of the decode (sm_90, wgmma kernel only): its
    // launch overlaps the decode's tail.
    int pdl = 0;
    // 1: both warpgroups compute Q K^T, each for half of the tile (wgmma kernel, tile 64).
    int qk_split = 0;
    // Independent accumulator chains for Q K^T in the wgmma kernel: 1, 2 or 4 (breaks the dependency between
    // consecutive small wgmmas; costs NA/2 registers per extra chain).
    int qk_chains = 1;
    // 1: the kernel records per-step cycle counts of one CTA into MlaDecodeParams::profile (benchmark aid,
    // wgmma kernel only; never a tuning candidate).
    int profile = 0;
    // K tiles by TMA (wgmma kernel, page a multiple of the tile): 0 cp.async from all threads; 1 bulk tensor
    // copies issued by one thread; 2 the same, multicast to the two head-block CTAs of a cluster (1, 2, 1)
    // (half the L2->SM traffic; needs an even number of head blocks). Launch with mla_decode_bind_cache.
    int tma = 0;
    // 1: the decode is launched as a programmatic dependent of the previous kernel in the stream (sm_90,
    // wgmma kernel): its CTAs start while that kernel drains and wait for it before reading anything.
    int decode_pdl = 0;
    // 1: with at most kMlaCombineWarpMaxSplits partials per head, the combine runs one warp per (row, head)
    // (kernels/mla_combine_warp.cuh; one wave at batch 8) instead of one 1024-thread CTA per (row, head).
    int combine_warp = 0;
    // 1: the seesaw schedule (kernels/mla_decode_seesaw.cuh): tiles alternate between the two warpgroups for
    // Q K^T + softmax (one warpgroup's S on the tensor cores while the other is in softmax), both do P V; needs
    // wgmma, tma 1, 64-token tiles, 2 stages, no cluster, rope_dim 64 (P goes into the tile's rope columns).
    // H200: correct, slower than the default at every shape (2 stages put the tile copy on the critical path).
    int seesaw = 0;
    // 1: no combine launch where the whole grid fits on the device at once: the decode is launched
    // cooperatively and its CTAs merge the splits after storing their partials (kernels/mla_fused_combine.cuh;
    // 2: a CTA's merge pulls the rows into shared memory by bulk copies instead of loads into registers; 3: no grid
    // barrier: each CTA sets a ready flag after its stores, the merging warps read every split's rows as soon as its
    // flag is set, so the early splits' reads overlap the grid's skew);
    // otherwise (grid too large, one split, more than kMlaFusedCombineMaxSplits splits) the separate combine as
    // before. Needs wgmma, tma 1, cluster 1, no PDL, no seesaw.
    int fused_combine = 0;
    // 1: the early prologue of the wgmma kernel (tma 1, cluster 1, no seesaw): Q by TMA issued before the
    // context length is read, and every stage's tile issued before the first one is computed. 2: also the row's
    // page ids (up to 512, one warp) read together with the context length instead of after it.
    int prologue = 0;
    // 1: the wgmma kernel (tma 1, cluster 1, no seesaw) writes its output rows (partials or final) with one bulk
    // copy per row from the staged rows instead of 16-byte stores from all threads.
    int bulk_store = 0;
    // 0..4: the wgmma kernel (tma 1, cluster 1, no seesaw) also prefetches into L2 the tile this many tiles beyond
    // the last one copied into shared memory (TMA prefetches), so that at batch 1 the copies hit L2.
    int l2_prefetch = 0;
    // 1 (with fused_combine): where the grid leaves SMs idle (batch 1 at short contexts: 1K is 2 x 16 CTAs), the
    // cooperative launch adds CTAs along x that only take part in the merge, so that all SMs read partials.
    // A candidate since session 5 (H200: correct; with merge_loads no faster than without the helpers).
    int merge_helpers = 0;
    // 1: the producer/consumer kernel (kernels/mla_decode_pc.cuh): 3 warpgroups (384 threads); warpgroup 0 holds Q
    // (mostly in registers) and computes S + softmax by half tiles, writing P into the tile's rope rows, while
    // warpgroups 1 and 2 (half of O each) do P V of the previous half; 3 K stages. Needs wgmma, tma 1, 64-token
    // tiles, 3 stages, cluster 1, no qk_split / qk_chains / seesaw, rope_dim 64. H200: correct, slower than the
    // default (S by half tiles costs 2x). 2: the 2-warpgroup "P V first" schedule (kernels/mla_decode_pvfirst.cuh):
    // warpgroup 0 issues P V(j - 1) then S(j) back to back and softmaxes tile j while warpgroup 1 runs its P V;
    // P in the rope columns; 2 stages (same constraints otherwise); the large-batch config. 3: the same with each
    // tile refilled in two halves, the one that only warpgroup 1 reads as soon as its P V is done. 4..7: "P V late"
    // (kernels/mla_decode_pvlate.cuh): as 2, but the last 2 (4), 1 (5), 3 (6) or 4 (7) of warpgroup 1's 4 value blocks go to the
    // tensor cores only after S of the next tile, i.e. in warpgroup 0's softmax window; tiles refilled in two parts.
    // 8 (with softmax_fast 2, 3): 7 with warpgroup 0's P V taking P from the softmax's registers; 9: 8 with S's
    // first 8 k-steps taking Q from registers; 10 (9), 11 (8): warpgroup 0's P V issued inside the softmax, before
    // the P stores (session 7).
    int producer_consumer = 0;
    // 1 (with fused_combine): the merge's register paths load each partial row as 512-byte stretches per warp
    // load (every 32-byte sector once) instead of 32 bytes per lane in two 16-byte loads (each sector fetched
    // twice from L2: .cg loads do not merge them); the lanes' output columns follow (mla_fused_combine.cuh).
    int merge_loads = 0;
    // Heads per CTA of the wgmma kernel (tma 1, cluster 1): 64, or 32 (the wgmma M stays 64, the other 32 rows are
    // computed and dropped): twice the CTAs, each writing half the partial bytes; the split count halves with the
    // head blocks' doubling, so it suits contexts of few tiles per head block (batch 1 at 1K-2K).
    int head_block = 64;
    // 8 or 16 (wgmma kernel, tma 1, cluster 1, no seesaw / producer_consumer): where all splits of a head block fit
    // in one thread-block cluster of this many CTAs (mla_decode_cluster_splits: batch 1 at short contexts), the
    // decode is launched as clusters of that many splits that merge in distributed shared memory (each CTA pushes
    // its rows of the heads a peer owns into the peer's shared memory by bulk copies; mla_wgmma_epilogue.cuh) and
    // write the final rows: no partials in global memory, no grid barrier, no combine. 16 is a non-portable
    // cluster size (CudaKernel::max_active_clusters allows it). Elsewhere, or where the device cannot hold such a
    // cluster, the launch is as without it (fused_combine or the combine kernel). H100, session 6: correct; batch 1
    // 1K 11.6 us (cm16) against the default's 10.8, 9.7 with head_block 32 (tests/bench/cuda_mla_decode_results.md).
    int cluster_merge = 0;
    // 1 (producer_consumer 2..7): the softmax of S as one MUFU.EX2 per element (ex2.approx.ftz), a tree row max and
    // P stored by stmatrix (kernels/mla_wgmma_softmax.cuh) instead of exp2f's range handling, a 16-long max chain
    // and 16 4-byte stores per thread. 2, 3 (producer_consumer 4..7): as 1, with P kept in registers until the
    // warpgroup barrier before its store (the barrier then follows the exponentials); 3: 8 of each thread's 32
    // exponentials by a polynomial on the FP32 pipe beside the MUFU's (session 7).
    int softmax_fast = 0;
    // 1 (wgmma kernel with prologue and fused_combine 1 or 2, no cluster_merge or l2_prefetch): in a fused launch the
    // row's tiles are handed out at run time instead of as one fixed range per split: split s takes tiles s, s +
    // splits, .. (one per stage), then claims the next from a per-(row, head block) counter (two tiles ahead of its
    // copy), so that at long contexts every CTA of a head block ends within about a tile of the others (the grid
    // barrier waited for the slowest of 8-tile splits: 4-5k cycles at batch 1 32K). Elsewhere fixed ranges.
    // Which split sums which tiles depends on timing, so the output's float rounding may differ between launches
    // of the same inputs (within the tests' tolerance, not bit for bit): not for runs that must reproduce tokens.
    int tile_claim = 0;
    // 1 (wgmma kernel with tma 1, cluster 1, bf16 partials): the epilogue stages the normalised rows in shared memory
    // by stmatrix.x4 (16 per thread) instead of 64 4-byte stores per thread (the partial stores, the direct output
    // and the cluster merge's staging; kernels/mla_wgmma_epilogue.cuh).
    int epilogue_stmatrix = 0;
    // 1 (with fused_combine): the merge reads the context length of its first unit's row (which its row loads wait
    // for) before the grid barrier instead of after its release (kernels/mla_fused_combine.cuh).
    int merge_early = 0;
    // 1 (wgmma kernel with tma 1, cluster 1, prologue, no qk_split, tile_claim or l2_prefetch): each 64-column box of
    // a K tile counts on its own mbarrier and Q K^T waits box by box, so that phase A starts when the first 8 KB of
    // the tile landed instead of all of it (batch 1: the tile waits). The sm_90 default since session 8. 2: Q's boxes
    // too, each on a barrier of its own, waited for with the first tile's (S starts before all of Q landed).
    int tile_box_wait = 0;
    // 1 (wgmma kernel with prologue, tile_box_wait, 64-token tiles, 2 stages, no qk_split / qk_chains / tile_claim /
    // l2_prefetch, rope_dim 64): the tile loop of kernels/mla_wgmma_overlap.cuh: warpgroup 0 issues P V(j) and S(j + 1)
    // back to back, warpgroup 1 its P V(j) once P(j) is ready, no CTA barrier between tiles; P in the tile's rope
    // block. 2: that loop in a CTA with 2 tiles or more, the default's where it has one (both P V halves start
    // together).
    int pv_overlap = 0;
    // 1 (head_block 32, with prologue): Q's TMA boxes hold the CTA's own 32 heads (the q map's box has head_block
    // rows), the other 32 rows of Q in shared memory are zeroed: half of Q's 72 KB into each SM (batch 1 at 1K: every
    // SM takes in Q and one 72 KB tile before its only tile is done).
    int q_own_rows = 0;
    // 1 (producer_consumer 4 .. 11, tma 1, no pdl / decode_pdl): the balanced schedule
    // (kernels/mla_decode_balanced.cuh): one CTA per SM (num_splits = the SM count, a 1-D grid), in groups of one CTA
    // per head block; each group takes an even share of all rows' tiles, flattened in the order (row, tile); a (row,
    // head block) cut between CTAs is merged by its last part to finish (a counter in grid_sync, as fused_combine), the
    // others are written directly. No combine launch. (Batch 64 with 128 heads: 128 CTAs of the grid schedule leave 4
    // of 132 SMs idle.) 2: as 1, and a cut's part that finds every other part arrived merges its own rows from shared
    // memory instead of writing and reading back a partial. 3 (bf16 partials): as 2, and the next unit's first tile is
    // issued before a unit's epilogue (the copy lands meanwhile).
    int balanced_splits = 0;
    // 1 (the default kernel with prologue 1, fused_combine 0 .. 2, no pdl / decode_pdl / tile_claim): the decode is
    // launched as a programmatic dependent of the previous kernel in the stream, which must be the cache append of
    // this step (MlaAttention::append: it writes only each row's token len - 1; with rows sharing one page table
    // every tile waits) or one writing neither the cache nor anything the decode reads except Q: its barriers, the
    // context length, the page ids and the K copies of every first-stage tile that does not hold token len - 1 go out
    // while that kernel runs; Q, the last tile and every output after griddepcontrol.wait. With the cooperative
    // launch of fused_combine or the cluster launch of cluster_merge (attributes together). 2: also Q's copy before the
    // wait, first, as without early_tiles (then the previous kernel must not write Q either: the append does not; H200,
    // session 9: Q after the two early tiles (1) made the SM take in Q last, +2 us at 8K).
    int early_tiles = 0;
    // 1 (producer_consumer 7 or 8, tma 1, no balanced_splits): the "P V late" kernel with each 64-column box of a K
    // stage on an mbarrier of its own (kernels/mla_decode_pvlate.cuh, BOX): S waits box by box, so that it starts
    // once a tile's first box landed instead of its whole lo half (session 9). 2 (producer_consumer 7): also warpgroup
    // 0's P V in two groups of two value blocks, the first two boxes refilled as soon as the first group is done.
    int stage_box_wait = 0;

    template <class S, class F>
    static void fields(S& s, F&& f) {
        f("tile_tokens", "t", s.tile_tokens);
        f("stages", "s", s.stages);
        f("cluster", "c", s.cluster);
        f("wgmma", "wg", s.wgmma);
        f("min_split_tiles", "mt", s.min_split_tiles);
        f("partial_bf16", "pb", s.partial_bf16);
        f("pdl", "pdl", s.pdl);
        f("qk_split", "qs", s.qk_split);
        f("qk_chains", "qc", s.qk_chains);
        f("profile", "prof", s.profile);
        f("tma", "tma", s.tma);
        f("decode_pdl", "dpdl", s.decode_pdl);
        f("combine_warp", "cw", s.combine_warp);
        f("seesaw", "ss", s.seesaw);
        f("fused_combine", "fc", s.fused_combine);
        f("prologue", "pro", s.prologue);
        f("bulk_store", "bs", s.bulk_store);
        f("l2_prefetch", "l2p", s.l2_prefetch);
        f("merge_helpers", "mh", s.merge_helpers);
        f("producer_consumer", "pc", s.producer_consumer);
        f("merge_loads", "ml", s.merge_loads);
        f("head_block", "hb", s.head_block);
        f("cluster_merge", "cm", s.cluster_merge);
        f("softmax_fast", "sf", s.softmax_fast);
        f("tile_claim", "tcl", s.tile_claim);
        f("epilogue_stmatrix", "esm", s.epilogue_stmatrix);
        f("merge_early", "mel", s.merge_early);
        f("tile_box_wait", "bw", s.tile_box_wait);
        f("pv_overlap", "pvo", s.pv_overlap);
        f("q_own_rows", "qor", s.q_own_rows);
        f("balanced_splits", "bal", s.balanced_splits);
        f("early_tiles", "et", s.early_tiles);
        f("stage_box_wait", "sbw", s.stage_box_wait);
    }
    bool operator==(const MlaDecodeConfig& o) const { return fields_equal(*this, o); }
};

inline constexpr unsigned kMlaDecodeThreads = 256;
inline constexpr int kMlaHeadsPerBlock = 64;

std::string mla_decode_name(const MlaDecodeDesc& d, const MlaDecodeConfig& c);
unsigned mla_decode_smem_bytes(const MlaDecodeDesc& d, const MlaDecodeConfig& c);
// Empty when (d, c) is supported on `sm` (major * 10 + minor); else why not (a normal answer while tuning).
std::string mla_decode_unsupported(const MlaDecodeDesc& d, const MlaDecodeConfig& c, int sm);
// The configs below are defined in mla_decode_candidates.cpp.
// The largest-tile config that fits `sm`'s shared memory.
MlaDecodeConfig mla_decode_default_config(const MlaDecodeDesc& d, int sm);
// Launches of at least kMlaLargeBatchRows rows (chunked prefill, large decode batches): on sm_90 the "P V late"
// kernel with all of warpgroup 1's P V in the softmax window and the fast softmax (producer_consumer 7, softmax_fast
// 2; H200, session 7: 266.5-272.5 / 1055.3-1075.5 us at batch 64, 8K / 32K context, ~0.89x the default's time,
// slower at batch 1; tests/bench/cuda_mla_decode_results.md), elsewhere the default.
inline constexpr int kMlaLargeBatchRows = 64;
MlaDecodeConfig mla_decode_large_batch_config(const MlaDecodeDesc& d, int sm);
// The config a decode launched right behind MlaAttention::append runs: c with early_tiles 2 where the kernel takes
// it (the append writes only each row's token len - 1 and no Q, so Q and the other first tiles go out before the
// wait; H200, session 9: 1.0-1.4 us less at batch 1, 1K-4K), else c. GpuLayers launches its decodes so, and
// kernel-dump shows them so.
MlaDecodeConfig mla_decode_after_append_config(const MlaDecodeDesc& d, const MlaDecodeConfig& c, int sm);
// Every config supported for (d, sm), default first: what the tuner searches and the benchmark times.
std::vector<MlaDecodeConfig> mla_decode_candidates(const MlaDecodeDesc& d, int sm);
// Throws std::invalid_argument when unsupported.
CudaKernelSource mla_decode_source(const MlaDecodeDesc& d, const MlaDecodeConfig& c, int sm);

// Fills p.kv_map (the cache p.kv_cache as a TMA tensor map) when c loads tiles by TMA; a no-op otherwise.
// Host-only (cuTensorMapEncodeTiled, no GPU work): call it after setting p.kv_cache, before each launch.
// Throws std::runtime_error when the driver lacks tensor maps.
void mla_decode_bind_cache(const MlaDecodeDesc& d, const MlaDecodeConfig& c, MlaDecodeParams& p);

// Splits of the context per row (MlaDecodeParams::num_splits, the grid's x) so that batch x head blocks x
// splits fills the SMs once, at least one tile each where possible; a multiple of c.cluster. Config cluster_merge:
// mla_decode_cluster_splits where it applies; `max_clusters` (CudaKernel::max_active_clusters, -1: not known):
// never more clusters than the device holds at once.
int mla_decode_num_splits(const MlaDecodeDesc& d, const MlaDecodeConfig& c, int batch, int max_seq_len,
                          int sms, int max_clusters = -1);
// Config cluster_merge C: a CTA of a cluster merge takes at most this many tiles (C x this many cover a row).
inline constexpr int kMlaClusterMergeMaxTiles = 2;
// Config cluster_merge C: C when the row's tiles fit C CTAs of at most kMlaClusterMergeMaxTiles tiles each and the
// batch x head blocks clusters fit `sm_budget` SMs at once (and, when known, max_clusters); else 0 (the split count
// of the config without it).
int mla_decode_cluster_splits(const MlaDecodeDesc& d, const MlaDecodeConfig& c, int batch, int max_seq_len,
                              int sm_budget, int max_clusters = -1);
// True when a launch of `grid` (mla_decode_grid) is one cluster of c.cluster_merge CTAs per head block and row that
// merges the splits in distributed shared memory (CudaKernel::launch_cluster, MlaDecodeParams::out set, no
// partials, no combine): grid.x is c.cluster_merge splits and the device holds all grid.y x grid.z clusters at once
// (max_clusters: CudaKernel::max_active_clusters); else the launch goes as without cluster_merge.
bool mla_decode_cluster_merges(const MlaDecodeConfig& c, Dim3 grid, int max_clusters);
Dim3 mla_decode_grid(const MlaDecodeDesc& d, const MlaDecodeConfig& c, int batch, int num_splits);
// Partial outputs per (row, head) that reach global memory: num_splits / c.cluster. The combine's num_splits.
int mla_decode_partials(const MlaDecodeConfig& c, int num_splits);
// True when the decode kernel writes the final output itself (MlaDecodeParams::out; one split, no cluster):
// then there is no combine launch.
bool mla_decode_writes_output(const MlaDecodeConfig& c, int num_splits);
// True when a launch of `grid_ctas` CTAs with `num_splits` splits merges the splits inside the decode kernel
// (config fused_combine): it must then be a cooperative launch (CudaKernel::launch_cooperative) with
// MlaDecodeParams::grid_sync set, and there is no combine launch. `max_resident_ctas`: the decode kernel's
// CudaKernel::max_resident_ctas().
bool mla_decode_fuses_combine(const MlaDecodeConfig& c, int num_splits, int grid_ctas, int max_resident_ctas);
// The grid of such a fused launch: mla_decode_grid, or with merge_helpers as many CTAs along x as fit the device
// (max_resident_ctas), the ones past num_splits only merging.
Dim3 mla_decode_fused_grid(const MlaDecodeDesc& d, const MlaDecodeConfig& c, int batch, int num_splits,
                           int max_resident_ctas);
// How one decode launch goes: the one decision MlaAttention::decode and the benchmark share.
struct MlaDecodeLaunch {
    Dim3 grid;                  // mla_decode_grid, or mla_decode_fused_grid for a fused launch
    CudaLaunchOptions options;  // cluster (cluster_merge), cooperative (fused_combine), dependent (decode_pdl,
                                // early_tiles: with either of the others)
    bool writes_output = false;  // MlaDecodeParams::out set, no combine launch: one split, a fused or cluster merge
    bool grid_sync = false;      // MlaDecodeParams::grid_sync set: the splits merge in the decode (fused_combine,
                                 // balanced_splits; balanced CTAs never wait for each other: not cooperative)
};
// `max_resident_ctas`: CudaKernel::max_resident_ctas() of the decode (0 where no config fuses); `max_clusters`:
// CudaKernel::max_active_clusters(c.cluster_merge) (0 without cluster_merge).
MlaDecodeLaunch mla_decode_launch_kind(const MlaDecodeDesc& d, const MlaDecodeConfig& c, int batch, int num_splits,
                                       int max_resident_ctas, int max_clusters);
// Workspace of MlaDecodeParams::o_part (fp32, or bf16 with c.partial_bf16) and lse_part for `partials`
// partial outputs per (row, head).
size_t mla_decode_o_part_bytes(const MlaDecodeDesc& d, const MlaDecodeConfig& c, int batch, int partials);
size_t mla_decode_lse_part_bytes(const MlaDecodeDesc& d, int batch, int partials);

// The combine kernel of a decode desc (depends on heads and latent_dim only) for fp32 or bf16 partials;
// `dependent`: launched with CudaKernel::launch_dependent after the decode (config pdl).
std::string mla_combine_name(const MlaDecodeDesc& d, bool bf16_partials = false, bool dependent = false);
CudaKernelSource mla_combine_source(const MlaDecodeDesc& d, bool bf16_partials = false,
                                    bool dependent = false);
// The combine of a decode config.
CudaKernelSource mla_combine_source(const MlaDecodeDesc& d, const MlaDecodeConfig& c);
Dim3 mla_combine_grid(const MlaDecodeDesc& d, int batch);
// The per-warp combine (config combine_warp), and whether a launch of `batch` rows with `partials` partials per
// head uses it: at most kMlaCombineWarpMaxSplits partials and at least 256 (row, head) pairs (32 CTAs: at batch
// 1 its 16 CTAs would read all partials through 16 SMs; H200: 5.9 us against 3.9 us at 16 splits).
std::string mla_combine_warp_name(const MlaDecodeDesc& d, bool bf16_partials = false, bool dependent = false);
CudaKernelSource mla_combine_warp_source(const MlaDecodeDesc& d, bool bf16_partials = false,
                                         bool dependent = false);
CudaKernelSource mla_combine_warp_source(const MlaDecodeDesc& d, const MlaDecodeConfig& c);
Dim3 mla_combine_warp_grid(const MlaDecodeDesc& d, int batch);
bool mla_combine_uses_warps(const MlaDecodeDesc& d, const MlaDecodeConfig& c, int batch, int partials);

// The cache append of a decode desc (depends on latent + rope and page_size).
std::string kv_append_name(const MlaDecodeDesc& d);
CudaKernelSource kv_append_source(const MlaDecodeDesc& d);
Dim3 kv_append_grid(int n_rows);

}  // namespace mf
