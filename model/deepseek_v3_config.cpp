#include "model/deepseek_v3_config.hpp"

#include <fmt/core.h>

#include <cmath>
#include <stdexcept>

#include "model/gguf_file.hpp"
#include "model/gguf_writer.hpp"

namespace mf {

float yarn_get_mscale(float scale, float mscale) {
    return scale <= 1.0f ? 1.0f : 0.1f * mscale * std::log(scale) + 1.0f;
}

float DeepSeekV3Config::attention_scale() const {
    float s = 1.0f / std::sqrt(float(qk_head_dim()));
    if (yarn) {
        const float m = yarn_get_mscale(yarn_factor, yarn_mscale_all_dim);
        s *= m * m;
    }
    return s;
}

void DeepSeekV3Config::validate(const std::string& where) const {
    auto fail = [&](const std::string& what) { throw std::runtime_error(where + ": " + what); };
    auto positive = [&](int64_t v, const char* name, int64_t max) {
        if (v <= 0 || v > max) fail(fmt::format("{} = {} is out of range (1 to {})", name, v, max));
    };
    positive(vocab_size, "vocab_size", 1 << 24);
    positive(hidden, "hidden_size", 1 << 18);
    positive(n_layers, "num_hidden_layers", 4096);
    positive(n_heads, "num_attention_heads", 1 << 12);
    positive(q_lora_rank, "q_lora_rank", 1 << 18);
    positive(kv_lora_rank, "kv_lora_rank", 1 << 18);
    positive(qk_nope, "qk_nope_head_dim", 1 << 14);
    positive(qk_rope, "qk_rope_head_dim", 1 << 14);
    positive(v_head, "v_head_dim", 1 << 14);
    if (qk_rope % 2) fail(fmt::format("qk_rope_head_dim = {} must be even (rope rotates pairs)", qk_rope));
    if (n_dense_layers < 0 || n_dense_layers > n_layers)
        fail(fmt::format("{} dense layers of {} layers", n_dense_layers, n_layers));
    if (n_dense_layers > 0) positive(dense_inter, "intermediate_size", 1 << 20);
    if (n_dense_layers < n_layers) {
        positive(moe_inter, "moe_intermediate_size", 1 << 20);
        positive(n_experts, "n_routed_experts", 1 << 16);
        positive(n_experts_used, "num_experts_per_tok", n_experts);
        positive(n_groups, "n_group", n_experts);
        positive(n_groups_used, "topk_group", n_groups);
        if (n_shared_experts < 0 || n_shared_experts > 64) fail("n_shared_experts out of range");
        if (n_experts % n_groups)
            fail(fmt::format("{} experts do not split into {} groups", n_experts, n_groups));
        if (n_experts_used > n_groups_used * experts_per_group())
            fail(fmt::format("top-{} cannot be chosen from {} groups of {} experts", n_experts_used,
                             n_groups_used, experts_per_group()));
    }
    if (!(rms_eps > 0) || !(rope_theta > 0)) fail("rms_norm_eps and rope_theta must be positive");
    if (yarn && (!(yarn_factor > 0) || yarn_original_ctx <= 0))
        fail("YaRN factor/original context must be positive");
}

DeepSeekV3Config config_from_gguf(const GgufFile& f) {
    const std::string arch = f.get_string("general.architecture");
    if (arch != "deepseek2")
        f.fail("general.architecture is '" + arch + "'; moeforge runs DeepSeek-V3/R1 GGUFs (arch deepseek2)");
    auto k = [](const char* s) { return std::string("deepseek2.") + s; };
    DeepSeekV3Config c;
    c.n_layers = int64_t(f.get_uint(k("block_count")));
    c.hidden = int64_t(f.get_uint(k("embedding_length")));
    c.dense_inter = int64_t(f.get_uint(k("feed_forward_length")));
    c.n_heads = int64_t(f.get_uint(k("attention.head_count")));
    c.n_dense_layers = int64_t(f.opt_uint(k("leading_dense_block_count")).value_or(0));
    c.n_experts = int64_t(f.opt_uint(k("expert_count")).value_or(0));
    c.n_experts_used = int64_t(f.opt_uint(k("expert_used_count")).value_or(0));
    c.n_shared_experts = int64_t(f.opt_uint(k("expert_shared_count")).value_or(0));
    c.moe_inter = int64_t(f.opt_uint(k("expert_feed_forward_length")).value_or(0));
    c.routed_scaling = float(f.opt_float(k("expert_weights_scale")).value_or(1.0));
    c.norm_topk_prob = f.opt_bool(k("expert_weights_norm")).value_or(false);
    const uint64_t gating = f.opt_uint(k("expert_gating_func")).value_or(1);
    if (gating != 1 && gating != 2)
        f.fail(fmt::format("key 'deepseek2.expert_gating_func' = {} (1 softmax and 2 sigmoid are known)",
                           gating));
    c.sigmoid_gating = gating == 2;
    // Group-limited routing keys appeared in late 2025; older DeepSeek-V3/R1 files (256 experts) get V3's
    // 8/4.
    const bool v3_experts = c.n_experts == 256;
    c.n_groups = int64_t(f.opt_uint(k("expert_group_count")).value_or(v3_experts ? 8 : 1));
    c.n_groups_used = int64_t(f.opt_uint(k("expert_group_used_count")).value_or(v3_experts ? 4 : 1));
    c.q_lora_rank = int64_t(f.opt_uint(k("attention.q_lora_rank")).value_or(0));
    if (c.q_lora_rank == 0)
        f.fail(
            "key 'deepseek2.attention.q_lora_rank' is missing or 0: models without a q LoRA "
            "(DeepSeek-V2-Lite) "
            "are not supported");
    c.kv_lora_rank = int64_t(f.get_uint(k("attention.kv_lora_rank")));
    c.qk_rope = int64_t(f.get_uint(k("rope.dimension_count")));
    const int64_t key_len = int64_t(f.get_uint(k("attention.key_length")));
    const int64_t value_len = int64_t(f.get_uint(k("attention.value_length")));
    if (f.has(k("attention.key_length_mla"))) {
        const int64_t kmla = int64_t(f.get_uint(k("attention.key_length_mla")));
        c.v_head = int64_t(f.get_uint(k("attention.value_length_mla")));
        if (key_len != c.kv_lora_rank + c.qk_rope || value_len != c.kv_lora_rank)
            f.fail(fmt::format(
                "MLA layout: key_length {} / value_length {} should be kv_lora_rank + rope = {} / "
                "kv_lora_rank = {}",
                key_len, value_len, c.kv_lora_rank + c.qk_rope, c.kv_lora_rank));
        c.qk_nope = kmla - c.qk_rope;
    } else {
        c.qk_nope = key_len - c.qk_rope;
        c.v_head = value_len;
    }
    if (c.qk_nope <= 0)
        f.fail(fmt::format("key length {} is not larger than the rope dimension {}", key_len, c.qk_rope));
    c.rms_eps = float(f.get_float(k("attention.layer_norm_rms_epsilon")));
    c.rope_theta = float(f.opt_float(k("rope.freq_base")).value_or(10000.0));
    c.max_positions = int64_t(f.opt_uint(k("context_length")).value_or(163840));
    const std::string scaling = f.opt_string(k("rope.scaling.type")).value_or("none");
    c.yarn = scaling == "yarn";
    if (scaling != "yarn" && scaling != "none")
        f.fail("key 'deepseek2.rope.scaling.type' = '" + scaling + "' (yarn or none expected)");
    if (c.yarn) {
        c.yarn_factor = float(f.get_float(k("rope.scaling.factor")));
        c.yarn_original_ctx = int64_t(f.get_uint(k("rope.scaling.original_context_length")));
        // llama.cpp's yarn_log_multiplier is 0.1 * mscale_all_dim; GGUF cannot carry a separate mscale, so
        // the cos/sin scale m(mscale)/m(mscale_all_dim) is 1, as in DeepSeek-V3.
        c.yarn_mscale_all_dim =
            float(f.opt_float(k("rope.scaling.yarn_log_multiplier")).value_or(0.0)) / 0.1f;
        c.yarn_mscale = c.yarn_mscale_all_dim;
        c.yarn_beta_fast = float(f.opt_float(k("rope.scaling.yarn_beta_fast")).value_or(32.0));
        c.yarn_beta_slow = float(f.opt_float(k("rope.scaling.yarn_beta_slow")).value_or(1.0));
    }
    if (auto v = f.opt_uint(k("vocab_size")))
        c.vocab_size = int64_t(*v);
    else if (const GgufValue* t = f.find("tokenizer.ggml.tokens"))
        c.vocab_size = int64_t(t->array_size());
    else if (const GgufTensorInfo* e = f.find_tensor("token_embd.weight"); e && e->ne.size() == 2)
        c.vocab_size = int64_t(e->ne[1]);
    c.bos_id = int32_t(f.opt_uint("tokenizer.ggml.bos_token_id").value_or(0));
    c.eos_id = int32_t(f.opt_uint("tokenizer.ggml.eos_token_id").value_or(1));
    c.validate(f.path().string());
    return c;
}

DeepSeekV3Config config_from_hf_json(const nlohmann::json& j, const std::string& file) {
    auto fail = [&](const std::string& what) { throw std::runtime_error(file + ": " + what); };
    const std::string mt = j.value("model_type", std::string());
    if (mt != "deepseek_v3") fail("model_type is '" + mt + "' (deepseek_v3 expected)");
    DeepSeekV3Config c;
    auto num = [&](const char* key, auto& dst) {
        if (!j.contains(key)) return;
        if (!j[key].is_number()) fail(std::string("'") + key + "' is not a number");
        dst = j[key].get<std::remove_reference_t<decltype(dst)>>();
    };
    try {
        num("vocab_size", c.vocab_size);
        num("hidden_size", c.hidden);
        num("num_hidden_layers", c.n_layers);
        num("first_k_dense_replace", c.n_dense_layers);
        num("intermediate_size", c.dense_inter);
        num("moe_intermediate_size", c.moe_inter);
        num("n_routed_experts", c.n_experts);
        num("num_experts_per_tok", c.n_experts_used);
        num("n_shared_experts", c.n_shared_experts);
        num("n_group", c.n_groups);
        num("topk_group", c.n_groups_used);
        num("routed_scaling_factor", c.routed_scaling);
        num("num_attention_heads", c.n_heads);
        if (j.contains("q_lora_rank") && j["q_lora_rank"].is_null())
            fail("q_lora_rank is null: models without a q LoRA are not supported");
        num("q_lora_rank", c.q_lora_rank);
        num("kv_lora_rank", c.kv_lora_rank);
        num("qk_nope_head_dim", c.qk_nope);
        num("qk_rope_head_dim", c.qk_rope);
        num("v_head_dim", c.v_head);
        num("rms_norm_eps", c.rms_eps);
        num("rope_theta", c.rope_theta);
        num("max_position_embeddings", c.max_positions);
        if (j.contains("bos_token_id") && j["bos_token_id"].is_number())
            c.bos_id = j["bos_token_id"].get<int32_t>();
        if (j.contains("eos_token_id") && j["eos_token_id"].is_number())
            c.eos_id = j["eos_token_id"].get<int32_t>();
        if (j.contains("norm_topk_prob")) c.norm_topk_prob = j["norm_topk_prob"].get<bool>();
        c.sigmoid_gating = j.value("scoring_func", std::string("sigmoid")) == "sigmoid";
        c.yarn = false;
        if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
            const auto& r = j["rope_scaling"];
            const std::string type = r.value("type", r.value("rope_type", std::string()));
            if (type != "yarn") fail("rope_scaling type '" + type + "' (only yarn is supported)");
            c.yarn = true;
            c.yarn_factor = r.value("factor", 40.0f);
            c.yarn_original_ctx = r.value("original_max_position_embeddings", int64_t(4096));
            c.yarn_beta_fast = r.value("beta_fast", 32.0f);
            c.yarn_beta_slow = r.value("beta_slow", 1.0f);
            c.yarn_mscale = r.value("mscale", 1.0f);
            c.yarn_mscale_all_dim = r.value("mscale_all_dim", 0.0f);
        }
    } catch (const nlohmann::json::exception& e) {
        fail(std::string("bad value: ") + e.what());
    }
    c.validate(file);
    return c;
}

