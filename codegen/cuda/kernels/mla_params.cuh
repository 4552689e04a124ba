// Launch parameters of the MLA kernels, shared by host C++ and NVRTC device code: plain fields only.
// Every kernel takes its params struct by value as its one argument.
#pragma once

namespace mf {

// A CUDA tensor map (cuda.h's CUtensorMap: 128 opaque bytes, 64-byte aligned), made on the host by
// cuTensorMapEncodeTiled and read by TMA copies (kernels/tma_sm90.cuh).
struct alignas(64) TmaMap {
    unsigned long long opaque[16];
};

// Absorbed MLA attention over a paged latent cache, one query row (all heads of one token) per batch entry.
// Row b sees cache tokens [0, seq_lens[b]) through block_table[b * block_table_stride + token / page_size];
// a stride of 0 shares one table among all rows (chunked prefill: row i is query token i of one sequence).
struct MlaDecodeParams {
    const unsigned short* q;         // [batch][heads][latent + rope] bf16: q_nope absorbed by W_UK | q_pe
    const unsigned short* kv_cache;  // [pages][page_size][latent + rope] bf16: c_kv | k_pe
    const int* block_table;          // [batch][block_table_stride] page ids
    const int* seq_lens;             // [batch] visible tokens per row (0 allowed: that row's output is zero)
    float* o_part;                   // [batch][heads][num_splits][latent] fp32 (or bf16) workspace
    float* lse_part;                 // [batch][heads][num_splits] fp32 workspace (log2 domain)
    int batch;
    int block_table_stride;
    int num_splits;                  // gridDim.x; each split takes a contiguous, tile-aligned range of the context
    float scale;                     // softmax scale applied to q.k (e.g. 192^-0.5 * mscale^2)
    // [batch][heads][latent] bf16, or null. With num_splits == 1 (and no cluster) and out set, the decode kernel
    // writes the final output here (zeros for rows without context) and no partials: no combine step.
    unsigned short* out;
    // [2][8] (+ [2][8] from the wgmma kernel) or null: cycle counts of CTA (0, 0, 0) from kernels built with
    // config profile = 1 (see mla_decode_wgmma.cuh); for the benchmark.
    unsigned long long* profile;
    // The cache as a 2-D tensor [rows = page * page_size + token][latent + rope] bf16 with 128-byte-swizzled
    // boxes of 64 columns x tile rows, for the configs that load tiles by TMA (config tma; filled by
    // mla_decode_bind_cache). Such kernels take the params as a __grid_constant__ parameter.
    TmaMap kv_map;
    // q as a 3-D tensor [batch][heads][latent + rope] with boxes of 64 columns x 64 heads (config cluster 2:
    // a split pair shares Q by multicast; filled by mla_decode_bind_cache).
    TmaMap q_map;
    // Config fused_combine with a cooperative launch: kMlaGridSyncBytes of counters and flags (zero once at
    // allocation, never reset; one launch at a time uses them) through which all CTAs meet after writing their
    // partials, then they merge the splits themselves into `out` (kernels/mla_fused_combine.cuh). Null: the
    // partials are left for mla_combine.
    unsigned* grid_sync;
};

// The fused combine serves at most this many splits (one lse per thread of a CTA).
constexpr int kMlaFusedCombineMaxSplits = 256;
// MlaDecodeParams::grid_sync: 32-bit words [0] the grid barrier counter (fused_combine 1, 2), [2..3] the 64-bit launch
// epoch counter (8-byte aligned) and [kMlaReadyFlags + kMlaReadyFlagStride f] the ready flag of decode CTA f (fused_combine 3; one flag
// per 128-byte line, so that the pollers of different flags meet in different L2 slices), for grids of at most
// kMlaFusedMaxCtas CTAs; then [kMlaTileClaims + kMlaReadyFlagStride k] the tile counter of (row, head block) k
// (config tile_claim, one per line, set back to 0 by each launch): kMlaGridSyncBytes in all, zeroed once.
constexpr int kMlaReadyFlags = 64;
constexpr int kMlaReadyFlagStride = 32;
constexpr int kMlaFusedMaxCtas = 1024;
constexpr int kMlaTileClaims = kMlaReadyFlags + kMlaReadyFlagStride * kMlaFusedMaxCtas;
constexpr int kMlaGridSyncBytes = 4 * (kMlaTileClaims + kMlaReadyFlagStride * kMlaFusedMaxCtas);

// Config profile, the default wgmma kernel (mla_decode_wgmma.cuh): after the 32 slots of CTA (0, 0, 0), every CTA of
// linear index x + gridDim.x (y + gridDim.y z) below kMlaProfileCtas writes kMlaProfileCtaSlots more at
// profile[32 + kMlaProfileCtaSlots index ..] (times of the whole grid: the skew of its CTAs).
constexpr int kMlaProfileCtas = 1024;
constexpr int kMlaProfileCtaSlots = 8;
// Config balanced_splits (kernels/mla_decode_balanced.cuh): at most this many CTAs (num_splits) in a launch; a cut
// segment's counter is grid_sync word kMlaReadyFlags + kMlaReadyFlagStride c0 (c0 < this).
constexpr int kMlaBalancedMaxCtas = 256;

// Split groups of the combine kernel: its CTA has latent / 4 x this many threads (host and device agree here).
constexpr int kMlaCombineSplitGroups = 8;
// The per-warp combine (kernels/mla_combine_warp.cuh) serves at most this many partials per head.
constexpr int kMlaCombineWarpMaxSplits = 16;

// Merges the splits: out[b][h][:] = sum_s w_s o_part[b][h][s][:], w = softmax over s of lse_part.
struct MlaCombineParams {
    const float* o_part;             // fp32, or bf16 behind a float pointer (bf16-partials combine)
    const float* lse_part;
    unsigned short* out;             // [batch][heads][latent] bf16
    int batch;
    int num_splits;
};

// Writes n latent rows into the paged cache: row i goes to token positions[i] of the sequence whose page table is
// block_table + i * block_table_stride (stride 0: all rows belong to one sequence, as in a prefill chunk).
struct KvAppendParams {
    const unsigned short* src;       // [n][src_stride] bf16; the first latent + rope values of each row are copied
    unsigned short* kv_cache;        // [pages][page_size][latent + rope]
    const int* block_table;
    const int* positions;            // [n] token index of each row in its sequence
    int block_table_stride;
    int src_stride;                  // elements
    int n;
};

}  // namespace mf
