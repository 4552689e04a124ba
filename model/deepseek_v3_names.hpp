// Tensor names of DeepSeek-V3 in both file formats: llama.cpp's deepseek2 GGUF names and the HF checkpoint
// names. Readers bind by these tables and mkmodel writes by them, so the two always agree.
#pragma once
#include <string>
#include <vector>

#include "model/deepseek_v3_weights.hpp"

namespace mf {

// Per-layer tensors other than the routed experts; `gguf` is after "blk.N.", `hf` after "model.layers.N.".
struct LayerTensorName {
    TensorView LayerWeights::*member;
    const char* gguf;
    const char* hf;
};
const std::vector<LayerTensorName>& layer_tensor_names();

// Routed experts: GGUF stacks them in one 3-D tensor per layer, HF names each expert.
struct ExpertTensorName {
    std::vector<TensorView> LayerWeights::*member;
    const char* gguf;  // "ffn_gate_exps.weight"
    const char* hf;    // "gate_proj.weight" (after "model.layers.N.mlp.experts.E.")
};
const std::vector<ExpertTensorName>& expert_tensor_names();

std::string gguf_layer_tensor(int64_t layer, const char* suffix);  // "blk.3.attn_q_a.weight"
std::string hf_layer_tensor(int64_t layer, const char* suffix);    // "model.layers.3.self_attn..."
std::string hf_expert_tensor(int64_t layer, int64_t expert, const char* suffix);

constexpr const char* kGgufTokenEmbd = "token_embd.weight";
constexpr const char* kGgufOutputNorm = "output_norm.weight";
constexpr const char* kGgufOutput = "output.weight";
constexpr const char* kHfTokenEmbd = "model.embed_tokens.weight";
constexpr const char* kHfOutputNorm = "model.norm.weight";
constexpr const char* kHfOutput = "lm_head.weight";

}  // namespace mf