nlohmann::json config_to_hf_json(const DeepSeekV3Config& c, const std::string& torch_dtype) {
    nlohmann::json j;
    j["architectures"] = {"DeepseekV3ForCausalLM"};
    j["model_type"] = "deepseek_v3";
    j["vocab_size"] = c.vocab_size;
    j["hidden_size"] = c.hidden;
    j["intermediate_size"] = c.dense_inter;
    j["moe_intermediate_size"] = c.moe_inter;
    j["num_hidden_layers"] = c.n_layers;
    j["num_nextn_predict_layers"] = 0;
    j["num_attention_heads"] = c.n_heads;
    j["num_key_value_heads"] = c.n_heads;
    j["n_shared_experts"] = c.n_shared_experts;
    j["n_routed_experts"] = c.n_experts;
    j["routed_scaling_factor"] = c.routed_scaling;
    j["kv_lora_rank"] = c.kv_lora_rank;
    j["q_lora_rank"] = c.q_lora_rank;
    j["qk_rope_head_dim"] = c.qk_rope;
    j["v_head_dim"] = c.v_head;
    j["qk_nope_head_dim"] = c.qk_nope;
    j["head_dim"] = c.qk_rope;  // transformers uses head_dim as the rotary dimension of DeepseekV3
    j["topk_method"] = "noaux_tc";
    j["scoring_func"] = c.sigmoid_gating ? "sigmoid" : "softmax";
    j["n_group"] = c.n_groups;
    j["topk_group"] = c.n_groups_used;
    j["num_experts_per_tok"] = c.n_experts_used;
    j["moe_layer_freq"] = 1;
    j["first_k_dense_replace"] = c.n_dense_layers;
    j["norm_topk_prob"] = c.norm_topk_prob;
    j["ep_size"] = 1;
    j["hidden_act"] = "silu";
    j["max_position_embeddings"] = c.max_positions;
    j["initializer_range"] = 0.02;
    j["rms_norm_eps"] = c.rms_eps;
    j["use_cache"] = true;
    j["bos_token_id"] = c.bos_id;
    j["eos_token_id"] = c.eos_id;
    j["pretraining_tp"] = 1;
    j["tie_word_embeddings"] = false;
    j["rope_theta"] = c.rope_theta;
    j["rope_interleave"] = true;  // the weights keep the reference code's interleaved rope pairs
    if (c.yarn)
        j["rope_scaling"] = {{"type", "yarn"},
                             {"rope_type", "yarn"},
                             {"factor", c.yarn_factor},
                             {"original_max_position_embeddings", c.yarn_original_ctx},
                             {"beta_fast", c.yarn_beta_fast},
                             {"beta_slow", c.yarn_beta_slow},
                             {"mscale", c.yarn_mscale},
                             {"mscale_all_dim", c.yarn_mscale_all_dim}};
    else
        j["rope_scaling"] = nullptr;
    j["attention_bias"] = false;
    j["attention_dropout"] = 0.0;
    j["torch_dtype"] = torch_dtype;
    j["transformers_version"] = "4.51.0";
    return j;
}

