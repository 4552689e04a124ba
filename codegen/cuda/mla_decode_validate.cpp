// Which (desc, config) pairs the MLA decode kernels take on an arch, and why not: the tuner's and the runtime's
// filter, and the message a user sees for a plan made on another GPU.
#include "codegen/cuda/mla_kernels.hpp"

#include <fmt/format.h>

namespace mf {

std::string mla_decode_unsupported(const MlaDecodeDesc& d, const MlaDecodeConfig& c, int sm) {
    if (d.dtype != CudaDtype::bf16) return "only a bf16 cache is implemented";
    if (d.heads < 1 || d.heads > 4096) return "heads must be in 1..4096";
    if (d.latent_dim != 512) return "latent_dim must be 512 (8 warps x 64 value columns)";
    if (d.rope_dim < 0 || (d.latent_dim + d.rope_dim) % 64 != 0)
        return "latent_dim + rope_dim must be a multiple of 64";
    if (d.page_size < 1 || d.page_size > 65536) return "page_size must be in 1..65536";
    if (c.tile_tokens != 16 && c.tile_tokens != 32 && c.tile_tokens != 64)
        return "tile_tokens must be 16, 32 or 64";
    if (c.wgmma != 0 && c.wgmma != 1) return "wgmma must be 0 or 1";
    if (c.min_split_tiles < 1 || c.min_split_tiles > 64) return "min_split_tiles must be in 1..64";
    if (c.partial_bf16 != 0 && c.partial_bf16 != 1) return "partial_bf16 must be 0 or 1";
    if (c.partial_bf16 && !c.wgmma) return "bf16 partials are implemented in the wgmma kernel only";
    if (c.pdl != 0 && c.pdl != 1) return "pdl must be 0 or 1";
    if (c.pdl && !c.wgmma) return "the programmatic combine launch is implemented for the wgmma kernel only";
    if (c.qk_split != 0 && c.qk_split != 1) return "qk_split must be 0 or 1";
    if (c.qk_split && (!c.wgmma || c.tile_tokens != 64))
        return "qk_split is implemented for the wgmma kernel with 64-token tiles";
    if (c.qk_chains != 1 && c.qk_chains != 2 && c.qk_chains != 4) return "qk_chains must be 1, 2 or 4";
    if (c.qk_chains != 1 && !c.wgmma) return "qk_chains applies to the wgmma kernel only";
    if ((d.latent_dim + d.rope_dim) / 16 % c.qk_chains != 0)
        return "(latent_dim + rope_dim) / 16 k-steps must divide among the qk_chains";
    if (c.profile != 0 && c.profile != 1) return "profile must be 0 or 1";
    if (c.profile && !c.wgmma) return "profile applies to the wgmma kernel only";
    if (c.tma < 0 || c.tma > 2) return "tma must be 0, 1 or 2";
    if (c.tma && !c.wgmma) return "TMA tile loads are implemented in the wgmma kernel only";
    if (c.tma && d.page_size % c.tile_tokens != 0)
        return "TMA tile loads need a page size that is a multiple of tile_tokens (one box per page)";
    if (c.tma == 2 && (d.heads + kMlaHeadsPerBlock - 1) / kMlaHeadsPerBlock % 2 != 0)
        return "TMA multicast pairs head blocks: needs an even number of 64-head blocks";
    if (c.decode_pdl != 0 && c.decode_pdl != 1) return "decode_pdl must be 0 or 1";
    if (c.decode_pdl && !c.wgmma) return "decode_pdl is implemented for the wgmma kernel only";
    if (c.combine_warp != 0 && c.combine_warp != 1) return "combine_warp must be 0 or 1";
    if (c.seesaw != 0 && c.seesaw != 1) return "seesaw must be 0 or 1";
    if (c.seesaw && (!c.wgmma || c.tma != 1 || c.tile_tokens != 64 || c.stages != 2 || c.cluster != 1 ||
                     c.qk_split != 0 || c.qk_chains != 1))
        return "seesaw needs the wgmma kernel with tma 1, 64-token tiles, 2 stages, cluster 1, qk_split 0 and "
               "qk_chains 1";
    if (c.fused_combine < 0 || c.fused_combine > 3) return "fused_combine must be 0, 1, 2 or 3";
    if (c.prologue < 0 || c.prologue > 2) return "prologue must be 0, 1 or 2";
    if (c.bulk_store != 0 && c.bulk_store != 1) return "bulk_store must be 0 or 1";
    if (c.l2_prefetch < 0 || c.l2_prefetch > 4) return "l2_prefetch must be in 0..4";
    if (c.merge_helpers != 0 && c.merge_helpers != 1) return "merge_helpers must be 0 or 1";
    if (c.merge_helpers && !c.fused_combine) return "merge_helpers needs fused_combine";
    if (c.merge_loads != 0 && c.merge_loads != 1) return "merge_loads must be 0 or 1";
    if (c.merge_loads && !c.fused_combine) return "merge_loads needs fused_combine";
    if (c.head_block != 64 && c.head_block != 32) return "head_block must be 64 or 32";
    if (c.cluster_merge != 0 && c.cluster_merge != 8 && c.cluster_merge != 16) return "cluster_merge must be 0, 8 or 16";
    // the default kernel's own options (mla_decode_wgmma.cuh's epilogue and prologue)
    const bool default_kernel = c.wgmma && c.tma == 1 && c.cluster == 1 && !c.seesaw && !c.producer_consumer;
    const char* own_option = nullptr;  // the one the message names: head_block 32, else cluster_merge, else the rest
    if (c.fused_combine || c.prologue || c.bulk_store || c.l2_prefetch)
        own_option = "fused_combine, prologue, bulk_store and l2_prefetch";
    if (c.cluster_merge) own_option = "cluster_merge";
    if (c.head_block == 32) own_option = "head_block 32";
    if (own_option && !default_kernel)
        return fmt::format("{} needs the wgmma kernel with tma 1, cluster 1, no seesaw and no producer_consumer",
                           own_option);
    if (c.cluster_merge && (c.pdl || c.decode_pdl))
        return "cluster_merge merges inside the decode (no combine launch to be pdl's dependent) and is untested "
               "with decode_pdl's wait at its start (early_tiles is its dependent launch): no pdl or decode_pdl";
    if (c.cluster_merge && !c.partial_bf16)
        return "cluster_merge stages and exchanges its rows in bf16: needs partial_bf16 1";
    if (c.fused_combine && (c.pdl || c.decode_pdl))
        return "fused_combine merges inside the decode (no combine launch to be pdl's dependent) and is untested "
               "with decode_pdl's wait at its start (early_tiles is its dependent launch): no pdl or decode_pdl";
    if (c.seesaw && d.rope_dim != 64)
        return "seesaw keeps P in the tile's 64 rope columns: rope_dim must be 64";
    if (c.producer_consumer < 0 || c.producer_consumer > 11) return "producer_consumer must be 0 .. 11";
    if (c.producer_consumer && (!c.wgmma || (c.tma != 1 && !(c.tma == 2 && c.producer_consumer >= 4)) ||
                                c.tile_tokens != 64 ||
                                c.stages != (c.producer_consumer == 1 ? 3 : 2) || c.cluster != 1 ||
                                c.qk_split != 0 || c.qk_chains != 1 || c.seesaw != 0))
        return "producer_consumer needs the wgmma kernel with tma 1 (4 .. 11: or 2), 64-token tiles, 3 stages (1) or "
               "2 (2 .. 11), "
               "cluster 1, qk_split 0, qk_chains 1 and seesaw 0";
    if (c.producer_consumer && d.rope_dim != 64)
        return "producer_consumer keeps P in the tile's 64 rope columns: rope_dim must be 64";
    if (c.softmax_fast < 0 || c.softmax_fast > 3) return "softmax_fast must be 0 .. 3";
    if (c.softmax_fast && c.producer_consumer < 2) return "softmax_fast needs producer_consumer 2 or more";
    if (c.producer_consumer >= 8 && c.softmax_fast < 2)
        return "producer_consumer 8 .. 11 take P from the registers of softmax_fast 2 or 3";
    // Combinations no candidate list holds, so never compiled or run on a GPU: refused rather than trusted.
    if (c.softmax_fast >= 2 && c.producer_consumer < 7)
        return "softmax_fast 2 and 3 are built for producer_consumer 7 .. 11 only";
    if (c.producer_consumer >= 8 && c.tma == 2) return "producer_consumer 8 .. 11 take tma 1 only (no multicast)";
    if (c.tile_claim != 0 && c.tile_claim != 1) return "tile_claim must be 0 or 1";
    if (c.tile_claim && (!default_kernel || !c.prologue || (c.fused_combine != 1 && c.fused_combine != 2) ||
                         c.cluster_merge || c.l2_prefetch))
        return "tile_claim needs the wgmma kernel with tma 1, cluster 1, prologue 1 or 2, fused_combine 1 or 2 (its "
               "grid barrier orders the counters' reset), no cluster_merge, no l2_prefetch, no seesaw and no "
               "producer_consumer";
    if (c.tile_box_wait < 0 || c.tile_box_wait > 2) return "tile_box_wait must be 0, 1 or 2";
    if (c.tile_box_wait && (!default_kernel || !c.prologue || c.qk_split || c.tile_claim || c.l2_prefetch))
        return "tile_box_wait needs the wgmma kernel with tma 1, cluster 1, prologue 1 or 2, no qk_split, tile_claim "
               "or l2_prefetch, no seesaw and no producer_consumer";
    if (c.pv_overlap < 0 || c.pv_overlap > 2) return "pv_overlap must be 0, 1 or 2";
    if (c.pv_overlap && (!c.tile_box_wait || c.tile_tokens != 64 || c.stages != 2 || c.qk_chains != 1 ||
                         d.rope_dim != 64))
        return "pv_overlap needs tile_box_wait (and so the wgmma kernel with tma 1, cluster 1, prologue), 64-token "
               "tiles, 2 stages, qk_chains 1 and rope_dim 64 (P takes the place of the tile's rope block)";
    if (c.q_own_rows != 0 && c.q_own_rows != 1) return "q_own_rows must be 0 or 1";
    if (c.q_own_rows && (c.head_block != 32 || !c.prologue))
        return "q_own_rows needs head_block 32 and the prologue (Q by TMA)";
    if (c.merge_early != 0 && c.merge_early != 1) return "merge_early must be 0 or 1";
    if (c.merge_early && !c.fused_combine) return "merge_early needs fused_combine";
    if (c.epilogue_stmatrix != 0 && c.epilogue_stmatrix != 1) return "epilogue_stmatrix must be 0 or 1";
    if (c.epilogue_stmatrix && (!default_kernel || !c.partial_bf16))
        return "epilogue_stmatrix needs the wgmma kernel with tma 1, cluster 1, bf16 partials (partial_bf16 1), no "
               "seesaw and no producer_consumer";
    if (c.balanced_splits < 0 || c.balanced_splits > 3) return "balanced_splits must be 0 .. 3";
    if (c.balanced_splits == 3 && !c.partial_bf16)
        return "balanced_splits 3 stages its rows in bf16 (the Q buffer only): needs partial_bf16 1";
    if (c.balanced_splits && (c.producer_consumer < 4 || c.tma != 1 || c.pdl || c.decode_pdl))
        return "balanced_splits needs producer_consumer 4 .. 11 with tma 1, no pdl and no decode_pdl";
    if (c.early_tiles < 0 || c.early_tiles > 2) return "early_tiles must be 0, 1 or 2";
    if (c.early_tiles && (!default_kernel || c.prologue != 1 || c.fused_combine == 3 || c.pdl || c.decode_pdl ||
                          c.tile_claim || c.merge_helpers))
        return "early_tiles needs the wgmma kernel with tma 1, cluster 1, prologue 1, fused_combine 0 .. 2, no pdl, "
               "decode_pdl, tile_claim or merge_helpers, no seesaw and no producer_consumer";
    if (c.stage_box_wait < 0 || c.stage_box_wait > 2) return "stage_box_wait must be 0, 1 or 2";
    if (c.stage_box_wait == 2 && c.producer_consumer != 7)
        return "stage_box_wait 2 splits warpgroup 0's P V with P from shared memory: producer_consumer 7 only";
    if (c.stage_box_wait && (c.producer_consumer < 7 || c.producer_consumer > 8 || c.softmax_fast < 2 ||
                             c.tma != 1 || c.balanced_splits))
        return "stage_box_wait needs producer_consumer 7 or 8 with softmax_fast 2 or 3, tma 1 and no balanced_splits";
    if (c.wgmma) {
        if (sm != 90) return "the wgmma kernel needs sm_90 (compiled for sm_90a)";
        if (c.tile_tokens == 16) return "the wgmma kernel takes tiles of 32 or 64 tokens";
        if (c.stages < 2 || c.stages > 4) return "the wgmma kernel takes 2 to 4 stages";
        if (c.cluster != 1 && (c.cluster != 2 || !c.tma))
            return "the wgmma kernel pairs splits (cluster 2, sharing Q by TMA multicast: needs tma 1 or 2) or "
                   "runs without a cluster (cluster 1)";
    } else if (c.stages != 1 && c.stages != 2) {
        return "stages must be 1 or 2";
    }
    if (sm < 80) return "needs sm_80 or newer (bf16 mma.sync, cp.async)";
    if (c.cluster != 1 && c.cluster != 2 && c.cluster != 4 && c.cluster != 8)
        return "cluster must be 1, 2, 4 or 8";
    if (c.cluster > 1 && sm < 90) return "thread-block clusters need sm_90";
    const unsigned dim = d.latent_dim + d.rope_dim;
    if (c.cluster > 1 && unsigned(kMlaHeadsPerBlock * (d.latent_dim + 8) * 4) >
                             kMlaHeadsPerBlock * dim * 2 + unsigned(c.stages * c.tile_tokens) * dim * 2)
        return "the cluster merge stages the partial output over the Q/K buffers: needs tile 64, or tile 32 "
               "with 2 stages";
    if (mla_decode_smem_bytes(d, c) > static_cast<unsigned>(cuda_max_smem_optin(sm)))
        return fmt::format("needs {} bytes of shared memory, sm_{} allows {}", mla_decode_smem_bytes(d, c),
                           sm, cuda_max_smem_optin(sm));
    return {};
}

}  // namespace mf
