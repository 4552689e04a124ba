#include "runtime/model_bench.hpp"

#include <chrono>
#include <random>
#include <stdexcept>

#include <fmt/core.h>

#include "runtime/generation.hpp"

namespace mf {
namespace {

using clock_type = std::chrono::steady_clock;

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int32_t> d(2, int32_t(std::min<int64_t>(vocab, 100000) - 1));
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = d(rng);
    return t;
}

nlohmann::json stages_json(const StageTimes& s, double tokens) {
    const double k = tokens > 0 ? 1000.0 / tokens : 0;
    return {{"embedding", s.embedding * k}, {"attention", s.attention * k},       {"router", s.router * k},
            {"routed_experts", s.routed_experts * k}, {"shared_expert", s.shared_expert * k},
            {"dense_ffn", s.dense_ffn * k}, {"lm_head", s.lm_head * k},            {"sampling", s.sampling * k},
            {"gpu_layers", s.gpu_layers * k}, {"cpu_waits_gpu", s.cpu_waits_gpu * k},
            {"gpu_waits_cpu", s.gpu_waits_cpu * k}, {"total", s.total() * k}};
}

}  // namespace

ModelBenchResult run_model_bench(ModelRunner& model, const ModelBenchOptions& opt,
                                 const std::function<void(const std::string&)>& progress) {
    if (opt.prompt_lens.empty() || opt.gen < 1) throw std::runtime_error("bench: need a prompt length and --gen >= 1");
    int64_t longest = 0;
    for (int64_t n : opt.prompt_lens) {
        if (n < 1) throw std::runtime_error("bench: --prompt-len values must be positive");
        longest = std::max(longest, n);
    }
    if (std::max(longest, opt.prompt_lens[0] + opt.gen) > model.capacity())
        throw std::runtime_error(fmt::format("bench: prompts of {} tokens plus --gen {} need --ctx >= {}", longest,
                                             opt.gen, std::max(longest, opt.prompt_lens[0] + opt.gen)));
    ModelBenchResult r;
    r.runtime = model.describe();
    r.dram_bytes_per_s = opt.dram_bytes_per_s;
    std::vector<float> logits(static_cast<size_t>(model.vocab()));
    // One untimed warm-up step (first-touch of buffers, JIT already done at load).
    model.reset();
    {
        const auto warm = random_tokens(8, model.vocab(), opt.seed + 99);
        model.forward(warm, logits.data(), 1);
    }
    for (int64_t n : opt.prompt_lens) {
        if (progress) progress(fmt::format("prefill {} tokens", n));
        const auto tokens = random_tokens(n, model.vocab(), opt.seed + uint64_t(n));
        model.reset();
        model.times() = {};
        const auto t0 = clock_type::now();
        model.forward(tokens, logits.data(), 1);
        ModelBenchResult::Prefill p;
        p.tokens = n;
        p.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
        p.tok_s = double(n) / p.seconds;
        p.stages = model.times();
        r.prefill.push_back(p);
    }
    // Decode after the first prompt: greedy, every token timed.
    if (progress) progress(fmt::format("decode {} tokens", opt.gen));
    const auto prompt = random_tokens(opt.prompt_lens[0], model.vocab(), opt.seed + uint64_t(opt.prompt_lens[0]));
    model.reset();
    model.forward(prompt, logits.data(), 1);
    model.times() = {};
    SamplerParams sp;
    sp.temperature = 0;
    Sampler sampler(sp);
    std::vector<int32_t> recent(prompt.begin(), prompt.end());
    const auto t0 = clock_type::now();
    for (int64_t i = 0; i < opt.gen; ++i) {
        int32_t tok;
        {
            StageClock sc(model.times().sampling);
            tok = sampler.sample(logits, recent);
        }
        recent.push_back(tok);
        const int32_t one[1] = {tok};
        model.forward(one, logits.data(), 1);
    }
    r.decode_seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
    r.decode_context = opt.prompt_lens[0];
    r.decode_tokens = opt.gen;
    r.decode_tok_s = double(opt.gen) / r.decode_seconds;
    r.decode_stages = model.times();
    r.routed_bytes_per_token = double(r.decode_stages.routed_bytes) / double(opt.gen);
    if (r.decode_stages.routed_experts > 0)
        r.routed_bytes_per_s = double(r.decode_stages.routed_bytes) / r.decode_stages.routed_experts;
    r.routed_bytes_per_s_step = double(r.decode_stages.routed_bytes) / r.decode_seconds;
    model.reset();
    return r;
}

