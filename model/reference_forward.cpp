#include "model/reference_forward.hpp"

#include <limits>

#include <fmt/core.h>

#include <cmath>
#include <stdexcept>

#include "model/moe_router.hpp"
#include "model/reference_ops.hpp"

namespace mf {
namespace {

using Vec = std::vector<float>;

// Same as matmul(), for a plain fp32 matrix [rows][cols].
void matmul_f32(const Vec& w, int64_t rows, int64_t cols, const float* x, int64_t T, float* y) {
    for (int64_t t = 0; t < T; ++t)
        for (int64_t r = 0; r < rows; ++r) {
            double acc = 0;
            for (int64_t k = 0; k < cols; ++k)
                acc += double(w[size_t(r * cols + k)]) * double(x[t * cols + k]);
            y[t * rows + r] = float(acc);
        }
}

// down(SiLU(gate(x)) * up(x)) for T tokens; out is [T][D].
void ffn(const TensorView& gate, const TensorView& up, const TensorView& down, const float* x, int64_t T,
         float* out) {
    const int64_t inter = gate.rows();
    Vec g(size_t(T * inter)), u(size_t(T * inter));
    matmul(gate, x, T, g.data());
    matmul(up, x, T, u.data());
    for (size_t i = 0; i < g.size(); ++i) g[i] = silu(g[i]) * u[i];
    matmul(down, g.data(), T, out);
}

// Multi-head latent attention, not absorbed: decompress per-head keys and values from the latent.
void attention(const DeepSeekV3Config& c, const LayerWeights& l, const Vec& h, int64_t T, const Vec& inv_freq,
               float* out) {
    const int64_t H = c.n_heads, nope = c.qk_nope, rope = c.qk_rope, qk = c.qk_head_dim(), vd = c.v_head;
    const int64_t ql = c.q_lora_rank, kvl = c.kv_lora_rank;
    const float cs = rope_cos_sin_scale(c);

    // q: x -> q_a -> RMSNorm -> q_b: [T][H][nope | rope]
    Vec cq(size_t(T * ql)), q(size_t(T * H * qk));
    matmul(l.q_a, h.data(), T, cq.data());
    const Vec qn = dequantize(l.q_a_norm);
    for (int64_t t = 0; t < T; ++t)
        rms_norm(&cq[size_t(t * ql)], qn.data(), ql, c.rms_eps, &cq[size_t(t * ql)]);
    matmul(l.q_b, cq.data(), T, q.data());

    // kv: x -> kv_a = [c_kv | k_pe]; c_kv -> RMSNorm -> kv_b = per head [k_nope | v]
    Vec kva(size_t(T * (kvl + rope))), ckv(size_t(T * kvl)), kpe(size_t(T * rope));
    matmul(l.kv_a, h.data(), T, kva.data());
    const Vec kvn = dequantize(l.kv_a_norm);
    for (int64_t t = 0; t < T; ++t) {
        rms_norm(&kva[size_t(t * (kvl + rope))], kvn.data(), kvl, c.rms_eps, &ckv[size_t(t * kvl)]);
        for (int64_t i = 0; i < rope; ++i)
            kpe[size_t(t * rope + i)] = kva[size_t(t * (kvl + rope) + kvl + i)];
    }
    const Vec kvb_w = dense_kv_b(c, l);
    Vec kvb(size_t(T * H * (nope + vd)));
    matmul_f32(kvb_w, H * (nope + vd), kvl, ckv.data(), T, kvb.data());

    // rope on q_pe (every head) and on the one shared k_pe, at position t
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t hd = 0; hd < H; ++hd)
            rope_interleaved(&q[size_t((t * H + hd) * qk + nope)], rope, t, inv_freq, cs);
        rope_interleaved(&kpe[size_t(t * rope)], rope, t, inv_freq, cs);
    }

    // causal softmax attention per head: score = (q_nope.k_nope + q_pe.k_pe) * scale
    const float scale = c.attention_scale();
    Vec o(size_t(T * H * vd), 0.0f), p(static_cast<size_t>(T));
    for (int64_t hd = 0; hd < H; ++hd)
        for (int64_t i = 0; i < T; ++i) {
            const float* qi = &q[size_t((i * H + hd) * qk)];
            float mx = -INFINITY;
            for (int64_t j = 0; j <= i; ++j) {
                const float* kj = &kvb[size_t((j * H + hd) * (nope + vd))];
                double s = 0;
                for (int64_t d = 0; d < nope; ++d) s += double(qi[d]) * double(kj[d]);
                for (int64_t d = 0; d < rope; ++d)
                    s += double(qi[nope + d]) * double(kpe[size_t(j * rope + d)]);
                p[size_t(j)] = float(s) * scale;
                mx = std::max(mx, p[size_t(j)]);
            }
            double sum = 0;
            for (int64_t j = 0; j <= i; ++j) sum += (p[size_t(j)] = std::exp(p[size_t(j)] - mx));
            float* oi = &o[size_t((i * H + hd) * vd)];
            for (int64_t j = 0; j <= i; ++j) {
                const float* vj = &kvb[size_t((j * H + hd) * (nope + vd) + nope)];
                const float pj = float(p[size_t(j)] / sum);
                for (int64_t d = 0; d < vd; ++d) oi[d] += pj * vj[d];
            }
        }
    matmul(l.o, o.data(), T, out);
}

