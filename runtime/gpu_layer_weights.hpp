// The non-expert weights of one layer in GPU memory, converted once at load: bf16 for every GEMM operand (the
// CPU runtime's dense compute type), fp32 for the norms and the router (routing is a discrete choice: it must
// see the same scores as the CPU). The absorbed-MLA head matrices are stored in one layout whatever the file
// holds (attn_kv_b or attn_k_b + attn_v_b): uk [heads][kv_lora][nope] and uv [heads][v_head][kv_lora], both the
// "[n][k]" operand of a transposed batched GEMM.
#pragma once
#include <cstdint>
#include <string_view>

#include "codegen/cuda/cuda_memory.hpp"
#include "model/deepseek_v3_config.hpp"
#include "model/deepseek_v3_weights.hpp"

namespace mf {

class ThreadPool;

struct GpuLayerWeights {
    DeviceBuffer attn_norm, q_a_norm, kv_a_norm;  // f32
    DeviceBuffer q_a, q_b, kv_a, uk, uv, o;       // bf16; q_b empty when the layer has no q_lora_rank
    DeviceBuffer ffn_norm;                        // f32
    DeviceBuffer gate_up, down;                   // dense FFN or shared expert: [2 inter][hidden], [hidden][inter]
    int64_t ffn_inter = 0;                        // 0: no FFN on the GPU (an MoE layer without shared experts)
    DeviceBuffer router, router_bias;             // MoE layers: [experts][hidden] f32, [experts] f32 or empty
    bool moe = false;
    size_t bytes = 0;
};

// Converts and uploads layer `layer`'s weights (rows dequantised in parallel on `pool`). Needs a current
// CudaContext; throws std::runtime_error on a tensor moeforge cannot read or when device memory runs out.
GpuLayerWeights upload_gpu_layer(const DeepSeekV3Config& c, const LayerWeights& w, int64_t layer, ThreadPool& pool);

// A [rows][cols] matrix as bf16 in device memory (token embedding, lm_head).
DeviceBuffer upload_bf16_matrix(const TensorView& v, ThreadPool& pool);

// Device bytes upload_gpu_layer() will take for `layer` (placement decides how many layers fit).
uint64_t gpu_layer_bytes(const DeepSeekV3Config& c, int64_t layer);

}  // namespace mf
