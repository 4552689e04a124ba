#include "runtime/cpu_mla_attention.hpp"

#include <stdexcept>

#include "runtime/thread_pool.hpp"
#include "runtime/vector_ops.hpp"
#include "runtime/weight_matrix.hpp"

namespace mf {
namespace {

Linear pack_view(const TensorView& v, ComputeType type, KernelCache& cache, int64_t row0 = 0, int64_t rows = -1) {
    WeightMatrix wm;
    weight_matrix(v, wm, row0, rows);
    return Linear::pack(wm.src, type, &cache);
}

struct HeadScratch {
    std::vector<float> q;       // [m][kv_lora + rope]: [q_lat | q_pe] per query
    std::vector<float> scores;  // [context]
    std::vector<float> o_lat;   // [m][kv_lora]
};

HeadScratch& head_scratch() {
    thread_local HeadScratch s;
    return s;
}

}  // namespace

CpuMlaAttention::CpuMlaAttention(const DeepSeekV3Config& c, const LayerWeights& w, ComputeType type, KernelCache& cache)
    : hidden_(c.hidden),
      heads_(c.n_heads),
      nope_(c.qk_nope),
      rope_dim_(c.qk_rope),
      v_head_(c.v_head),
      kv_lora_(c.kv_lora_rank),
      q_lora_(c.q_lora_rank),
      eps_(c.rms_eps),
      scale_(c.attention_scale()) {
    attn_norm_ = weight_vector(w.attn_norm);
    kv_a_norm_ = weight_vector(w.kv_a_norm);
    if (q_lora_ > 0) {
        q_a_norm_ = weight_vector(w.q_a_norm);
        q_a_ = pack_view(w.q_a, type, cache);
        q_b_ = pack_view(w.q_b, type, cache);
    } else {
        q_a_ = pack_view(w.q_b.empty() ? w.q_a : w.q_b, type, cache);
    }
    kv_a_ = pack_view(w.kv_a, type, cache);
    o_ = pack_view(w.o, type, cache);
    uk_.resize(size_t(heads_));
    uv_.resize(size_t(heads_));
    for (int64_t h = 0; h < heads_; ++h) {
        WeightMatrix wm;
        if (!w.k_b.empty()) {
            weight_matrix(w.k_b, wm, h * kv_lora_, kv_lora_);  // [kv_lora][nope]
            uk_[size_t(h)] = Linear::pack(wm.src, type, &cache);
            weight_matrix(w.v_b, wm, h * v_head_, v_head_);  // [v_head][kv_lora]
            uv_[size_t(h)] = Linear::pack(wm.src, type, &cache);
        } else {
            const int64_t r0 = h * (nope_ + v_head_);
            weight_matrix_transposed(w.kv_b, wm, r0, nope_);  // W_UK[h]^T: [kv_lora][nope]
            uk_[size_t(h)] = Linear::pack(wm.src, type, &cache);
            weight_matrix(w.kv_b, wm, r0 + nope_, v_head_);  // W_UV[h]: [v_head][kv_lora]
            uv_[size_t(h)] = Linear::pack(wm.src, type, &cache);
        }
    }
}

size_t CpuMlaAttention::weight_bytes() const {
    size_t b = q_a_.weight_bytes() + (q_b_.empty() ? 0 : q_b_.weight_bytes()) + kv_a_.weight_bytes() + o_.weight_bytes();
    for (const auto& l : uk_) b += l.weight_bytes();
    for (const auto& l : uv_) b += l.weight_bytes();
    return b;
}

void CpuMlaAttention::forward(const float* x, int64_t m, int64_t pos0, LatentKvCache& kv, int64_t layer,
                           const RopeTable& rope, ThreadPool& pool, float* out) const {
    const int64_t qk = nope_ + rope_dim_, row = kv_lora_ + rope_dim_;
    if (kv.row_size() != row || pos0 + m > kv.capacity())
        throw std::logic_error("CpuMlaAttention: cache shape or capacity does not fit the chunk");
    std::vector<float> xn(static_cast<size_t>(m * hidden_));
    for (int64_t i = 0; i < m; ++i)
        rms_norm_f32(x + i * hidden_, attn_norm_.data(), hidden_, eps_, xn.data() + i * hidden_);

    // Queries: [m][H * (nope + rope)].
    std::vector<float> q(static_cast<size_t>(m * heads_ * qk));
    if (q_lora_ > 0) {
        std::vector<float> cq(static_cast<size_t>(m * q_lora_));
        q_a_.forward(xn.data(), m, cq.data(), &pool);
        for (int64_t i = 0; i < m; ++i)
            rms_norm_f32(cq.data() + i * q_lora_, q_a_norm_.data(), q_lora_, eps_, cq.data() + i * q_lora_);
        q_b_.forward(cq.data(), m, q.data(), &pool);
    } else {
        q_a_.forward(xn.data(), m, q.data(), &pool);
    }
    // Latent KV rows of the new positions go straight into the cache.
    std::vector<float> ckv(static_cast<size_t>(m * row));
    kv_a_.forward(xn.data(), m, ckv.data(), &pool);
    for (int64_t i = 0; i < m; ++i) {
        float* dst = kv.row(layer, pos0 + i);
        const float* src = ckv.data() + i * row;
        rms_norm_f32(src, kv_a_norm_.data(), kv_lora_, eps_, dst);
        for (int64_t j = 0; j < rope_dim_; ++j) dst[kv_lora_ + j] = src[kv_lora_ + j];
        rope.apply(dst + kv_lora_, 1, rope_dim_, pos0 + i);
        rope.apply(q.data() + i * heads_ * qk + nope_, heads_, qk, pos0 + i);
    }

    // Per head: absorb W_UK into the query, attend over the latent rows, expand through W_UV.
    std::vector<float> o(static_cast<size_t>(m * heads_ * v_head_));
    // Heads are split over the workers; small problems (tiny models, one worker) run on the calling thread.
    const int64_t macs = m * heads_ * (2 * kv_lora_ * (nope_ + v_head_) + (pos0 + m) * (row + kv_lora_));
    const int workers = pool.size() == 1 || macs < (int64_t(1) << 18) ? 1 : pool.size();
    const auto heads_of = [&](int w) {
        HeadScratch& s = head_scratch();
        s.q.resize(size_t(m * row));
        s.o_lat.resize(size_t(m * kv_lora_));
        s.scores.resize(size_t(pos0 + m));
        for (int64_t h = w; h < heads_; h += workers) {
            const float* qh = q.data() + h * qk;
            uk_[size_t(h)].forward(qh, heads_ * qk, m, s.q.data(), row, nullptr);
            for (int64_t i = 0; i < m; ++i)
                for (int64_t j = 0; j < rope_dim_; ++j)
                    s.q[size_t(i * row + kv_lora_ + j)] = qh[i * heads_ * qk + nope_ + j];
            for (int64_t i = 0; i < m; ++i) {
                const int64_t ctx = pos0 + i + 1;
                const float* qi = s.q.data() + i * row;
                for (int64_t t = 0; t < ctx; ++t) s.scores[size_t(t)] = dot_f32(qi, kv.row(layer, t), row) * scale_;
                softmax_f32(s.scores.data(), ctx);
                float* ol = s.o_lat.data() + i * kv_lora_;
                std::fill(ol, ol + kv_lora_, 0.0f);
                for (int64_t t = 0; t < ctx; ++t) axpy_f32(s.scores[size_t(t)], kv.row(layer, t), ol, kv_lora_);
            }
            uv_[size_t(h)].forward(s.o_lat.data(), kv_lora_, m, o.data() + h * v_head_, heads_ * v_head_, nullptr);
        }
    };
    if (workers == 1)
        heads_of(0);
    else
        pool.run([&](int w) { heads_of(w); });
    o_.forward(o.data(), m, out, &pool);
}

}  // namespace mf
