#include "model/synthetic_plan.hpp"

#include <fmt/core.h>

#include <cmath>
#include <map>
#include <stdexcept>

#include "model/deepseek_v3_names.hpp"
#include "model/synthetic_model.hpp"

namespace mf {

std::vector<std::string> preset_names() {
    return {"tiny", "small", "v3-slice-N"};
}

DeepSeekV3Config preset_config(const std::string& preset) {
    DeepSeekV3Config c;  // DeepSeek-V3 defaults
    if (preset == "tiny") {
        // Every architectural feature at toy widths: 1 dense + 3 MoE layers, 16 experts in 4 groups (top-4
        // from 2 groups), a shared expert, MLA with a q LoRA and 16-dim rope, YaRN. Rows are multiples of 32
        // (q8_0).
        c.hidden = 64, c.n_layers = 4, c.n_dense_layers = 1, c.dense_inter = 128, c.moe_inter = 32;
        c.n_experts = 16, c.n_experts_used = 4, c.n_groups = 4, c.n_groups_used = 2, c.n_shared_experts = 1;
        c.n_heads = 4, c.q_lora_rank = 64, c.kv_lora_rank = 32, c.qk_nope = 32, c.qk_rope = 16, c.v_head = 32;
        return c;
    }
    if (preset == "small") {
        // A demo model of a few hundred MB: widths that fit every block format (multiples of 256).
        c.hidden = 512, c.n_layers = 8, c.n_dense_layers = 1, c.dense_inter = 1536, c.moe_inter = 256;
        c.n_experts = 64, c.n_experts_used = 6, c.n_groups = 8, c.n_groups_used = 4, c.n_shared_experts = 1;
        c.n_heads = 8, c.q_lora_rank = 256, c.kv_lora_rank = 256, c.qk_nope = 64, c.qk_rope = 64,
        c.v_head = 64;
        return c;
    }
    const std::string slice = "v3-slice-";
    if (preset.rfind(slice, 0) == 0 && preset.size() > slice.size()) {
        int n = 0;
        try {
            size_t used = 0;
            n = std::stoi(preset.substr(slice.size()), &used);
            if (used != preset.size() - slice.size()) n = 0;
        } catch (const std::exception&) {
            n = 0;
        }
        if (n < 1 || n > 61)
            throw std::invalid_argument("preset '" + preset +
                                        "': N must be 1 to 61 layers (e.g. v3-slice-4)");
        c.n_layers = n;
        c.n_dense_layers = n > 3 ? 3 : std::min<int64_t>(n, 1);  // the 3 dense layers first when N > 3
        if (n == 1) c.n_dense_layers = 0;                        // one layer: a MoE layer, the common case
        return c;
    }
    throw std::invalid_argument("unknown preset '" + preset + "' (presets: tiny, small, v3-slice-N)");
}

namespace {

GgmlType fit_type(GgmlType want, int64_t cols, const std::string& name, std::vector<std::string>* notes) {
    for (GgmlType t : {want, GgmlType::q8_0, GgmlType::bf16}) {
        if (ggml_row_bytes(uint32_t(t), uint64_t(cols))) {
            if (t != want && notes)
                notes->push_back(fmt::format("{}: rows of {} are not whole {} blocks, kept in {}", name, cols,
                                             ggml_type_name(want), ggml_type_name(t)));
            return t;
        }
    }
    return GgmlType::f32;
}

}  // namespace

std::vector<PlannedTensor> plan_synthetic_tensors(const DeepSeekV3Config& c, GgmlType wtype,
                                                  std::vector<std::string>* notes) {
    const GgmlType main_type = wtype == GgmlType::f32   ? GgmlType::f32
                               : wtype == GgmlType::f16 ? GgmlType::f16
                                                        : GgmlType::bf16;
    const int64_t D = c.hidden, H = c.n_heads, L = c.n_layers;
    const float residual = 1.0f / std::sqrt(2.0f * float(L));
    auto inv_sqrt = [](int64_t n) { return 1.0f / std::sqrt(float(n)); };
    std::vector<PlannedTensor> out;
    auto add = [&](std::string hf, std::string gguf, std::vector<int64_t> shape, GgmlType t, float sd,
                   float center) {
        PlannedTensor p;
        p.hf_name = std::move(hf), p.gguf_name = std::move(gguf), p.shape = std::move(shape);
        p.gguf_type = t, p.stddev = sd, p.center = center;
        out.push_back(std::move(p));
    };
    const float norm_sd = 0.1f / std::sqrt(3.0f);  // 1 +- 0.1
    add(kHfTokenEmbd, kGgufTokenEmbd, {c.vocab_size, D}, main_type, 1.0f, 0);
    // The names come from the reader's tables, so writer and readers cannot disagree.
    std::map<std::string, const LayerTensorName*> by_gguf;
    for (const auto& n : layer_tensor_names()) by_gguf[n.gguf] = &n;
    for (int64_t i = 0; i < L; ++i) {
        auto layer = [&](const char* gguf, std::vector<int64_t> shape, GgmlType t, float sd, float center) {
            const LayerTensorName* n = by_gguf.at(gguf);
            add(hf_layer_tensor(i, n->hf), gguf_layer_tensor(i, n->gguf), std::move(shape), t, sd, center);
        };
        auto matrix = [&](const char* gguf, int64_t rows, int64_t cols, GgmlType want, float sd) {
            const std::string name = gguf_layer_tensor(i, gguf);
            layer(gguf, {rows, cols}, fit_type(want, cols, name, notes), sd, 0);
        };
        layer("attn_norm.weight", {D}, GgmlType::f32, norm_sd, 1);
        matrix("attn_q_a.weight", c.q_lora_rank, D, main_type, inv_sqrt(D));
        layer("attn_q_a_norm.weight", {c.q_lora_rank}, GgmlType::f32, norm_sd, 1);
        matrix("attn_q_b.weight", H * c.qk_head_dim(), c.q_lora_rank, main_type, inv_sqrt(c.q_lora_rank));
        matrix("attn_kv_a_mqa.weight", c.kv_lora_rank + c.qk_rope, D, main_type, inv_sqrt(D));
        layer("attn_kv_a_norm.weight", {c.kv_lora_rank}, GgmlType::f32, norm_sd, 1);
        matrix("attn_kv_b.weight", H * (c.qk_nope + c.v_head), c.kv_lora_rank, main_type,
               inv_sqrt(c.kv_lora_rank));
        out.back().kv_b = true;
        matrix("attn_output.weight", D, H * c.v_head, main_type, inv_sqrt(H * c.v_head) * residual);
        layer("ffn_norm.weight", {D}, GgmlType::f32, norm_sd, 1);
        if (!c.is_moe_layer(i)) {
            matrix("ffn_gate.weight", c.dense_inter, D, wtype, inv_sqrt(D));
            matrix("ffn_up.weight", c.dense_inter, D, wtype, inv_sqrt(D));
            matrix("ffn_down.weight", D, c.dense_inter, wtype, inv_sqrt(c.dense_inter) * residual);
            continue;
        }
        layer("ffn_gate_inp.weight", {c.n_experts, D}, GgmlType::f32, inv_sqrt(D), 0);
        layer("exp_probs_b.bias", {c.n_experts}, GgmlType::f32, 0.05f, 0);
        const GgmlType gu = fit_type(wtype, D, gguf_layer_tensor(i, "ffn_{gate,up}_exps.weight"), notes);
        const GgmlType dn = fit_type(wtype, c.moe_inter, gguf_layer_tensor(i, "ffn_down_exps.weight"), notes);
        for (const auto& n : expert_tensor_names()) {
            const bool down = n.member == &LayerWeights::exp_down;
            for (int64_t e = 0; e < c.n_experts; ++e) {
                add(hf_expert_tensor(i, e, n.hf), gguf_layer_tensor(i, n.gguf),
                    down ? std::vector<int64_t>{D, c.moe_inter} : std::vector<int64_t>{c.moe_inter, D},
                    down ? dn : gu, down ? inv_sqrt(c.moe_inter) * residual : inv_sqrt(D), 0);
                out.back().expert = e;
            }
        }
        if (c.n_shared_experts > 0) {
            const int64_t S = c.n_shared_experts * c.moe_inter;
            matrix("ffn_gate_shexp.weight", S, D, wtype, inv_sqrt(D));
            matrix("ffn_up_shexp.weight", S, D, wtype, inv_sqrt(D));
            matrix("ffn_down_shexp.weight", D, S, wtype, inv_sqrt(S) * residual);
        }
    }
    add(kHfOutputNorm, kGgufOutputNorm, {D}, GgmlType::f32, norm_sd, 1);
    add(kHfOutput, kGgufOutput, {c.vocab_size, D}, main_type, inv_sqrt(D), 0);
    return out;
}

namespace {
uint64_t splitmix64(uint64_t& s) {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
uint64_t fnv1a(const std::string& s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char ch : s) h = (h ^ ch) * 0x100000001b3ull;
    return h;
}
}  // namespace

void generate_rows(const PlannedTensor& t, uint64_t seed, int64_t row0, int64_t n, float* dst) {
    const uint64_t base = fnv1a(t.hf_name) ^ (seed * 0x2545f4914f6cdd1dull);
    const float a = std::sqrt(3.0f) * t.stddev;
    const int64_t cols = t.cols();
    for (int64_t r = 0; r < n; ++r) {
        uint64_t s = base + uint64_t(row0 + r) * 0x9e3779b97f4a7c15ull;
        splitmix64(s);
        for (int64_t k = 0; k < cols; ++k) {
            const float u = float(splitmix64(s) >> 40) * 0x1p-24f;  // [0, 1)
            dst[r * cols + k] = t.center + a * (2.0f * u - 1.0f);
        }
    }
}

}  // namespace mf
