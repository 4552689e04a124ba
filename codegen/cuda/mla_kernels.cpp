#include "codegen/cuda/mla_kernels.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>

namespace mf {

std::string mla_decode_name(const MlaDecodeDesc& d, const MlaDecodeConfig& c) {
    return "mla_decode_" + fields_name(d) + "__" + fields_name(c);
}

unsigned mla_decode_smem_bytes(const MlaDecodeDesc& d, const MlaDecodeConfig& c) {
    const unsigned dim = d.latent_dim + d.rope_dim;
    if (c.producer_consumer == 1)  // mirrors MlaPcSmem (kernels/mla_decode_pc.cuh): 3 K stages, Q's rope block
        return 1024 + 3 * (dim / 64 * 64 * 128) + 64 * 128 + 7 * 64 * 4 + 96;
    if (c.producer_consumer >= 4)  // mirrors MlaPvLateSmem (kernels/mla_decode_pvlate.cuh): 4 more mbarriers
        return 1024 + 3 * (dim / 64 * 64 * 128) + 3 * 64 * 4 + 112 +
               (c.stage_box_wait ? 2 * (dim / 64) * 8 : 0) +  // (and a box barrier per box of each stage,
               (c.stage_box_wait == 2 ? 16 : 0);                // 2: and empty a [2])
    if (c.producer_consumer >= 2)  // mirrors MlaPvFirstSmem (kernels/mla_decode_pvfirst.cuh): Q, 2 K stages
        return 1024 + 3 * (dim / 64 * 64 * 128) + 3 * 64 * 4 + 80;
    if (c.seesaw) {  // mirrors MlaSeesawSmem in kernels/mla_decode_seesaw.cuh: no P buffer (P sits in the rope block)
        const unsigned q = dim / 64 * 64 * 128, k = dim / 64 * 64 * 128;
        return 1024 + q + 2 * k + 6 * 64 * 4 + 256;
    }
    if (c.wgmma) {  // mirrors MlaWgmmaSmem in kernels/mla_decode_wgmma.cuh
        const unsigned q = dim / 64 * 64 * 128, k = dim / 64 * c.tile_tokens * 128;
        // (tile_box_wait: a barrier per box of each stage after the mbarrier block; 2: and of Q)
        const unsigned boxes = c.tile_box_wait ? (c.stages + (c.tile_box_wait == 2)) * dim / 64 * 8 : 0;
        return 1024 + q + c.stages * k + 64 * 128 + 5 * 64 * 4 + 128 + boxes;
    }
    // Mirrors MlaDecodeSmem in kernels/mla_decode.cuh.
    const unsigned q = kMlaHeadsPerBlock * dim * 2, k = c.tile_tokens * dim * 2;
    const unsigned p = kMlaHeadsPerBlock * (c.tile_tokens + 8) * 2, rows = 5 * kMlaHeadsPerBlock * 4;
    return q + c.stages * k + p + rows;
}

namespace {

// The wgmma kernel's trailing template arguments FC, PRO, BS, L2P, MCO, HPB, CM, CLAIM, ESM, MEL, BW, OVL, QOR, ET:
// none when all are at their defaults, else up to the last one that is not (at least FC and PRO), so that older
// configs keep their exact sources.
std::string wgmma_tail_args(const MlaDecodeConfig& c) {
    auto flag = [](int v) { return v == 0 ? std::string("false") : v == 1 ? std::string("true") : std::to_string(v); };
    const std::string args[14] = {flag(c.fused_combine),           flag(c.prologue),    flag(c.bulk_store),
                                  std::to_string(c.l2_prefetch),   flag(c.merge_loads), std::to_string(c.head_block),
                                  std::to_string(c.cluster_merge), std::to_string(c.tile_claim),
                                  flag(c.epilogue_stmatrix),       flag(c.merge_early), flag(c.tile_box_wait),
                                  flag(c.pv_overlap),              flag(c.q_own_rows),  flag(c.early_tiles)};
    const bool set[14] = {c.fused_combine != 0, c.prologue != 0,    c.bulk_store != 0,
                          c.l2_prefetch != 0,   c.merge_loads != 0, c.head_block != kMlaHeadsPerBlock,
                          c.cluster_merge != 0, c.tile_claim != 0,  c.epilogue_stmatrix != 0,
                          c.merge_early != 0,   c.tile_box_wait != 0, c.pv_overlap != 0,
                          c.q_own_rows != 0,    c.early_tiles != 0};
    int n = 0;
    for (int i = 0; i < 14; ++i)
        if (set[i]) n = i + 1;
    if (n > 0) n = std::max(n, 2);
    std::string s;
    for (int i = 0; i < n; ++i) s += ", " + args[i];
    return s;
}

// The template arguments of mla_decode_pvlate<> after PROF (producer_consumer 4 .. 11): LATE, FAST[, MC[, SYNC[,
// PRS[, QR[, PVE]]]]], as short as the config allows (the session-6 kernels' instantiations stay as they were).
std::string pvlate_template_tail(const MlaDecodeConfig& c) {
    const int late = c.producer_consumer == 4 ? 2 : c.producer_consumer == 5 ? 1 : c.producer_consumer == 6 ? 3 : 4;
    if (c.balanced_splits) {  // mla_decode_balanced<>: every argument up to BAL
        const int pc = c.producer_consumer;
        return fmt::format(", {}, {}, false, {}, {}, {}, {}, {}", late, c.softmax_fast ? "true" : "false",
                           c.softmax_fast >= 2 ? (c.softmax_fast == 3 ? 8 : 0) : -1, pc >= 8 ? "true" : "false",
                           pc == 9 || pc == 10 ? 8 : 0, pc >= 10 ? "true" : "false", c.balanced_splits);
    }
    if (c.stage_box_wait)  // every argument up to BOX (PRS: producer_consumer 8)
        return fmt::format(", {}, true, false, {}, {}, 0, false, false, mf::MlaPvLateGridEpilogue, {}", late,
                           c.softmax_fast == 3 ? 8 : 0, c.producer_consumer == 8 ? "true" : "false",
                           c.stage_box_wait);
    std::string s = fmt::format(", {}, {}", late, c.softmax_fast ? "true" : "false");
    if (c.softmax_fast < 2) return c.tma == 2 ? s + ", true" : s;
    s += fmt::format(", {}, {}", c.tma == 2, c.softmax_fast == 3 ? 8 : 0);
    switch (c.producer_consumer) {
        case 8: return s + ", true";
        case 9: return s + ", true, 8";
        case 10: return s + ", true, 8, true";
        case 11: return s + ", true, 0, true";
        default: return s;
    }
}

}  // namespace

CudaKernelSource mla_decode_source(const MlaDecodeDesc& d, const MlaDecodeConfig& c, int sm) {
    if (std::string why = mla_decode_unsupported(d, c, sm); !why.empty())
        throw std::invalid_argument("MLA decode kernel " + mla_decode_name(d, c) + ": " + why);
    CudaKernelSource s;
    s.name = mla_decode_name(d, c);
    s.block_threads = kMlaDecodeThreads;
    s.dynamic_smem_bytes = mla_decode_smem_bytes(d, c);
    if (c.producer_consumer) {
        // 1: producer + 2 consumer warpgroups (MlaPcSmem::threads); 2: the 2-warpgroup "P V first" schedule
        s.block_threads = c.producer_consumer == 1 ? 384 : kMlaDecodeThreads;
        s.source = fmt::format(
            "#include \"{11}.cuh\"\n"
            "// {0}\n"
            "extern \"C\" __global__ void {13}__launch_bounds__({1}, 1) {2}(const __grid_constant__ "
            "mf::MlaDecodeParams p) {{\n"
            "    mf::{11}<{3}, {4}, {5}, {6}, {7}, {8}, {9}, {10}{12}>(p);\n"
            "}}\n",
            fields_print(d) + " " + fields_print(c), s.block_threads, s.name, d.heads, d.latent_dim, d.rope_dim,
            d.page_size, c.partial_bf16 ? "mf::bf16" : "float", c.pdl ? "true" : "false",
            c.decode_pdl ? "true" : "false", c.profile ? "true" : "false",
            c.producer_consumer == 1   ? "mla_decode_pc"
            : c.balanced_splits        ? "mla_decode_balanced"
            : c.producer_consumer >= 4 ? "mla_decode_pvlate"
                                       : "mla_decode_pvfirst",
            c.producer_consumer >= 4 ? pvlate_template_tail(c)
            : c.softmax_fast ? (c.producer_consumer == 3 ? ", true, true" : ", false, true")
                             : (c.producer_consumer == 3 ? ", true" : ""),
            c.tma == 2 ? "__cluster_dims__(1, 2, 1) " : "");
        return s;
    }
    if (c.seesaw) {
        s.source = fmt::format(
            "#include \"mla_decode_seesaw.cuh\"\n"
            "// {0}\n"
            "extern \"C\" __global__ void __launch_bounds__({1}, 1) {2}(const __grid_constant__ "
            "mf::MlaDecodeParams p) {{\n"
            "    mf::mla_decode_seesaw<{3}, {4}, {5}, {6}, {7}, {8}, {9}, {10}>(p);\n"
            "}}\n",
            fields_print(d) + " " + fields_print(c), kMlaDecodeThreads, s.name, d.heads, d.latent_dim,
            d.rope_dim, d.page_size, c.partial_bf16 ? "mf::bf16" : "float", c.pdl ? "true" : "false",
            c.decode_pdl ? "true" : "false", c.profile ? "true" : "false");
        return s;
    }
    if (c.wgmma) {
        s.source = fmt::format(
            "#include \"mla_decode_wgmma.cuh\"\n"
            "// {0}\n"
            "extern \"C\" __global__ void {14}__launch_bounds__({1}, 1) {2}(const {15}mf::MlaDecodeParams p) "
            "{{\n"
            "    mf::mla_decode_wgmma<{3}, {4}, {5}, {6}, {7}, {8}, {9}, {10}, {11}, {12}, {16}, {18}, {17}, {13}{19}>(p);"
            "\n"
            "}}\n",
            fields_print(d) + " " + fields_print(c), kMlaDecodeThreads, s.name, d.heads, d.latent_dim,
            d.rope_dim, d.page_size, c.tile_tokens, c.stages, c.partial_bf16 ? "mf::bf16" : "float",
            c.pdl ? "true" : "false", c.qk_split ? "true" : "false", c.qk_chains,
            c.profile ? "true" : "false",
            c.tma == 2 || c.cluster > 1
                ? fmt::format("__cluster_dims__({}, {}, 1) ", c.cluster, c.tma == 2 ? 2 : 1)
                : std::string(),
            // the tensor maps must stay in parameter space: TMA reads them by address
            c.tma ? "__grid_constant__ " : "", c.tma, c.decode_pdl ? "true" : "false", c.cluster,
            // fused combine, early prologue, ... (spelled only when set: the other kernels' sources stay as they were)
            wgmma_tail_args(c));
        return s;
    }
    s.source = fmt::format(
        "#include \"mla_decode.cuh\"\n"
        "// {0}\n"
        "extern \"C\" __global__ void {9}__launch_bounds__({1}, 1) {2}(const mf::MlaDecodeParams p) {{\n"
        "    mf::mla_decode<{3}, {4}, {5}, {6}, {7}, {8}, {10}>(p);\n"
        "}}\n",
        fields_print(d) + " " + fields_print(c), kMlaDecodeThreads, s.name, d.heads, d.latent_dim, d.rope_dim,
        d.page_size, c.tile_tokens, c.stages,
        c.cluster > 1 ? fmt::format("__cluster_dims__({}, 1, 1) ", c.cluster) : "", c.cluster);
    return s;
}

void mla_decode_bind_cache(const MlaDecodeDesc& d, const MlaDecodeConfig& c, MlaDecodeParams& p) {
    if (!c.tma) return;
    const CudaDriverApi& api = cuda_driver();
    if (!api.tensor_map_encode_tiled)
        throw std::runtime_error(
            "MLA decode: the CUDA driver lacks cuTensorMapEncodeTiled (TMA configs need driver 12.0+); pick a "
            "config with tma 0");
    const uint64_t dim = d.latent_dim + d.rope_dim;
    // [rows][dim] bf16; rows: any page id the table may name (the coordinates are 32-bit signed)
    const uint64_t global_dim[2] = {dim, uint64_t(1) << 31};
    const uint64_t global_stride[1] = {dim * 2};
    const uint32_t box[2] = {64, static_cast<uint32_t>(c.tile_tokens)}, elem_stride[2] = {1, 1};
    cu_check(api.tensor_map_encode_tiled(&p.kv_map, kCuTensorMapBf16, 2, const_cast<unsigned short*>(p.kv_cache),
                                         global_dim, global_stride, box, elem_stride, kCuTensorMapInterleaveNone,
                                         kCuTensorMapSwizzle128B, kCuTensorMapL2Promotion256B,
                                         kCuTensorMapOobFillNone),
             "cuTensorMapEncodeTiled (MLA cache)");
    // q [batch][heads][dim]: boxes of 64 columns x 64 heads (padded heads read as zeros)
    if (c.cluster == 2 || c.prologue) {
        const uint64_t q_dim[3] = {dim, uint64_t(d.heads), uint64_t(std::max(1, p.batch))};
        const uint64_t q_stride[2] = {dim * 2, dim * 2 * d.heads};
        // (q_own_rows: head_block rows per box, the CTA's own heads)
        const uint32_t q_box[3] = {64, c.q_own_rows ? uint32_t(c.head_block) : 64u, 1}, q_elem[3] = {1, 1, 1};
        cu_check(api.tensor_map_encode_tiled(&p.q_map, kCuTensorMapBf16, 3, const_cast<unsigned short*>(p.q), q_dim,
                                             q_stride, q_box, q_elem, kCuTensorMapInterleaveNone,
                                             kCuTensorMapSwizzle128B, kCuTensorMapL2Promotion256B,
                                             kCuTensorMapOobFillNone),
                 "cuTensorMapEncodeTiled (MLA q)");
    }
}

int mla_decode_cluster_splits(const MlaDecodeDesc& d, const MlaDecodeConfig& c, int batch, int max_seq_len,
                              int sm_budget, int max_clusters) {
    if (!c.cluster_merge) return 0;
    const int64_t blocks = int64_t(std::max(1, batch)) * ((d.heads + c.head_block - 1) / c.head_block);
    if (max_clusters >= 0 && blocks > max_clusters) return 0;
    const int64_t tiles = std::max<int64_t>(1, (int64_t(std::max(0, max_seq_len)) + c.tile_tokens - 1) / c.tile_tokens);
    return blocks * c.cluster_merge <= sm_budget && tiles <= int64_t(c.cluster_merge) * kMlaClusterMergeMaxTiles
               ? c.cluster_merge
               : 0;
}

bool mla_decode_cluster_merges(const MlaDecodeConfig& c, Dim3 grid, int max_clusters) {
    return c.cluster_merge > 1 && grid.x == unsigned(c.cluster_merge) && int64_t(grid.y) * grid.z <= max_clusters;
}

int mla_decode_num_splits(const MlaDecodeDesc& d, const MlaDecodeConfig& c, int batch, int max_seq_len,
                          int sms, int max_clusters) {
    if (const int cm = mla_decode_cluster_splits(d, c, batch, max_seq_len, sms, max_clusters)) return cm;
    if (c.balanced_splits) return std::clamp(sms, 1, kMlaBalancedMaxCtas);  // one CTA per SM, whatever the shape
    const int blocks = std::max(1, batch) * ((d.heads + c.head_block - 1) / c.head_block);
    const int tiles = std::max(1, (max_seq_len + c.tile_tokens - 1) / c.tile_tokens);
    // One CTA per SM (the kernel uses most of the shared memory): never spill into a second, mostly empty
    // wave.
    const int splits = std::min(std::max(1, sms / blocks), std::max(1, tiles / c.min_split_tiles));
    return std::max(c.cluster, splits / c.cluster * c.cluster);
}

int mla_decode_partials(const MlaDecodeConfig& c, int num_splits) {
    return num_splits / c.cluster;
}

bool mla_decode_writes_output(const MlaDecodeConfig& c, int num_splits) {
    return num_splits == 1 && c.cluster == 1 && !c.balanced_splits;
}

bool mla_decode_fuses_combine(const MlaDecodeConfig& c, int num_splits, int grid_ctas, int max_resident_ctas) {
    if (c.balanced_splits) return num_splits >= 1;  // (needs no co-residency; the grid caps the CTAs)
    return c.fused_combine && !mla_decode_writes_output(c, num_splits) && num_splits <= kMlaFusedCombineMaxSplits &&
           grid_ctas <= max_resident_ctas && grid_ctas <= kMlaFusedMaxCtas;
}

Dim3 mla_decode_fused_grid(const MlaDecodeDesc& d, const MlaDecodeConfig& c, int batch, int num_splits,
                           int max_resident_ctas) {
    Dim3 g = mla_decode_grid(d, c, batch, num_splits);
    if (c.merge_helpers)
        g.x = std::max(g.x, static_cast<unsigned>(std::max(0, max_resident_ctas)) / (g.y * g.z));
    return g;
}

MlaDecodeLaunch mla_decode_launch_kind(const MlaDecodeDesc& d, const MlaDecodeConfig& c, int batch, int num_splits,
                                       int max_resident_ctas, int max_clusters) {
    MlaDecodeLaunch l;
    l.grid = mla_decode_grid(d, c, batch, num_splits);
    l.writes_output = mla_decode_writes_output(c, num_splits);
    if (mla_decode_cluster_merges(c, l.grid, max_clusters)) {  // the splits merge in each cluster
        l.options.cluster_x = unsigned(c.cluster_merge);
        l.writes_output = true;
    } else if (mla_decode_fuses_combine(c, num_splits, int(l.grid.x * l.grid.y * l.grid.z), max_resident_ctas)) {
        l.writes_output = l.grid_sync = true;
        if (!c.balanced_splits) {  // (balanced: no CTA waits for another, a plain launch)
            l.grid = mla_decode_fused_grid(d, c, batch, num_splits, max_resident_ctas);
            l.options.cooperative = true;
        }
    }
    // (early_tiles: also with the cluster or the cooperative attribute)
    l.options.dependent = c.decode_pdl != 0 || c.early_tiles != 0;
    return l;
}

Dim3 mla_decode_grid(const MlaDecodeDesc& d, const MlaDecodeConfig& c, int batch, int num_splits) {
    if (c.balanced_splits)  // (at least one CTA per head block, at most kMlaBalancedMaxCtas; heads <= 4096)
        return Dim3{static_cast<unsigned>(
                        std::clamp(num_splits, (d.heads + c.head_block - 1) / c.head_block, kMlaBalancedMaxCtas)),
                    1, 1};
    return Dim3{static_cast<unsigned>(num_splits), static_cast<unsigned>((d.heads + c.head_block - 1) / c.head_block),
                static_cast<unsigned>(batch)};
}

size_t mla_decode_o_part_bytes(const MlaDecodeDesc& d, const MlaDecodeConfig& c, int batch, int partials) {
    if (c.balanced_splits)  // two slots of 64 rows per CTA of mla_decode_grid, then their lse (mla_decode_balanced.cuh)
        return size_t(2) * mla_decode_grid(d, c, batch, partials).x * kMlaHeadsPerBlock *
               (d.latent_dim * (c.partial_bf16 ? 2 : 4) + 4);
    return size_t(batch) * d.heads * partials * d.latent_dim * (c.partial_bf16 ? 2 : 4);
}

size_t mla_decode_lse_part_bytes(const MlaDecodeDesc& d, int batch, int partials) {
    return size_t(batch) * d.heads * partials * sizeof(float);
}

std::string mla_combine_name(const MlaDecodeDesc& d, bool bf16_partials, bool dependent) {
    return fmt::format("mla_combine_h{}_lat{}{}{}", d.heads, d.latent_dim, bf16_partials ? "_pbf16" : "",
                       dependent ? "_pdl" : "");
}

CudaKernelSource mla_combine_source(const MlaDecodeDesc& d, const MlaDecodeConfig& c) {
    return mla_combine_source(d, c.partial_bf16 != 0, c.pdl != 0);
}

CudaKernelSource mla_combine_source(const MlaDecodeDesc& d, bool bf16_partials, bool dependent) {
    if (d.latent_dim % 128 != 0 || d.latent_dim / 4 * kMlaCombineSplitGroups > 1024)
        throw std::invalid_argument("MLA combine: latent_dim must be a multiple of 128, at most 512");
    CudaKernelSource s;
    s.name = mla_combine_name(d, bf16_partials, dependent);
    s.block_threads = d.latent_dim / 4 * kMlaCombineSplitGroups;
    s.source = fmt::format(
        "#include \"mla_decode.cuh\"\n"
        "extern \"C\" __global__ void __launch_bounds__({0}) {1}(const mf::MlaCombineParams p) {{\n"
        "    mf::mla_combine<{2}, {3}, {4}, {5}>(p);\n"
        "}}\n",
        s.block_threads, s.name, d.heads, d.latent_dim, bf16_partials ? "mf::bf16" : "float",
        dependent ? "true" : "false");
    return s;
}

Dim3 mla_combine_grid(const MlaDecodeDesc& d, int batch) {
    return Dim3{static_cast<unsigned>(d.heads), static_cast<unsigned>(batch), 1};
}

std::string mla_combine_warp_name(const MlaDecodeDesc& d, bool bf16_partials, bool dependent) {
    return fmt::format("mla_combine_warp_h{}_lat{}{}{}", d.heads, d.latent_dim, bf16_partials ? "_pbf16" : "",
                       dependent ? "_pdl" : "");
}

CudaKernelSource mla_combine_warp_source(const MlaDecodeDesc& d, bool bf16_partials, bool dependent) {
    if (d.latent_dim % 256 != 0)
        throw std::invalid_argument("MLA per-warp combine: latent_dim must be a multiple of 256");
    CudaKernelSource s;
    s.name = mla_combine_warp_name(d, bf16_partials, dependent);
    s.block_threads = 256;
    s.source = fmt::format(
        "#include \"mla_combine_warp.cuh\"\n"
        "extern \"C\" __global__ void __launch_bounds__(256) {0}(const mf::MlaCombineParams p) {{\n"
        "    mf::mla_combine_warp<{1}, {2}, {3}, {4}>(p);\n"
        "}}\n",
        s.name, d.heads, d.latent_dim, bf16_partials ? "mf::bf16" : "float", dependent ? "true" : "false");
    return s;
}

CudaKernelSource mla_combine_warp_source(const MlaDecodeDesc& d, const MlaDecodeConfig& c) {
    return mla_combine_warp_source(d, c.partial_bf16 != 0, c.pdl != 0);
}

Dim3 mla_combine_warp_grid(const MlaDecodeDesc& d, int batch) {
    return Dim3{static_cast<unsigned>((d.heads + 7) / 8), static_cast<unsigned>(batch), 1};
}

bool mla_combine_uses_warps(const MlaDecodeDesc& d, const MlaDecodeConfig& c, int batch, int partials) {
    return c.combine_warp != 0 && partials <= kMlaCombineWarpMaxSplits && batch * d.heads >= 256;
}

std::string kv_append_name(const MlaDecodeDesc& d) {
    return fmt::format("kv_append_d{}_pg{}", d.latent_dim + d.rope_dim, d.page_size);
}

CudaKernelSource kv_append_source(const MlaDecodeDesc& d) {
    if ((d.latent_dim + d.rope_dim) % 8 != 0)
        throw std::invalid_argument("kv_append: row width must be a multiple of 8");
    CudaKernelSource s;
    s.name = kv_append_name(d);
    s.block_threads = 128;
    s.source = fmt::format(
        "#include \"mla_decode.cuh\"\n"
        "extern \"C\" __global__ void __launch_bounds__(128) {0}(const mf::KvAppendParams p) {{\n"
        "    mf::kv_append<{1}, {2}>(p);\n"
        "}}\n",
        s.name, d.latent_dim + d.rope_dim, d.page_size);
    return s;
}

Dim3 kv_append_grid(int n_rows) {
    return Dim3{static_cast<unsigned>((n_rows + 3) / 4), 1, 1};
}

}  // namespace mf