void write_gguf_config(GgufWriter& w, const DeepSeekV3Config& c, bool mla_layout, const std::string& name) {
    auto k = [](const char* s) { return std::string("deepseek2.") + s; };
    w.add_string("general.architecture", "deepseek2");
    w.add_string("general.name", name);
    w.add_u32(k("block_count"), uint32_t(c.n_layers));
    w.add_u32(k("context_length"), uint32_t(c.max_positions));
    w.add_u32(k("embedding_length"), uint32_t(c.hidden));
    w.add_u32(k("feed_forward_length"), uint32_t(c.dense_inter));
    w.add_u32(k("attention.head_count"), uint32_t(c.n_heads));
    w.add_u32(k("attention.head_count_kv"), uint32_t(mla_layout ? 1 : c.n_heads));
    w.add_f32(k("rope.freq_base"), c.rope_theta);
    w.add_f32(k("attention.layer_norm_rms_epsilon"), c.rms_eps);
    w.add_u32(k("expert_used_count"), uint32_t(c.n_experts_used));
    w.add_u32(k("expert_count"), uint32_t(c.n_experts));
    w.add_u32(k("leading_dense_block_count"), uint32_t(c.n_dense_layers));
    w.add_u32(k("vocab_size"), uint32_t(c.vocab_size));
    w.add_u32(k("attention.q_lora_rank"), uint32_t(c.q_lora_rank));
    w.add_u32(k("attention.kv_lora_rank"), uint32_t(c.kv_lora_rank));
    if (mla_layout) {
        w.add_u32(k("attention.key_length"), uint32_t(c.kv_lora_rank + c.qk_rope));
        w.add_u32(k("attention.value_length"), uint32_t(c.kv_lora_rank));
        w.add_u32(k("attention.key_length_mla"), uint32_t(c.qk_head_dim()));
        w.add_u32(k("attention.value_length_mla"), uint32_t(c.v_head));
    } else {
        w.add_u32(k("attention.key_length"), uint32_t(c.qk_head_dim()));
        w.add_u32(k("attention.value_length"), uint32_t(c.v_head));
    }
    w.add_u32(k("expert_feed_forward_length"), uint32_t(c.moe_inter));
    w.add_u32(k("expert_shared_count"), uint32_t(c.n_shared_experts));
    w.add_f32(k("expert_weights_scale"), c.routed_scaling);
    w.add_bool(k("expert_weights_norm"), c.norm_topk_prob);
    w.add_u32(k("expert_gating_func"), c.sigmoid_gating ? 2 : 1);
    w.add_u32(k("expert_group_count"), uint32_t(c.n_groups));
    w.add_u32(k("expert_group_used_count"), uint32_t(c.n_groups_used));
    w.add_u32(k("rope.dimension_count"), uint32_t(c.qk_rope));
    if (c.yarn) {
        w.add_string(k("rope.scaling.type"), "yarn");
        w.add_f32(k("rope.scaling.factor"), c.yarn_factor);
        w.add_u32(k("rope.scaling.original_context_length"), uint32_t(c.yarn_original_ctx));
        w.add_f32(k("rope.scaling.yarn_log_multiplier"), 0.1f * c.yarn_mscale_all_dim);
    } else {
        w.add_string(k("rope.scaling.type"), "none");
    }
}

std::string describe(const DeepSeekV3Config& c) {
    return fmt::format(
        "DeepSeek-V3: {} layers ({} dense, FFN {}), hidden {}, {} heads (q_lora {}, kv_lora {}, "
        "qk {}+{}, v {}), {} experts of {} in {} groups (top-{} of {} groups, {} shared), vocab {}{}",
        c.n_layers, c.n_dense_layers, c.dense_inter, c.hidden, c.n_heads, c.q_lora_rank, c.kv_lora_rank,
        c.qk_nope, c.qk_rope, c.v_head, c.n_experts, c.moe_inter, c.n_groups, c.n_experts_used,
        c.n_groups_used, c.n_shared_experts, c.vocab_size,
        c.yarn ? fmt::format(", YaRN x{} over {}", c.yarn_factor, c.yarn_original_ctx) : "");
}

}  // namespace mf