// The MoE block for T tokens: per token, route, run the chosen experts and the shared expert.
// margins (may be null): per token, lowered to this layer's routing margin where that is smaller.
void moe(const DeepSeekV3Config& c, const LayerWeights& l, const Vec& h, int64_t T, float* out, float* margins) {
    const int64_t D = c.hidden;
    Vec logits(size_t(T * c.n_experts));
    matmul(l.router, h.data(), T, logits.data());
    const Vec bias = dequantize(l.router_bias);
    Vec y(static_cast<size_t>(D));
    for (int64_t t = 0; t < T; ++t) {
        const float* x = &h[size_t(t * D)];
        float* dst = out + t * D;
        std::fill(dst, dst + D, 0.0f);
        const RoutedExperts r = route_token(c, &logits[size_t(t * c.n_experts)], bias.data());
        if (margins) margins[t] = std::min(margins[t], r.margin);
        for (size_t k = 0; k < r.ids.size(); ++k) {
            const auto e = size_t(r.ids[k]);
            ffn(l.exp_gate[e], l.exp_up[e], l.exp_down[e], x, 1, y.data());
            for (int64_t d = 0; d < D; ++d) dst[d] += r.weights[k] * y[size_t(d)];
        }
        if (c.n_shared_experts > 0) {
            ffn(l.shexp_gate, l.shexp_up, l.shexp_down, x, 1, y.data());
            for (int64_t d = 0; d < D; ++d) dst[d] += y[size_t(d)];
        }
    }
}

}  // namespace

std::vector<float> dense_kv_b(const DeepSeekV3Config& c, const LayerWeights& l) {
    if (!l.kv_b.empty()) return dequantize(l.kv_b);
    const int64_t H = c.n_heads, nope = c.qk_nope, vd = c.v_head, kvl = c.kv_lora_rank;
    const Vec kb = dequantize(l.k_b), vb = dequantize(l.v_b);  // [H][kvl][nope], [H][vd][kvl]
    Vec w(size_t(H * (nope + vd) * kvl));
    for (int64_t h = 0; h < H; ++h) {
        for (int64_t i = 0; i < nope; ++i)
            for (int64_t r = 0; r < kvl; ++r)
                w[size_t((h * (nope + vd) + i) * kvl + r)] = kb[size_t((h * kvl + r) * nope + i)];
        for (int64_t j = 0; j < vd; ++j)
            for (int64_t r = 0; r < kvl; ++r)
                w[size_t((h * (nope + vd) + nope + j) * kvl + r)] = vb[size_t((h * vd + j) * kvl + r)];
    }
    return w;
}

std::vector<float> reference_forward(const DeepSeekV3Config& c, const ModelWeights& w,
                                     const std::vector<int32_t>& tokens, ReferenceTrace* trace) {
    const int64_t T = int64_t(tokens.size()), D = c.hidden;
    Vec x(size_t(T * D)), h(size_t(T * D)), delta(size_t(T * D));
    for (int64_t t = 0; t < T; ++t) {
        if (tokens[size_t(t)] < 0 || tokens[size_t(t)] >= c.vocab_size)
            throw std::invalid_argument(fmt::format("token {} at position {} is outside the vocabulary of {}",
                                                    tokens[size_t(t)], t, c.vocab_size));
        dequantize_row(w.token_embd, tokens[size_t(t)], &x[size_t(t * D)]);
    }
    const Vec inv_freq = yarn_inv_freq(c);
    if (trace) trace->route_margin.assign(size_t(T), std::numeric_limits<float>::infinity());
    for (int64_t li = 0; li < c.n_layers; ++li) {
        const LayerWeights& l = w.layers[size_t(li)];
        // attention block: x += o(MLA(RMSNorm(x)))
        const Vec an = dequantize(l.attn_norm);
        for (int64_t t = 0; t < T; ++t)
            rms_norm(&x[size_t(t * D)], an.data(), D, c.rms_eps, &h[size_t(t * D)]);
        attention(c, l, h, T, inv_freq, delta.data());
        for (size_t i = 0; i < x.size(); ++i) x[i] += delta[i];
        // FFN block: x += FFN(RMSNorm(x)), dense or MoE
        const Vec fn = dequantize(l.ffn_norm);
        for (int64_t t = 0; t < T; ++t)
            rms_norm(&x[size_t(t * D)], fn.data(), D, c.rms_eps, &h[size_t(t * D)]);
        if (c.is_moe_layer(li))
            moe(c, l, h, T, delta.data(), trace ? trace->route_margin.data() : nullptr);
        else
            ffn(l.ffn_gate, l.ffn_up, l.ffn_down, h.data(), T, delta.data());
        for (size_t i = 0; i < x.size(); ++i) x[i] += delta[i];
        if (trace) {
            double ss = 0;
            for (float v : x) ss += double(v) * v;
            trace->layer_rms.push_back(float(std::sqrt(ss / double(x.size()))));
        }
    }
    const Vec on = dequantize(w.output_norm);
    for (int64_t t = 0; t < T; ++t) rms_norm(&x[size_t(t * D)], on.data(), D, c.rms_eps, &h[size_t(t * D)]);
    Vec logits(size_t(T * c.vocab_size));
    matmul(w.output, h.data(), T, logits.data());
    return logits;
}

}  // namespace mf
