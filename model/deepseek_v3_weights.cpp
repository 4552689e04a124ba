#include "model/deepseek_v3_weights.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>

#include "model/block_formats.hpp"

namespace mf {
namespace {

void check(const TensorView& t, std::vector<int64_t> expected, const std::string& role,
           const std::string& where) {
    if (t.empty()) throw std::runtime_error(fmt::format("{}: missing tensor '{}' ({})", where, t.name, role));
    if (t.shape != expected)
        throw std::runtime_error(fmt::format("{}: tensor '{}' ({}) has shape [{}], the config implies [{}]",
                                             where, t.name, role, fmt::join(t.shape, ", "),
                                             fmt::join(expected, ", ")));
    if (!can_dequantize(t.type))
        throw std::runtime_error(fmt::format("{}: tensor '{}' has type {}, which moeforge does not read",
                                             where, t.name, ggml_type_name(t.type)));
    if (!ggml_row_bytes(uint32_t(t.type), uint64_t(t.cols())))
        throw std::runtime_error(fmt::format("{}: tensor '{}': rows of {} values are not whole {} blocks",
                                             where, t.name, t.cols(), ggml_type_name(t.type)));
}

}  // namespace

void validate_weights(const DeepSeekV3Config& c, const ModelWeights& w, const std::string& where) {
    const int64_t D = c.hidden, H = c.n_heads;
    check(w.token_embd, {c.vocab_size, D}, "token embedding", where);
    check(w.output_norm, {D}, "output norm", where);
    check(w.output, {c.vocab_size, D}, "output (lm_head)", where);
    if (int64_t(w.layers.size()) != c.n_layers)
        throw std::runtime_error(
            fmt::format("{}: {} layers bound, the config has {}", where, w.layers.size(), c.n_layers));
    for (int64_t i = 0; i < c.n_layers; ++i) {
        const LayerWeights& l = w.layers[size_t(i)];
        const std::string lw = fmt::format("layer {} ", i);
        check(l.attn_norm, {D}, lw + "attn_norm", where);
        check(l.q_a, {c.q_lora_rank, D}, lw + "q_a", where);
        check(l.q_a_norm, {c.q_lora_rank}, lw + "q_a_norm", where);
        check(l.q_b, {H * c.qk_head_dim(), c.q_lora_rank}, lw + "q_b", where);
        check(l.kv_a, {c.kv_lora_rank + c.qk_rope, D}, lw + "kv_a", where);
        check(l.kv_a_norm, {c.kv_lora_rank}, lw + "kv_a_norm", where);
        if (!l.kv_b.empty() || (l.k_b.empty() && l.v_b.empty())) {
            check(l.kv_b, {H * (c.qk_nope + c.v_head), c.kv_lora_rank}, lw + "kv_b", where);
        } else {
            check(l.k_b, {H, c.kv_lora_rank, c.qk_nope}, lw + "k_b", where);
            check(l.v_b, {H, c.v_head, c.kv_lora_rank}, lw + "v_b", where);
        }
        check(l.o, {D, H * c.v_head}, lw + "o", where);
        check(l.ffn_norm, {D}, lw + "ffn_norm", where);
        if (!c.is_moe_layer(i)) {
            check(l.ffn_gate, {c.dense_inter, D}, lw + "ffn_gate", where);
            check(l.ffn_up, {c.dense_inter, D}, lw + "ffn_up", where);
            check(l.ffn_down, {D, c.dense_inter}, lw + "ffn_down", where);
            continue;
        }
        check(l.router, {c.n_experts, D}, lw + "router", where);
        check(l.router_bias, {c.n_experts}, lw + "router bias", where);
        if (int64_t(l.exp_gate.size()) != c.n_experts || l.exp_up.size() != l.exp_gate.size() ||
            l.exp_down.size() != l.exp_gate.size())
            throw std::runtime_error(fmt::format("{}: layer {}: {} experts bound, the config has {}", where,
                                                 i, l.exp_gate.size(), c.n_experts));
        for (int64_t e = 0; e < c.n_experts; ++e) {
            const std::string ew = fmt::format("{}expert {} ", lw, e);
            check(l.exp_gate[size_t(e)], {c.moe_inter, D}, ew + "gate", where);
            check(l.exp_up[size_t(e)], {c.moe_inter, D}, ew + "up", where);
            check(l.exp_down[size_t(e)], {D, c.moe_inter}, ew + "down", where);
        }
        if (c.n_shared_experts > 0) {
            const int64_t S = c.n_shared_experts * c.moe_inter;
            check(l.shexp_gate, {S, D}, lw + "shared gate", where);
            check(l.shexp_up, {S, D}, lw + "shared up", where);
            check(l.shexp_down, {D, S}, lw + "shared down", where);
        }
    }
}

}  // namespace mf
