// DeepSeek-V3 weights as typed views into the mapped files, llama2.c style: one struct per layer, a shape
// comment on every tensor (row-major, outermost first; H = heads, D = hidden). Both readers fill the same
// structs.
#pragma once
#include <string>
#include <vector>

#include "model/deepseek_v3_config.hpp"
#include "model/tensor_view.hpp"

namespace mf {

struct LayerWeights {
    TensorView attn_norm;  // [D] f32
    TensorView q_a;        // [q_lora][D]
    TensorView q_a_norm;   // [q_lora] f32
    TensorView q_b;        // [H*(qk_nope+qk_rope)][q_lora]   per head: q_nope rows, then q_pe rows
    TensorView kv_a;       // [kv_lora+qk_rope][D]             c_kv rows, then the shared k_pe rows
    TensorView kv_a_norm;  // [kv_lora] f32
    // Either kv_b (HF, legacy GGUF) or k_b + v_b (MLA GGUF); the unused ones stay empty.
    TensorView kv_b;      // [H*(qk_nope+v_head)][kv_lora]    per head: k_nope rows, then v rows
    TensorView k_b;       // [H][kv_lora][qk_nope]            k_b[h][r][i] = kv_b[h*(nope+v)+i][r]
    TensorView v_b;       // [H][v_head][kv_lora]             v_b[h][j][r] = kv_b[h*(nope+v)+nope+j][r]
    TensorView o;         // [D][H*v_head]
    TensorView ffn_norm;  // [D] f32
    // Dense layers (layer < n_dense_layers):
    TensorView ffn_gate;  // [dense_inter][D]
    TensorView ffn_up;    // [dense_inter][D]
    TensorView ffn_down;  // [D][dense_inter]
    // MoE layers:
    TensorView router;                 // [n_experts][D] (f32 as shipped)
    TensorView router_bias;            // [n_experts] f32, e_score_correction_bias (selection only)
    std::vector<TensorView> exp_gate;  // n_experts x [moe_inter][D]
    std::vector<TensorView> exp_up;    // n_experts x [moe_inter][D]
    std::vector<TensorView> exp_down;  // n_experts x [D][moe_inter]
    TensorView shexp_gate;             // [n_shared*moe_inter][D]
    TensorView shexp_up;               // [n_shared*moe_inter][D]
    TensorView shexp_down;             // [D][n_shared*moe_inter]
};

struct ModelWeights {
    TensorView token_embd;  // [vocab][D]
    std::vector<LayerWeights> layers;
    TensorView output_norm;  // [D] f32
    TensorView output;       // [vocab][D]  lm_head
};

// Checks every tensor has the shape `c` implies, a type moeforge can dequantise and a whole number of blocks
// per row; throws std::runtime_error naming `where`, the tensor, its shape and the expected one.
void validate_weights(const DeepSeekV3Config& c, const ModelWeights& w, const std::string& where);

// Calls f(view) for every non-empty tensor (experts one by one), in a fixed order.
template <class F>
void for_each_tensor(const ModelWeights& w, F&& f) {
    f(w.token_embd);
    for (const auto& l : w.layers) {
        for (const TensorView* t : {&l.attn_norm, &l.q_a, &l.q_a_norm, &l.q_b, &l.kv_a, &l.kv_a_norm, &l.kv_b,
                                    &l.k_b, &l.v_b, &l.o, &l.ffn_norm, &l.ffn_gate, &l.ffn_up, &l.ffn_down,
                                    &l.router, &l.router_bias, &l.shexp_gate, &l.shexp_up, &l.shexp_down})
            if (!t->empty()) f(*t);
        for (size_t e = 0; e < l.exp_gate.size(); ++e) f(l.exp_gate[e]), f(l.exp_up[e]), f(l.exp_down[e]);
    }
    f(w.output_norm);
    f(w.output);
}

}  // namespace mf
