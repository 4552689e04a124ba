// DeepSeek-V3 hyper-parameters, filled from a GGUF's deepseek2.* keys or an HF config.json (defaults: the
// real 671B model), and written back to either. Both readers produce the same Config for the same model.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace mf {

class GgufFile;
class GgufWriter;

struct DeepSeekV3Config {
    int64_t vocab_size = 129280;
    int64_t hidden = 7168;        // D
    int64_t n_layers = 61;        // without the MTP layer
    int64_t n_dense_layers = 3;   // first_k_dense_replace / leading_dense_block_count
    int64_t dense_inter = 18432;  // FFN width of the dense layers
    int64_t moe_inter = 2048;     // width of each routed and shared expert
    int64_t n_experts = 256;      // routed experts per MoE layer
    int64_t n_experts_used = 8;   // top-k
    int64_t n_shared_experts = 1;
    int64_t n_groups = 8;         // expert groups (n_group)
    int64_t n_groups_used = 4;    // groups kept (topk_group)
    float routed_scaling = 2.5f;  // routed_scaling_factor
    bool norm_topk_prob = true;   // normalise the top-k weights before scaling
    bool sigmoid_gating = true;   // sigmoid router scores (false: softmax, DeepSeek-V2)
    int64_t n_heads = 128;
    int64_t q_lora_rank = 1536;
    int64_t kv_lora_rank = 512;
    int64_t qk_nope = 128;
    int64_t qk_rope = 64;
    int64_t v_head = 128;
    float rms_eps = 1e-6f;
    float rope_theta = 10000.0f;
    bool yarn = true;  // YaRN scaling on (else plain rope, no attention mscale)
    float yarn_factor = 40.0f;
    int64_t yarn_original_ctx = 4096;
    float yarn_beta_fast = 32.0f;
    float yarn_beta_slow = 1.0f;
    float yarn_mscale = 1.0f;
    float yarn_mscale_all_dim = 1.0f;
    int64_t max_positions = 163840;
    int32_t bos_id = 0;
    int32_t eos_id = 1;

    int64_t qk_head_dim() const { return qk_nope + qk_rope; }  // 192
    bool is_moe_layer(int64_t layer) const { return layer >= n_dense_layers; }
    int64_t experts_per_group() const { return n_experts / n_groups; }
    // softmax scale: qk_head_dim^-0.5 * m^2 with m = 0.1 * mscale_all_dim * ln(factor) + 1 under YaRN.
    float attention_scale() const;

    // Throws std::runtime_error(`where` + what is inconsistent) for sizes that cannot describe a model.
    void validate(const std::string& where) const;
    bool operator==(const DeepSeekV3Config&) const = default;
};

// YaRN's m(scale, mscale) = 0.1 * mscale * ln(scale) + 1 (1 for scale <= 1).
float yarn_get_mscale(float scale, float mscale);

DeepSeekV3Config config_from_gguf(const GgufFile& f);
DeepSeekV3Config config_from_hf_json(const nlohmann::json& j, const std::string& file);

// config.json as transformers' DeepseekV3Config writes it (model_type deepseek_v3); torch_dtype as given.
nlohmann::json config_to_hf_json(const DeepSeekV3Config& c, const std::string& torch_dtype);
// The general.* and deepseek2.* keys; mla_layout picks the attn_k_b/attn_v_b layout (else legacy attn_kv_b).
void write_gguf_config(GgufWriter& w, const DeepSeekV3Config& c, bool mla_layout, const std::string& name);

std::string describe(const DeepSeekV3Config& c);  // one line for logs and `mkmodel`

}  // namespace mf