nlohmann::json model_bench_json(const ModelBenchResult& r) {
    nlohmann::json j;
    nlohmann::json pf = nlohmann::json::object(), stages = nlohmann::json::object();
    for (const auto& p : r.prefill) {
        pf[std::to_string(p.tokens)] = p.tok_s;
        stages["prefill_" + std::to_string(p.tokens)] = stages_json(p.stages, double(p.tokens));
    }
    stages["decode"] = stages_json(r.decode_stages, double(r.decode_tokens));
    j["prefill_tok_s"] = pf;
    j["decode_tok_s"] = r.decode_tok_s;
    j["stages"] = stages;
    j["stage_unit"] = "ms per token";
    j["decode_context"] = r.decode_context;
    j["decode_tokens"] = r.decode_tokens;
    j["routed_bytes_per_token"] = r.routed_bytes_per_token;
    j["routed_bytes_per_s"] = r.routed_bytes_per_s;
    j["routed_bytes_per_s_step"] = r.routed_bytes_per_s_step;
    j["dram_read_bytes_per_s"] = r.dram_bytes_per_s;
    if (r.dram_bytes_per_s > 0) {
        j["routed_dram_share"] = r.routed_bytes_per_s / r.dram_bytes_per_s;
        j["routed_dram_share_of_step"] = r.routed_bytes_per_s_step / r.dram_bytes_per_s;
    }
    j["runtime"] = r.runtime;
    return j;
}

std::string render_model_bench(const ModelBenchResult& r) {
    std::string s = fmt::format("runtime: {}\n", r.runtime);
    for (const auto& p : r.prefill)
        s += fmt::format("prefill {:>6} tokens: {:9.1f} tok/s ({:.2f} s)\n", p.tokens, p.tok_s, p.seconds);
    s += fmt::format("decode  {:>6} tokens: {:9.2f} tok/s (after a {}-token prompt)\n", r.decode_tokens, r.decode_tok_s,
                     r.decode_context);
    const auto row = [&](const char* name, double prefill_s, double decode_s) {
        const auto& p0 = r.prefill.front();
        s += fmt::format("  {:<15} {:>10.3f} {:>10.3f}\n", name, 1000 * prefill_s / double(p0.tokens),
                         1000 * decode_s / double(r.decode_tokens));
    };
    s += fmt::format("stage (ms/token)  prefill{:<4} decode\n", r.prefill.front().tokens);
    const StageTimes& p = r.prefill.front().stages;
    const StageTimes& d = r.decode_stages;
    row("attention", p.attention, d.attention);
    row("router", p.router, d.router);
    row("routed experts", p.routed_experts, d.routed_experts);
    row("shared expert", p.shared_expert, d.shared_expert);
    row("dense ffn", p.dense_ffn, d.dense_ffn);
    row("lm_head", p.lm_head, d.lm_head);
    row("sampling", p.sampling, d.sampling);
    row("embedding", p.embedding, d.embedding);
    if (p.gpu_layers > 0 || d.gpu_layers > 0) {
        row("gpu layers", p.gpu_layers, d.gpu_layers);
        // Shares of the whole step: the GPU idle while the CPU runs routed experts (beyond the shared expert it
        // overlaps), and the CPU blocked while the GPU runs attention and the rest.
        const auto share = [](double part, const StageTimes& t) { return t.total() > 0 ? 100 * part / t.total() : 0.0; };
        s += fmt::format("  GPU waits for CPU {:>5.1f}% {:>9.1f}%   (share of the step)\n", share(p.gpu_waits_cpu, p),
                         share(d.gpu_waits_cpu, d));
        s += fmt::format("  CPU waits for GPU {:>5.1f}% {:>9.1f}%\n", share(p.cpu_waits_gpu, p), share(d.cpu_waits_gpu, d));
    }
    s += fmt::format("routed experts during decode: {:.1f} MB/token, {:.2f} GB/s in the expert stage, {:.2f} GB/s "
                     "over the whole step",
                     r.routed_bytes_per_token / 1e6, r.routed_bytes_per_s / 1e9, r.routed_bytes_per_s_step / 1e9);
    if (r.dram_bytes_per_s > 0)
        s += fmt::format("\n  = {:.0f}% / {:.0f}% of the measured DRAM read bandwidth ({:.1f} GB/s)",
                         100 * r.routed_bytes_per_s / r.dram_bytes_per_s,
                         100 * r.routed_bytes_per_s_step / r.dram_bytes_per_s, r.dram_bytes_per_s / 1e9);
    else
        s += "\n  (no host profile: run `moeforge tune --host-only` for the DRAM bandwidth share)";
    return s + "\n";
}

}  // namespace mf
