#include "runtime/gpu_layer_weights.hpp"

#include <stdexcept>
#include <vector>

#include "model/float_formats.hpp"
#include "model/tensor_view.hpp"
#include "runtime/thread_pool.hpp"
#include "runtime/weight_matrix.hpp"

namespace mf {
namespace {

// dst[r][c] (dst_cols per row) = src row (row0 + r) of v, dequantised, as bf16 (transposed: dst[c][r]).
void rows_to_bf16(const TensorView& v, int64_t row0, int64_t rows, uint16_t* dst, bool transpose, ThreadPool& pool) {
    if (v.empty()) throw std::logic_error("rows_to_bf16: empty tensor");
    if (row0 < 0 || rows < 0 || row0 + rows > v.rows())
        throw std::runtime_error("tensor " + v.name + ": rows out of range for the GPU upload");
    const int64_t cols = v.cols();
    const int workers = pool.size();
    pool.run([&](int w) {
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t r = w; r < rows; r += workers) {
            dequantize_row(v, row0 + r, row.data());
            for (int64_t c = 0; c < cols; ++c)
                dst[transpose ? c * rows + r : r * cols + c] = f32_to_bf16(row[size_t(c)]);
        }
    });
}

DeviceBuffer upload(const std::vector<uint16_t>& v) {
    DeviceBuffer b(v.size() * 2);
    b.upload(v.data(), v.size() * 2);
    return b;
}

DeviceBuffer upload_f32(const std::vector<float>& v) {
    DeviceBuffer b(v.size() * 4);
    b.upload(v.data(), v.size() * 4);
    return b;
}

DeviceBuffer upload_rows(const TensorView& v, ThreadPool& pool) {
    std::vector<uint16_t> h(size_t(v.numel()));
    rows_to_bf16(v, 0, v.rows(), h.data(), false, pool);
    return upload(h);
}

// [gate; up] stacked as one [2 inter][hidden] matrix: one GEMM computes both.
DeviceBuffer upload_stacked(const TensorView& a, const TensorView& b, ThreadPool& pool) {
    if (a.rows() != b.rows() || a.cols() != b.cols())
        throw std::runtime_error("tensors " + a.name + " and " + b.name + " differ in shape");
    std::vector<uint16_t> h(size_t(a.numel() + b.numel()));
    rows_to_bf16(a, 0, a.rows(), h.data(), false, pool);
    rows_to_bf16(b, 0, b.rows(), h.data() + a.numel(), false, pool);
    return upload(h);
}

}  // namespace

DeviceBuffer upload_bf16_matrix(const TensorView& v, ThreadPool& pool) {
    return upload_rows(v, pool);
}

GpuLayerWeights upload_gpu_layer(const DeepSeekV3Config& c, const LayerWeights& w, int64_t layer, ThreadPool& pool) {
    GpuLayerWeights g;
    const int64_t H = c.n_heads, lora = c.kv_lora_rank, nope = c.qk_nope, vh = c.v_head;
    g.attn_norm = upload_f32(weight_vector(w.attn_norm));
    g.kv_a_norm = upload_f32(weight_vector(w.kv_a_norm));
    if (c.q_lora_rank > 0) {
        g.q_a_norm = upload_f32(weight_vector(w.q_a_norm));
        g.q_a = upload_rows(w.q_a, pool);
        g.q_b = upload_rows(w.q_b, pool);
    } else {
        g.q_a = upload_rows(w.q_b.empty() ? w.q_a : w.q_b, pool);
    }
    g.kv_a = upload_rows(w.kv_a, pool);
    g.o = upload_rows(w.o, pool);
    std::vector<uint16_t> uk(size_t(H * lora * nope)), uv(size_t(H * vh * lora));
    for (int64_t h = 0; h < H; ++h) {
        uint16_t* k = uk.data() + h * lora * nope;
        uint16_t* v = uv.data() + h * vh * lora;
        if (!w.k_b.empty()) {
            rows_to_bf16(w.k_b, h * lora, lora, k, false, pool);  // [kv_lora][nope] as stored
            rows_to_bf16(w.v_b, h * vh, vh, v, false, pool);      // [v_head][kv_lora]
        } else {
            const int64_t r0 = h * (nope + vh);
            rows_to_bf16(w.kv_b, r0, nope, k, true, pool);        // W_UK[h] is [nope][kv_lora]: transposed
            rows_to_bf16(w.kv_b, r0 + nope, vh, v, false, pool);
        }
    }
    g.uk = upload(uk);
    g.uv = upload(uv);
    g.ffn_norm = upload_f32(weight_vector(w.ffn_norm));
    g.moe = c.is_moe_layer(layer);
    if (!g.moe) {
        g.gate_up = upload_stacked(w.ffn_gate, w.ffn_up, pool);
        g.down = upload_rows(w.ffn_down, pool);
        g.ffn_inter = w.ffn_gate.rows();
    } else {
        if (!w.shexp_gate.empty()) {
            g.gate_up = upload_stacked(w.shexp_gate, w.shexp_up, pool);
            g.down = upload_rows(w.shexp_down, pool);
            g.ffn_inter = w.shexp_gate.rows();
        }
        g.router = upload_f32(dequantize(w.router));
        if (!w.router_bias.empty()) g.router_bias = upload_f32(weight_vector(w.router_bias));
    }
    for (const DeviceBuffer* b : {&g.attn_norm, &g.q_a_norm, &g.kv_a_norm, &g.q_a, &g.q_b, &g.kv_a, &g.uk, &g.uv, &g.o,
                                  &g.ffn_norm, &g.gate_up, &g.down, &g.router, &g.router_bias})
        g.bytes += b->bytes();
    return g;
}

uint64_t gpu_layer_bytes(const DeepSeekV3Config& c, int64_t layer) {
    const uint64_t H = uint64_t(c.n_heads), D = uint64_t(c.hidden);
    const uint64_t qk = uint64_t(c.qk_head_dim()), lora = uint64_t(c.kv_lora_rank), rope = uint64_t(c.qk_rope);
    uint64_t bf16 = (c.q_lora_rank > 0 ? D * uint64_t(c.q_lora_rank) + uint64_t(c.q_lora_rank) * H * qk : D * H * qk) +
                    D * (lora + rope) + H * lora * uint64_t(c.qk_nope + c.v_head) + H * uint64_t(c.v_head) * D;
    uint64_t f32 = 3 * D + uint64_t(c.q_lora_rank + c.kv_lora_rank);
    if (!c.is_moe_layer(layer)) {
        bf16 += 3 * D * uint64_t(c.dense_inter);
    } else {
        bf16 += 3 * D * uint64_t(c.moe_inter * c.n_shared_experts);
        f32 += uint64_t(c.n_experts) * (D + 1);
    }
    return 2 * bf16 + 4 * f32;
}

}  // namespace mf
