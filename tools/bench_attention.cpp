#include "tools/bench_attention.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>

#include "codegen/kernel_cache.hpp"
#include "model/deepseek_v3_weights.hpp"
#include "model/synthetic_model.hpp"
#include "runtime/cpu_mla_attention.hpp"
#include "runtime/cpu_topology.hpp"
#include "runtime/thread_pool.hpp"
#include "runtime/weight_matrix.hpp"

namespace mf {
namespace {

// Owned tensors of one random attention layer (bf16 projections, unit norms), viewed as model/ weights.
struct RandomLayer {
    std::vector<std::vector<uint16_t>> bf16;
    std::vector<std::vector<float>> f32;
    LayerWeights w;

    TensorView bf16_tensor(std::vector<int64_t> shape, std::mt19937& rng) {
        int64_t n = 1;
        for (int64_t s : shape) n *= s;
        // Uniform with the variance of 1/fan_in: activations stay O(1); the values do not change the timing.
        const float a = std::sqrt(3.0f / float(shape.back()));
        std::uniform_real_distribution<float> d(-a, a);
        auto& v = bf16.emplace_back(static_cast<size_t>(n));
        for (auto& x : v) {
            const float f = d(rng);
            uint32_t u;
            std::memcpy(&u, &f, 4);
            x = uint16_t(u >> 16);
        }
        TensorView t;
        t.type = GgmlType::bf16;
        t.shape = std::move(shape);
        t.data = v.data();
        t.bytes = uint64_t(n) * 2;
        return t;
    }
    TensorView ones(int64_t n) {
        auto& v = f32.emplace_back(static_cast<size_t>(n), 1.0f);
        TensorView t;
        t.type = GgmlType::f32;
        t.shape = {n};
        t.data = v.data();
        t.bytes = uint64_t(n) * 4;
        return t;
    }
};

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

AttentionBenchResult run_attention_bench(const AttentionBenchOptions& o) {
    DeepSeekV3Config c;
    try {
        c = preset_config(o.preset);
    } catch (const std::invalid_argument& e) {
        throw std::runtime_error(std::string("--preset: ") + e.what());
    }
    const ComputeType type = parse_compute_type(o.dense);
    if (type != ComputeType::bf16 && type != ComputeType::int8)
        throw std::runtime_error("--dense " + o.dense + ": expected bf16 or int8");
    std::vector<int> cpus = read_cpu_topology().one_pu_per_core();
    if (o.threads > int(cpus.size()))
        throw std::runtime_error(fmt::format("--threads {}: this process may run on {} cores", o.threads, cpus.size()));
    if (o.threads > 0) cpus.resize(size_t(o.threads));
    ThreadPool pool(cpus);

    RandomLayer l;
    std::mt19937 rng(1);
    const int64_t D = c.hidden, H = c.n_heads, qk = c.qk_nope + c.qk_rope, row = c.kv_lora_rank + c.qk_rope;
    l.w.attn_norm = l.ones(D);
    l.w.kv_a_norm = l.ones(c.kv_lora_rank);
    if (c.q_lora_rank > 0) {
        l.w.q_a_norm = l.ones(c.q_lora_rank);
        l.w.q_a = l.bf16_tensor({c.q_lora_rank, D}, rng);
        l.w.q_b = l.bf16_tensor({H * qk, c.q_lora_rank}, rng);
    } else {
        l.w.q_a = l.bf16_tensor({H * qk, D}, rng);
    }
    l.w.kv_a = l.bf16_tensor({row, D}, rng);
    l.w.k_b = l.bf16_tensor({H, c.kv_lora_rank, c.qk_nope}, rng);
    l.w.v_b = l.bf16_tensor({H, c.v_head, c.kv_lora_rank}, rng);
    l.w.o = l.bf16_tensor({D, H * c.v_head}, rng);
    KernelCache kernels;
    const CpuMlaAttention attn(c, l.w, type, kernels);
    const double bytes = double(attn.weight_bytes());

    int64_t positions = o.prefill + 1;
    for (int64_t n : o.ctx) positions = std::max(positions, n + int64_t(o.steps));
    const RopeTable rope(RopeParams{c.qk_rope, c.rope_theta, c.yarn, c.yarn_factor, c.yarn_original_ctx,
                                    c.yarn_beta_fast, c.yarn_beta_slow, c.yarn_mscale, c.yarn_mscale_all_dim},
                         positions);
    LatentKvCache kv(1, positions, c.kv_lora_rank, c.qk_rope);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(std::max<int64_t>(o.prefill, 1) * D)), out(x.size());
    for (auto& v : x) v = nd(rng);

