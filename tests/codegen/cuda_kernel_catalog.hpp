// Every CUDA kernel source moeforge builds, for the compile tests (one list, so a new family cannot be
// missed).
#pragma once
#include <vector>

#include "codegen/cuda/layer_kernels.hpp"
#include "codegen/cuda/mla_kernels.hpp"

namespace mf::test {

// The kernels of a DeepSeek-V3 layer plus ragged variants, for compute capability `sm` (major * 10 + minor).
inline std::vector<CudaKernelSource> cuda_kernel_catalog(int sm) {
    std::vector<CudaKernelSource> v;
    const MlaDecodeDesc v3;  // 128 heads, 512 + 64, page 64, bf16
    v.push_back(mla_decode_source(v3, mla_decode_default_config(v3, sm), sm));
    MlaDecodeDesc ragged;
    ragged.heads = 20;
    ragged.page_size = 48;
    v.push_back(mla_decode_source(ragged, MlaDecodeConfig{16, 1}, sm));
    if (sm >= 90) v.push_back(mla_decode_source(v3, MlaDecodeConfig{64, 2, 8}, sm));
    if (sm == 90) {  // the wgmma kernel (sm_90a): both tile sizes, the deepest ring, a padded head block
        v.push_back(mla_decode_source(v3, MlaDecodeConfig{64, 2, 1, 1}, sm));
        v.push_back(mla_decode_source(v3, MlaDecodeConfig{32, 4, 1, 1}, sm));
        v.push_back(mla_decode_source(ragged, MlaDecodeConfig{32, 2, 1, 1}, sm));
        v.push_back(mla_decode_source(v3, MlaDecodeConfig{64, 2, 1, 1, 4, 1, 1}, sm));
        v.push_back(mla_decode_source(ragged, MlaDecodeConfig{64, 2, 1, 1, 1, 0, 0, 1}, sm));
        v.push_back(mla_decode_source(v3, MlaDecodeConfig{64, 2, 1, 1, 1, 0, 1, 1, 4}, sm));
        v.push_back(mla_decode_source(v3, MlaDecodeConfig{64, 2, 1, 1, 1, 0, 0, 0, 2}, sm));
        v.push_back(mla_decode_source(v3, MlaDecodeConfig{64, 2, 1, 1, 1, 0, 0, 1, 4, 1}, sm));  // profile
        for (int tma : {1, 2}) {  // TMA tile loads (2: multicast over a cluster), with both PDL launches
            MlaDecodeConfig c{64, 2, 1, 1, 1, 1, 1};
            c.tma = tma;
            c.decode_pdl = 1;
            v.push_back(mla_decode_source(v3, c, sm));
        }
        MlaDecodeConfig c{32, 4, 1, 1, 1, 1};
        c.tma = 2;
        c.profile = 1;
        v.push_back(mla_decode_source(v3, c, sm));
        c = MlaDecodeConfig{64, 2, 2, 1, 1, 1};  // split pairs: fp32 and bf16 partials, with and without multicast K
        c.tma = 2;
        v.push_back(mla_decode_source(v3, c, sm));
        c = MlaDecodeConfig{64, 2, 2, 1};
        c.tma = 1;
        MlaDecodeDesc ragged64 = ragged;  // TMA: a page of whole tiles
        ragged64.page_size = 64;
        v.push_back(mla_decode_source(ragged64, c, sm));
        c = MlaDecodeConfig{64, 2, 2, 1, 1, 1, 1, 1};  // qk_split with TMA, pairs, both PDL launches
        c.tma = 2;
        c.decode_pdl = 1;
        v.push_back(mla_decode_source(v3, c, sm));
        c = MlaDecodeConfig{64, 2, 1, 1, 1, 1};  // seesaw: bf16 partials; fp32, profiled, both PDL, padded heads
        c.tma = 1;
        c.seesaw = 1;
        v.push_back(mla_decode_source(v3, c, sm));
        c.partial_bf16 = 0;
        c.profile = 1;
        c.pdl = 1;
        c.decode_pdl = 1;
        v.push_back(mla_decode_source(ragged64, c, sm));
        for (int pc : {1, 2, 4}) {  // producer/consumer, P V first, P V late (fast softmax): bf16 partials; fp32,
            c = MlaDecodeConfig{64, pc == 1 ? 3 : 2, 1, 1, 1, 1};  // profiled, both PDL, 20 heads
            c.tma = 1;
            c.producer_consumer = pc;
            c.softmax_fast = pc == 4;
            v.push_back(mla_decode_source(v3, c, sm));
            c.partial_bf16 = 0;
            c.profile = 1;
            c.pdl = 1;
            c.decode_pdl = 1;
            v.push_back(mla_decode_source(ragged64, c, sm));
        }
        c = MlaDecodeConfig{64, 2, 1, 1, 1, 1};  // fused combine + early prologue: bf16; fp32, profiled, padded
        c.tma = 1;
        c.combine_warp = 1;
        c.fused_combine = 1;
        c.prologue = 1;
        v.push_back(mla_decode_source(v3, c, sm));
        c.partial_bf16 = 0;
        c.profile = 1;
        v.push_back(mla_decode_source(ragged64, c, sm));
        c.bulk_store = 1;  // rows by bulk copies
        v.push_back(mla_decode_source(v3, c, sm));
        c.fused_combine = 2;  // ... and read back by bulk copies (fp32, profiled; bf16)
        v.push_back(mla_decode_source(v3, c, sm));
        c.partial_bf16 = 1;
        c.profile = 0;
        v.push_back(mla_decode_source(ragged64, c, sm));
        c.l2_prefetch = 2;  // tiles prefetched into L2
        v.push_back(mla_decode_source(v3, c, sm));
        c = MlaDecodeConfig{32, 4, 1, 1, 1, 1};
        c.tma = 1;
        c.fused_combine = 1;
        v.push_back(mla_decode_source(v3, c, sm));
        c.merge_loads = 1;  // the merge's 512-byte warp loads, with merge helpers; fp32, profiled, padded heads
        c.merge_helpers = 1;
        v.push_back(mla_decode_source(v3, c, sm));
        c = MlaDecodeConfig{64, 2, 1, 1, 1, 0};
        c.tma = 1;
        c.fused_combine = 1;
        c.prologue = 1;
        c.merge_loads = 1;
        c.profile = 1;
        v.push_back(mla_decode_source(ragged64, c, sm));
        c.fused_combine = 3;  // ready flags instead of the grid barrier
        v.push_back(mla_decode_source(ragged64, c, sm));
    }
    v.push_back(mla_combine_source(v3));
    v.push_back(mla_combine_source(v3, true));
    v.push_back(mla_combine_source(v3, true, true));
    v.push_back(mla_combine_warp_source(v3));
    v.push_back(mla_combine_warp_source(v3, true, true));
    v.push_back(kv_append_source(v3));
    v.push_back(rms_norm_source(RmsNormDesc{7168, CudaDtype::f32, CudaDtype::bf16}));
    v.push_back(rms_norm_source(RmsNormDesc{512, CudaDtype::bf16, CudaDtype::bf16}));
    v.push_back(rope_source(RopeDesc{64, CudaDtype::bf16, true}));
    v.push_back(rope_source(RopeDesc{64, CudaDtype::f32, false}));
    v.push_back(router_topk_source(RouterTopkDesc{}));
    v.push_back(
        elementwise_source(ElementwiseDesc{ElementwiseOp::embedding, CudaDtype::bf16, CudaDtype::f32}));
    v.push_back(
        elementwise_source(ElementwiseDesc{ElementwiseOp::silu_mul, CudaDtype::bf16, CudaDtype::bf16}));
    v.push_back(elementwise_source(ElementwiseDesc{ElementwiseOp::add, CudaDtype::bf16, CudaDtype::f32}));
    v.push_back(elementwise_source(ElementwiseDesc{ElementwiseOp::cast, CudaDtype::f32, CudaDtype::bf16}));
    return v;
}

}  // namespace mf::test
