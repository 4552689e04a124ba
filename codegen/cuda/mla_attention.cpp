#include "codegen/cuda/mla_attention.hpp"

#include <stdexcept>

#include "codegen/cuda/cuda_kernel_build.hpp"

namespace mf {

MlaAttention::MlaAttention(const MlaDecodeDesc& desc, const MlaDecodeConfig& config, const CudaArch& arch,
                           const std::filesystem::path& cache_dir)
    : desc_(desc), config_(config) {
    const int sm = arch.major * 10 + arch.minor;
    decode_ = build_cuda_kernel(mla_decode_source(desc, config, sm), arch, cache_dir);
    combine_ = build_cuda_kernel(mla_combine_source(desc, config), arch, cache_dir);
    if (config.combine_warp)
        combine_warp_ = build_cuda_kernel(mla_combine_warp_source(desc, config), arch, cache_dir);
    append_ = build_cuda_kernel(kv_append_source(desc), arch, cache_dir);
    if (config.fused_combine || config.balanced_splits) {
        grid_sync_ = DeviceBuffer(kMlaGridSyncBytes);
        grid_sync_.fill_bytes(0);
        max_resident_ = decode_->max_resident_ctas();
    }
    // (also allows the non-portable cluster size 16 for the decode kernel)
    if (config.cluster_merge) max_clusters_ = decode_->max_active_clusters(unsigned(config.cluster_merge));
}

MlaAttention::~MlaAttention() = default;

int MlaAttention::num_splits(int batch, int max_seq_len, int sms) const {
    return mla_decode_num_splits(desc_, config_, batch, max_seq_len, sms, max_clusters_);
}

size_t MlaAttention::workspace_bytes(int batch, int num_splits) const {
    const int partials = mla_decode_partials(config_, num_splits);
    // o_part, then lse_part at a 256-byte boundary
    const size_t o = (mla_decode_o_part_bytes(desc_, config_, batch, partials) + 255) / 256 * 256;
    return o + mla_decode_lse_part_bytes(desc_, batch, partials);
}

void MlaAttention::append(const unsigned short* src, int src_stride, int n, const int* positions,
                          const int* block_table, int block_table_stride, unsigned short* kv_cache,
                          CuStream stream) const {
    if (n <= 0) return;
    if (src_stride % 8 != 0 || src_stride < desc_.latent_dim + desc_.rope_dim)
        throw std::invalid_argument(
            "MlaAttention::append: src_stride must be a multiple of 8 and hold a whole row");
    append_->launch(kv_append_grid(n),
                    KvAppendParams{src, kv_cache, block_table, positions, block_table_stride, src_stride, n},
                    stream);
}

void MlaAttention::decode(const unsigned short* q, const unsigned short* kv_cache, const int* block_table,
                          int block_table_stride, const int* seq_lens, int batch, int num_splits, float scale,
                          const DeviceBuffer& workspace, unsigned short* out, CuStream stream) const {
    if (batch <= 0) return;
    if (num_splits < 1 || num_splits % config_.cluster != 0)
        throw std::invalid_argument(
            "MlaAttention::decode: num_splits must be a positive multiple of the cluster size");
    if (workspace.bytes() < workspace_bytes(batch, num_splits))
        throw std::invalid_argument(
            "MlaAttention::decode: workspace smaller than workspace_bytes(batch, num_splits)");
    const int partials = mla_decode_partials(config_, num_splits);
    float* o_part = workspace.as<float>();
    float* lse = reinterpret_cast<float*>(
        workspace.ptr() + (mla_decode_o_part_bytes(desc_, config_, batch, partials) + 255) / 256 * 256);
    const MlaDecodeLaunch launch = decode_launch(batch, num_splits);
    // one split per row, a fused or cluster merge: the decode kernel writes the output itself, no combine
    MlaDecodeParams p{q,     kv_cache,   block_table, seq_lens, o_part, lse, batch, block_table_stride,
                      num_splits, scale, launch.writes_output ? out : nullptr, nullptr, {}, {},
                      launch.grid_sync ? grid_sync_.as<unsigned>() : nullptr};
    mla_decode_bind_cache(desc_, config_, p);
    decode_->launch_with(launch.grid, launch.options, p, stream);
    if (launch.writes_output) return;
    const MlaCombineParams cp{o_part, lse, out, batch, partials};
    const bool warps = mla_combine_uses_warps(desc_, config_, batch, partials);
    const CudaKernel& combine = warps ? *combine_warp_ : *combine_;
    const Dim3 cgrid = warps ? mla_combine_warp_grid(desc_, batch) : mla_combine_grid(desc_, batch);
    if (config_.pdl)
        combine.launch_dependent(cgrid, cp, stream);
    else
        combine.launch(cgrid, cp, stream);
}

}  // namespace mf