    AttentionBenchResult r;
    r.header = fmt::format(
        "attention layer ({}: hidden {}, {} heads, q_lora {}, latent {} + rope {}, v {}), dense {}, {} thread(s), "
        "{:.1f} MB of packed weights",
        o.preset, D, H, c.q_lora_rank, c.kv_lora_rank, c.qk_rope, c.v_head, o.dense, pool.size(), bytes / 1e6);
    if (o.prefill > 0) {
        attn.forward(x.data(), o.prefill, 0, kv, 0, rope, pool, out.data());  // warm-up (packing faults, scratch)
        const auto t0 = std::chrono::steady_clock::now();
        attn.forward(x.data(), o.prefill, 0, kv, 0, rope, pool, out.data());
        const double ms = ms_since(t0);
        r.rows.push_back({"prefill", o.prefill, o.prefill, ms / double(o.prefill), bytes / (ms * 1e6)});
    }
    for (int64_t n : o.ctx) {
        // Cache rows before the step: random latent rows (unit RMS like the normed c_kv; random k_pe).
        for (int64_t t = 0; t < n; ++t) {
            float* dst = kv.row(0, t);
            for (int64_t j = 0; j < row; ++j) dst[j] = nd(rng);
        }
        double best = 1e30;
        for (int s = 0; s < std::max(1, o.steps); ++s) {
            const auto t0 = std::chrono::steady_clock::now();
            attn.forward(x.data(), 1, n - 1 + s, kv, 0, rope, pool, out.data());
            best = std::min(best, ms_since(t0));
        }
        r.rows.push_back({"decode", 1, n, best, bytes / (best * 1e6)});
    }
    // The four big projections alone at m = 1 (packed again from the same tensors): what a decode step cannot go
    // below; the rest of the step is the absorbed per-head attention, norms and rope.
    {
        std::vector<Linear> proj;
        for (const TensorView* t : {&l.w.q_a, &l.w.q_b, &l.w.kv_a, &l.w.o}) {
            if (t->empty()) continue;
            WeightMatrix wm;
            weight_matrix(*t, wm);
            proj.push_back(Linear::pack(wm.src, type, &kernels));
        }
        std::vector<float> src(size_t(c.n_heads * c.v_head + D)), dst(size_t(H * qk + D));
        for (auto& v : src) v = nd(rng);
        double proj_bytes = 0, best = 1e30;
        for (const Linear& p : proj) proj_bytes += double(p.weight_bytes());
        for (int s = 0; s < std::max(1, o.steps); ++s) {
            const auto t0 = std::chrono::steady_clock::now();
            for (const Linear& p : proj) p.forward(src.data(), 1, dst.data(), &pool);
            best = std::min(best, ms_since(t0));
        }
        r.rows.push_back({"projections", 1, 0, best, proj_bytes / (best * 1e6)});
    }
    return r;
}

std::string render_attention_bench(const AttentionBenchResult& r) {
    std::string s = r.header + "\n";
    for (const auto& row : r.rows) {
        if (row.phase == "prefill")
            s += fmt::format("prefill {:6} tokens:    {:8.3f} ms/token ({:.1f} GB/s of weights per chunk)\n", row.tokens,
                             row.ms_per_token, row.weight_gb_s);
        else if (row.phase == "decode")
            s += fmt::format("decode at ctx {:6}: {:8.3f} ms/token ({:.1f} GB/s of weights)\n", row.ctx,
                             row.ms_per_token, row.weight_gb_s);
        else
            s += fmt::format("q_a, q_b, kv_a, o alone: {:8.3f} ms/token ({:.1f} GB/s of their weights)\n",
                             row.ms_per_token, row.weight_gb_s);
    }
    return s;
}

}  // namespace mf
