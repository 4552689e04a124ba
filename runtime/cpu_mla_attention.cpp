#include "runtime/cpu_mla_attention.hpp"

#include <algorithm>
#include <memory>
#include <stdexcept>

#include "runtime/cpu_mla_latent_attend.hpp"
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

constexpr int64_t kQueryChunk = 16;  // queries per absorb / attend / expand round of a head group

// One worker's [q_lat | q_pe] and o_lat rows for a head group and query chunk: [query][head][...].
struct HeadScratch {
    std::vector<float> q;
    std::vector<float> o_lat;
};

HeadScratch& head_scratch() {
    thread_local HeadScratch s;
    return s;
}

// The calling thread's activations of one forward: normed rows, q LoRA, queries, new latent rows, head outputs.
// Grown on demand and kept, so a decode step allocates nothing.
struct ForwardBuffers {
    std::vector<float> xn, cq, q, ckv, o;
};

float* grown(std::vector<float>& v, int64_t n) {
    if (v.size() < size_t(n)) v.resize(size_t(n));
    return v.data();
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
    // Per head: W_UK as [kv_lora][nope] (q_nope -> latent), W_UV as [v_head][kv_lora] (latent -> value).
    const auto uk = std::make_unique<WeightMatrix[]>(size_t(heads_));
    const auto uv = std::make_unique<WeightMatrix[]>(size_t(heads_));
    std::vector<MatrixSrc> uk_src, uv_src;
    for (int64_t h = 0; h < heads_; ++h) {
        if (!w.k_b.empty()) {
            weight_matrix(w.k_b, uk[size_t(h)], h * kv_lora_, kv_lora_);
            weight_matrix(w.v_b, uv[size_t(h)], h * v_head_, v_head_);
        } else {
            const int64_t r0 = h * (nope_ + v_head_);
            weight_matrix_transposed(w.kv_b, uk[size_t(h)], r0, nope_);  // W_UK[h]^T
            weight_matrix(w.kv_b, uv[size_t(h)], r0 + nope_, v_head_);
        }
        uk_src.push_back(uk[size_t(h)].src);
        uv_src.push_back(uv[size_t(h)].src);
    }
    uk_ = HeadGemv::pack(uk_src, type);
    uv_ = HeadGemv::pack(uv_src, type);
}

size_t CpuMlaAttention::weight_bytes() const {
    size_t b = q_a_.weight_bytes() + (q_b_.empty() ? 0 : q_b_.weight_bytes()) + kv_a_.weight_bytes() + o_.weight_bytes();
    return b + uk_.weight_bytes() + uv_.weight_bytes();
}

void CpuMlaAttention::forward(const float* x, int64_t m, int64_t pos0, LatentKvCache& kv, int64_t layer,
                           const RopeTable& rope, ThreadPool& pool, float* out) const {
    const int64_t qk = nope_ + rope_dim_, row = kv_lora_ + rope_dim_;
    if (kv.row_size() != row || pos0 + m > kv.capacity())
        throw std::logic_error("CpuMlaAttention: cache shape or capacity does not fit the chunk");
    thread_local ForwardBuffers fb;
    float* xn = grown(fb.xn, m * hidden_);
    for (int64_t i = 0; i < m; ++i) rms_norm_f32(x + i * hidden_, attn_norm_.data(), hidden_, eps_, xn + i * hidden_);

    // Queries: [m][H * (nope + rope)].
    float* q = grown(fb.q, m * heads_ * qk);
    if (q_lora_ > 0) {
        float* cq = grown(fb.cq, m * q_lora_);
        q_a_.forward(xn, m, cq, &pool);
        for (int64_t i = 0; i < m; ++i) rms_norm_f32(cq + i * q_lora_, q_a_norm_.data(), q_lora_, eps_, cq + i * q_lora_);
        q_b_.forward(cq, m, q, &pool);
    } else {
        q_a_.forward(xn, m, q, &pool);
    }
    // Latent KV rows of the new positions go straight into the cache.
    float* ckv = grown(fb.ckv, m * row);
    kv_a_.forward(xn, m, ckv, &pool);
    for (int64_t i = 0; i < m; ++i) {
        float* dst = kv.row(layer, pos0 + i);
        const float* src = ckv + i * row;
        rms_norm_f32(src, kv_a_norm_.data(), kv_lora_, eps_, dst);
        for (int64_t j = 0; j < rope_dim_; ++j) dst[kv_lora_ + j] = src[kv_lora_ + j];
        rope.apply(dst + kv_lora_, 1, rope_dim_, pos0 + i);
        rope.apply(q + i * heads_ * qk + nope_, heads_, qk, pos0 + i);
    }

    // Per group of heads and chunk of queries: absorb W_UK into the queries, attend over the latent rows, expand
    // through W_UV. Each worker owns a contiguous range of heads; small problems (tiny models, one worker) run on
    // the calling thread.
    float* o = grown(fb.o, m * heads_ * v_head_);
    const int64_t macs = m * heads_ * (2 * kv_lora_ * (nope_ + v_head_) + (pos0 + m) * (row + kv_lora_));
    const int workers = pool.size() == 1 || macs < (int64_t(1) << 18) ? 1 : pool.size();
    const float* rows = kv.row(layer, 0);
    const auto heads_of = [&](int w) {
        const int64_t h0 = heads_ * w / workers, h1 = heads_ * (w + 1) / workers;
        if (h0 >= h1) return;
        HeadScratch& s = head_scratch();
        const int64_t gmax = std::min<int64_t>(kLatentAttendMaxHeads, h1 - h0), qc = std::min(m, kQueryChunk);
        if (s.q.size() < size_t(qc * gmax * row)) s.q.resize(size_t(qc * gmax * row));
        if (s.o_lat.size() < size_t(qc * gmax * kv_lora_)) s.o_lat.resize(size_t(qc * gmax * kv_lora_));
        for (int64_t g0 = h0; g0 < h1; g0 += gmax) {
            const int64_t gn = std::min(gmax, h1 - g0);
            for (int64_t i0 = 0; i0 < m; i0 += qc) {
                const int64_t mq = std::min(qc, m - i0);
                const float* qi = q + i0 * heads_ * qk;
                for (int64_t g = 0; g < gn; ++g) {
                    const int64_t h = g0 + g;
                    float* dst = s.q.data() + g * row;
                    uk_.forward(h, qi + h * qk, heads_ * qk, mq, dst, gn * row);
                    for (int64_t i = 0; i < mq; ++i)
                        std::copy_n(qi + i * heads_ * qk + h * qk + nope_, rope_dim_, dst + i * gn * row + kv_lora_);
                }
                for (int64_t i = 0; i < mq; ++i)
                    attend_latent(s.q.data() + i * gn * row, row, int(gn), rows, row, pos0 + i0 + i + 1, kv_lora_,
                                  scale_, s.o_lat.data() + i * gn * kv_lora_, kv_lora_);
                for (int64_t g = 0; g < gn; ++g)
                    uv_.forward(g0 + g, s.o_lat.data() + g * kv_lora_, gn * kv_lora_, mq,
                                o + i0 * heads_ * v_head_ + (g0 + g) * v_head_, heads_ * v_head_);
            }
        }
    };
    if (workers == 1)
        heads_of(0);
    else
        pool.run([&](int w) { heads_of(w); });
    o_.forward(o, m, out, &pool);
}

}  // namespace mf
