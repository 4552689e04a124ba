#include "model/deepseek_v3_names.hpp"

#include <fmt/core.h>

namespace mf {

const std::vector<LayerTensorName>& layer_tensor_names() {
    static const std::vector<LayerTensorName> names = {
        {&LayerWeights::attn_norm, "attn_norm.weight", "input_layernorm.weight"},
        {&LayerWeights::q_a, "attn_q_a.weight", "self_attn.q_a_proj.weight"},
        {&LayerWeights::q_a_norm, "attn_q_a_norm.weight", "self_attn.q_a_layernorm.weight"},
        {&LayerWeights::q_b, "attn_q_b.weight", "self_attn.q_b_proj.weight"},
        {&LayerWeights::kv_a, "attn_kv_a_mqa.weight", "self_attn.kv_a_proj_with_mqa.weight"},
        {&LayerWeights::kv_a_norm, "attn_kv_a_norm.weight", "self_attn.kv_a_layernorm.weight"},
        {&LayerWeights::kv_b, "attn_kv_b.weight", "self_attn.kv_b_proj.weight"},
        {&LayerWeights::k_b, "attn_k_b.weight", nullptr},
        {&LayerWeights::v_b, "attn_v_b.weight", nullptr},
        {&LayerWeights::o, "attn_output.weight", "self_attn.o_proj.weight"},
        {&LayerWeights::ffn_norm, "ffn_norm.weight", "post_attention_layernorm.weight"},
        {&LayerWeights::ffn_gate, "ffn_gate.weight", "mlp.gate_proj.weight"},
        {&LayerWeights::ffn_up, "ffn_up.weight", "mlp.up_proj.weight"},
        {&LayerWeights::ffn_down, "ffn_down.weight", "mlp.down_proj.weight"},
        {&LayerWeights::router, "ffn_gate_inp.weight", "mlp.gate.weight"},
        {&LayerWeights::router_bias, "exp_probs_b.bias", "mlp.gate.e_score_correction_bias"},
        {&LayerWeights::shexp_gate, "ffn_gate_shexp.weight", "mlp.shared_experts.gate_proj.weight"},
        {&LayerWeights::shexp_up, "ffn_up_shexp.weight", "mlp.shared_experts.up_proj.weight"},
        {&LayerWeights::shexp_down, "ffn_down_shexp.weight", "mlp.shared_experts.down_proj.weight"},
    };
    return names;
}

const std::vector<ExpertTensorName>& expert_tensor_names() {
    static const std::vector<ExpertTensorName> names = {
        {&LayerWeights::exp_gate, "ffn_gate_exps.weight", "gate_proj.weight"},
        {&LayerWeights::exp_up, "ffn_up_exps.weight", "up_proj.weight"},
        {&LayerWeights::exp_down, "ffn_down_exps.weight", "down_proj.weight"},
    };
    return names;
}

std::string gguf_layer_tensor(int64_t layer, const char* suffix) {
    return fmt::format("blk.{}.{}", layer, suffix);
}
std::string hf_layer_tensor(int64_t layer, const char* suffix) {
    return fmt::format("model.layers.{}.{}", layer, suffix);
}
std::string hf_expert_tensor(int64_t layer, int64_t expert, const char* suffix) {
    return fmt::format("model.layers.{}.mlp.experts.{}.{}", layer, expert, suffix);
}

}  // namespace mf
