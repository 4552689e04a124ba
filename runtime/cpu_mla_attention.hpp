// MLA attention of one layer on the CPU, over the latent KV cache, in the absorbed form for every query (decode and
// prefill chunks alike):
//   c_q = RMSNorm(x W_q_a); q = c_q W_q_b -> per head [q_nope 128 | q_pe 64]; [c_kv 512 | k_pe 64] = x W_kv_a;
//   c_kv = RMSNorm(c_kv); rope(q_pe, k_pe); the cache row of the position becomes [c_kv | k_pe];
//   q_lat[h] = q_nope[h] W_UK[h] (512); score[h,t] = ([q_lat | q_pe] . cache[t]) * scale (576-dim dot);
//   p = causal softmax; o_lat[h] = sum_t p c_kv[t]; o[h] = o_lat[h] W_UV[h]^T; out = concat(o) W_o.
// The big projections are packed Linear (bf16 or int8); W_UK and W_UV are one HeadGemv each (every head in one
// buffer). After the projections, one dispatch: each worker takes a contiguous range of heads and, per group of up
// to 8 heads and per chunk of queries, absorbs W_UK, attends over the latent rows (cpu_mla_latent_attend.hpp: one
// pass over the cache per group) and expands through W_UV; no allocation once the scratch has grown.
#pragma once
#include <cstdint>
#include <vector>

#include "model/deepseek_v3_config.hpp"
#include "model/deepseek_v3_weights.hpp"
#include "runtime/cpu_mla_head_gemv.hpp"
#include "runtime/kv_cache.hpp"
#include "runtime/linear.hpp"
#include "runtime/rope_yarn.hpp"

namespace mf {

class ThreadPool;

class CpuMlaAttention {
public:
    CpuMlaAttention() = default;
    CpuMlaAttention(const DeepSeekV3Config& c, const LayerWeights& w, ComputeType type, KernelCache& cache);

    // x: [m][hidden] residual stream rows (attn_norm is applied here); out: [m][hidden] attention output.
    // Writes the cache rows of positions [pos0, pos0 + m) of `layer`; the caller commits them after all layers.
    void forward(const float* x, int64_t m, int64_t pos0, LatentKvCache& kv, int64_t layer, const RopeTable& rope,
                 ThreadPool& pool, float* out) const;

    size_t weight_bytes() const;

private:
    int64_t hidden_ = 0, heads_ = 0, nope_ = 0, rope_dim_ = 0, v_head_ = 0, kv_lora_ = 0, q_lora_ = 0;
    float eps_ = 1e-6f, scale_ = 1.0f;
    std::vector<float> attn_norm_, q_a_norm_, kv_a_norm_;
    Linear q_a_, q_b_, kv_a_;  // q_a_ is [H*192][hidden] itself when q_lora_rank is 0
    HeadGemv uk_;              // per head: [kv_lora][nope] (q_nope -> latent)
    HeadGemv uv_;              // per head: [v_head][kv_lora] (latent -> value)
    Linear o_;
};

}  // namespace mf
