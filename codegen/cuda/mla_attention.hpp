// The MLA attention of one layer shape on the GPU, resolved once: the decode, combine and cache-append
// kernels of a (desc, config), compiled (or taken from the CUBIN cache) and loaded, plus the launch
// arithmetic. What the hybrid executor holds per model; every call below only launches (graph-capturable).
//
//   MlaAttention attn(desc, config, arch, cache_dir);            // needs a current CudaContext
//   const int splits = attn.num_splits(batch, max_ctx, sms);      // fixed per captured graph
//   DeviceBuffer ws(attn.workspace_bytes(batch, splits));
//   attn.append(new_rows, stream);                                // [c_kv | k_pe] of this step into the
//   pages attn.decode(q_abs, table, table_stride, seq_lens, batch, splits, ws, o_lat, stream);
#pragma once
#include <filesystem>
#include <memory>

#include "codegen/cuda/cuda_memory.hpp"
#include "codegen/cuda/mla_kernels.hpp"

namespace mf {

class MlaAttention {
  public:
    // Throws std::invalid_argument when (desc, config) is unsupported on `arch`, std::runtime_error when
    // NVRTC or the driver fails.
    MlaAttention(const MlaDecodeDesc& desc, const MlaDecodeConfig& config, const CudaArch& arch,
                 const std::filesystem::path& cache_dir);
    ~MlaAttention();
    MlaAttention(const MlaAttention&) = delete;
    MlaAttention& operator=(const MlaAttention&) = delete;

    const MlaDecodeDesc& desc() const { return desc_; }
    const MlaDecodeConfig& config() const { return config_; }
    // Config cluster_merge: whether the device holds clusters of that many decode CTAs (else those launches go
    // as without it).
    bool cluster_merge_available() const { return max_clusters_ > 0; }

    // (config cluster_merge: the clusters of a launch never outnumber those the device holds at once)
    int num_splits(int batch, int max_seq_len, int sms) const;
    // How decode() launches the decode kernel for (batch, num_splits) (mla_decode_launch_kind on this device).
    MlaDecodeLaunch decode_launch(int batch, int num_splits) const {
        return mla_decode_launch_kind(desc_, config_, batch, num_splits, max_resident_, max_clusters_);
    }
    size_t workspace_bytes(int batch, int num_splits) const;

    // Writes n rows of [latent | rope] bf16 (row stride src_stride, a multiple of 8) to token positions[i] of
    // the sequence whose page table is block_table + i * block_table_stride.
    void append(const unsigned short* src, int src_stride, int n, const int* positions,
                const int* block_table, int block_table_stride, unsigned short* kv_cache,
                CuStream stream) const;

    // out[b][h][0:latent] (bf16) = softmax_t(scale * q[b][h] . cache[t]) . cache[t][0:latent], t <
    // seq_lens[b]. `workspace` holds at least workspace_bytes(batch, num_splits). With config fused_combine
    // and a grid that fits the device at once, one cooperative launch that merges the splits itself (no combine
    // launch); such launches of one MlaAttention share a counter and must not overlap in time (one stream). With
    // config cluster_merge C and num_splits == C (num_splits() picks it for short contexts), one launch of
    // clusters of C CTAs that merge the splits in distributed shared memory, where the device holds such clusters.
    // With config early_tiles the decode is a programmatic dependent of the previous kernel in `stream`, and reads
    // before that kernel ends: seq_lens, block_table, every cache row but each row's token len - 1 (all of them when
    // block_table_stride is 0 and batch > 1: rows sharing a table), and with early_tiles 2 also q. So the previous
    // kernel must be append() of this step writing one token per row (or a kernel that writes none of these), and q,
    // seq_lens and block_table must be complete before it starts. Nothing checks this: early_tiles is for callers that
    // launch the decode right behind the append (GpuLayers, mla_decode_after_append_config).
    void decode(const unsigned short* q, const unsigned short* kv_cache, const int* block_table,
                int block_table_stride, const int* seq_lens, int batch, int num_splits, float scale,
                const DeviceBuffer& workspace, unsigned short* out, CuStream stream) const;

  private:
    MlaDecodeDesc desc_;
    MlaDecodeConfig config_;
    std::unique_ptr<CudaKernel> decode_, combine_, combine_warp_, append_;  // combine_warp_: config combine_warp
    DeviceBuffer grid_sync_;   // config fused_combine: the CTAs' meeting counter (zeroed once)
    int max_resident_ = 0;     // config fused_combine: decode CTAs a cooperative launch may have
    int max_clusters_ = 0;  // config cluster_merge: clusters of that many decode CTAs the device holds at once
};

}  // namespace mf
