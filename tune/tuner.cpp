#include "tune/tuner.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>

#include <fmt/format.h>

#include "codegen/isa.hpp"
#include "codegen/kernel_cache.hpp"
#include "tune/expert_ffn_bench.hpp"
#include "tune/expert_gemm_bench.hpp"
#include "tune/mla_decode_bench.hpp"
#include "tune/trial_store.hpp"

namespace mf {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

std::string tune_context(const HostProfile& hp, const ModelShape& s, const std::string& tool_version) {
    // "bench r2": the benchmark problems changed (every expert of a call takes the same tokens); older trials differ.
    return fmt::format("{} | bench r2 | {} | {}", tool_version, hp.fingerprint, s.key());
}

std::vector<std::pair<int, int>> m_ranges(const std::vector<int>& points) {
    std::vector<std::pair<int, int>> r;
    for (size_t i = 0; i < points.size(); ++i) {
        const int lo = i == 0 ? 1 : r.back().second + 1;
        const int hi = i + 1 == points.size() ? (1 << 30)
                                               : std::max(lo, int(std::floor(std::sqrt(double(points[i]) * points[i + 1]))));
        r.emplace_back(lo, hi);
    }
    return r;
}

namespace {

std::string utc_now() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

uint64_t default_pool_bytes(const HostProfile& hp) {
    const uint64_t llc = hp.topology.llc_bytes_total();
    uint64_t b = std::clamp<uint64_t>(4 * llc, 256ull << 20, 4ull << 30);
    const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) b = std::min<uint64_t>(b, uint64_t(pages) * uint64_t(page) / 4);
    return std::max<uint64_t>(b, 64ull << 20);
}

int nearest(const std::vector<int>& pts, int m) {
    int best = pts.front();
    for (int p : pts)
        if (std::fabs(std::log(double(p) / m)) < std::fabs(std::log(double(best) / m))) best = p;
    return best;
}

// The search state shared by the stages: the budget clock, the store, the trial log.
struct Run {
    Run(const TuneSettings& settings, TrialStore s) : t(settings), store(std::move(s)) {}
    const TuneSettings& t;
    TrialStore store;
    Clock::time_point start = Clock::now();
    std::vector<PlanTrial> trials;

    double elapsed() const { return std::chrono::duration<double>(Clock::now() - start).count(); }
    void check_stop() const {
        if (t.stop && t.stop->load()) throw TuneInterrupted("interrupted");
    }
    SearchOptions options(double budget) const {
        SearchOptions o;
        o.budget_seconds = std::max(0.0, budget);
        o.tolerance = t.tolerance;
        o.stop = t.stop;
        return o;
    }
    FamilyResult search(const std::string& family, std::vector<Candidate>& cands, double budget) {
        check_stop();
        FamilyResult r = search_family(family, cands, options(budget), store, elapsed(), [&](const std::string&) {
            if (t.progress) t.progress(std::min(1.0, elapsed() / t.budget_seconds), family);
        });
        for (const auto& x : r.trials)
            trials.push_back({family, x.label, x.at_seconds, x.error.empty() ? x.seconds : 0, x.rung, x.is_default,
                              !x.error.empty() && x.error != "pruned"});
        if (r.interrupted) throw TuneInterrupted("interrupted");
        return r;
    }
    // Budget for the next of `left` families of a stage that may use the budget up to `stage_end` seconds.
    double share(double stage_end, int left) const { return (stage_end - elapsed()) / std::max(1, left); }
};

PlannedKernel planned(const std::string& family, const std::string& role, const json& desc,
                      const std::vector<Candidate>& cands, const FamilyResult& r, int bench_m, double ops,
                      double bytes, const std::string& name) {
    PlannedKernel k;
    k.family = family;
    k.role = role;
    k.desc = desc;
    k.config = cands[size_t(r.chosen)].config;
    k.default_config = cands[size_t(r.default_index)].config;
    k.name = name;
    k.bench_m = bench_m;
    k.seconds = r.chosen_seconds;
    k.default_seconds = r.default_seconds;
    k.ops = ops;
    k.bytes = bytes;
    k.verified = true;
    return k;
}

// Fused-FFN candidates at m tokens per expert: the default, then variations of the fields that matter on the path
// m takes (GEMV or AMX), seeded with the stage-1 winners.
std::vector<ExpertFfnConfig> ffn_grid(int m, int gemv_max_m, const std::vector<GemvConfig>& gemvs,
                                      const std::vector<AmxGemmConfig>& amxs, bool amx, bool int4) {
    std::vector<ExpertFfnConfig> v{ExpertFfnConfig{}};
    auto add = [&](ExpertFfnConfig c) {
        if (std::find(v.begin(), v.end(), c) == v.end()) v.push_back(c);
    };
    ExpertFfnConfig base;
    base.gemv_max_m = gemv_max_m;
    base.m_tiles = amxs.front().m_tiles;
    base.n_tiles = amxs.front().n_tiles;
    base.order = amxs.front().order;
    base.amx_prefetch = amxs.front().prefetch;
    base.gemv_panels = gemvs.front().panels;
    base.gemv_prefetch = gemvs.front().prefetch;
    base.gemv_k_unroll = gemvs.front().k_unroll;
    add(base);
    // At m <= 16 both paths compete (the hand-over decided on one GEMM; here the whole FFN decides).
    const bool try_gemv = m <= 16 || !amx, try_amx = amx && (m > gemv_max_m || (m >= 4 && m <= 16));
    if (try_gemv) {
        base.gemv_max_m = std::min(16, std::max(gemv_max_m, m));
        for (const GemvConfig& g : gemvs)
            for (int nb : {64, 128, 256, 512})
                for (int nbd : {128, 256, 512, 1024}) {
                    ExpertFfnConfig c = base;
                    c.gemv_panels = g.panels;
                    c.gemv_prefetch = g.prefetch;
                    c.gemv_k_unroll = g.k_unroll;
                    c.n_block = nb;
                    c.n_block_down = nbd;
                    add(c);
                }
    }
    if (try_amx) {
        base.gemv_max_m = std::min(gemv_max_m, m - 1);
        for (const AmxGemmConfig& a : amxs)
            for (int nb : {64, 128, 256})
                for (int nbd : {128, 256, 512})
                    for (int mb : {64, 256, 1024}) {
                        if (mb > 2 * m && mb != 64) continue;  // one block holds all rows already
                        ExpertFfnConfig c = base;
                        c.m_tiles = a.m_tiles;
                        c.n_tiles = a.n_tiles;
                        c.order = a.order;
                        c.amx_prefetch = a.prefetch;
                        c.n_block = nb;
                        c.n_block_down = nbd;
                        c.m_block = mb;
                        add(c);
                    }
        // The AMX loop's K chunks and L1 tile prefetch, and (int4 only) the tokens per expert from which its AMX
        // kernel replaces the GEMV, around the first tile shape.
        ExpertFfnConfig a = base;
        a.m_tiles = amxs.front().m_tiles, a.n_tiles = amxs.front().n_tiles, a.order = amxs.front().order;
        for (int kb : {16, 32}) {
            ExpertFfnConfig c = a;
            c.amx_k_block = kb;
            add(c);
        }
        for (int pf : {0, 2}) {  // around the default 1
            ExpertFfnConfig c = a;
            c.amx_pf_a = c.amx_pf_b = pf;
            add(c);
        }
        // Tiled activations, alone and with K chunks whose successor is prefetched into L2 while they compute
        // (bench kernels on the 2-core VM, one thread: +15-25% at m = 256 for the chunked form).
        for (int kb : {0, 8, 16}) {
            ExpertFfnConfig c = a;
            c.amx_a_tiled = 1;
            c.n_block_down = 448;
            if (kb) {
                c.amx_k_block = kb;
                c.amx_pf_next = 32;
                c.n_block = 128;
                c.m_block = 256;
            }
            add(c);
        }
        {
            ExpertFfnConfig c = a;  // the down pass by column block only (no token ranges)
            c.down_token_ranges = 0;
            add(c);
            c.down_token_ranges = a.down_token_ranges;  // ... or by shorter token ranges (more items per round)
            c.down_range_min_rows = 64;
            add(c);
        }
        for (int q : {32, std::max(m, 32)}) {
            if (!int4) break;  // int8 / bf16 never read it: each would be one more run of the same kernels
            ExpertFfnConfig c = a;
            c.int4_amx_min_m = q;
            add(c);
        }
        if (int4) {  // int4: the AMX kernel's A rows prefetched into L1 (the default since session 9) or not
            ExpertFfnConfig c = a;
            c.int4_amx_pf_a = a.int4_amx_pf_a ? 0 : 1;
            add(c);
        } else {  // int8 / bf16: the next call's A rows prefetched into L2 during the current call
            ExpertFfnConfig c = a;
            c.amx_pf_call = 16;
            add(c);
        }
        for (int u : {0, 64}) {  // int4: per-item unpack for every AMX route, or above 64 tokens (the default: none)
            if (!int4) break;
            if (u > 0 && u >= m) continue;  // routes of m tokens would all unpack in the kernel, as by default
            ExpertFfnConfig c = a;
            c.int4_amx_unpack = u;
            add(c);
        }
        if (int4 && m >= 32) {  // int4: the Q4_K super-block kernel from 32 tokens (VM: wins; device: loses), or
            ExpertFfnConfig c = a;  // the per-group kernel where the default is the form
            c.int4_sb_min_m = a.int4_sb_min_m ? 0 : 32;
            add(c);
        }
    }
    return v;
}

}  // namespace

Plan tune_plan(const HostProfile& hp, const ModelShape& s, const TuneSettings& t) {
    if (s.wtype != "int8" && s.wtype != "int4")
        throw std::runtime_error(fmt::format("tune: --wtype {} is not implemented by the expert kernels yet (int8 and "
                                             "int4 are)",
                                             s.wtype));
    if (s.wtype == "int4" && s.group_size != kInt4Group)
        throw std::runtime_error(fmt::format("tune: int4 weights use groups of {} along K (model shape says {})",
                                             kInt4Group, s.group_size));
    // int4 has no kernel stage and no separate hand-over: its GEMV and AMX configs (the AMX int4 GEMM takes m_tiles
    // and n_tiles of 1 or 2) are searched inside the fused FFN, where the hand-over is one more field.
    const bool int4 = s.wtype == "int4";
    const IsaSet isa = detect_cpu_isa();
    if (!isa.has(IsaFeature::avx512_vnni))
        throw std::runtime_error("tune: this CPU lacks AVX-512 VNNI, which every expert kernel needs");
    const bool amx = isa.has(IsaFeature::amx_int8) && request_amx_permission();

    Run run{t, TrialStore(t.trials_file, tune_context(hp, s, t.tool_version))};
    if (t.fresh) run.store.clear();
    Plan plan;
    plan.host_fingerprint = hp.fingerprint;
    plan.host_description = hp.fingerprint_text;
    plan.shape = s;
    plan.tool_version = t.tool_version;
    plan.budget_seconds = t.budget_seconds;
    plan.tolerance = t.tolerance;
    plan.host = {hp.cpu.model_name,
                 hp.worker_count(),
                 hp.amx_int8.all_cores.value,
                 hp.amx_bf16.all_cores.value,
                 hp.avx512_vnni_int8.all_cores.value,
                 hp.dram_read_total.value,
                 hp.topology.llc_bytes_total()};
    const std::vector<int> cpus = hp.topology.one_pu_per_core();
    plan.threads.workers = int(cpus.size());
    plan.threads.cpus = cpus;
    for (const auto& c : hp.topology.cores) plan.threads.numa_node_of_worker.push_back(c.numa_node);
    plan.threads.numa_node_of_worker.resize(cpus.size());
    plan.threads.threads_per_expert = 0;
    plan.threads.bind_experts_to_numa = hp.topology.numa_nodes.size() > 1;
    plan.gpu.cpu_only = t.cpu_only || hp.gpu.gpus.empty();
    plan.gpu.gpu_layers = plan.gpu.cpu_only ? 0 : t.gpu_layers;

    // The GPU search, when there is a GPU to search on: opened first so the CPU stages leave it its share.
    std::unique_ptr<MlaDecodeBench> gpu;
    if (t.cpu_only)
        plan.notes.push_back("GPU search skipped: --cpu-only");
    else if (t.cubin_dir.empty() || t.mla_contexts.empty())
        plan.notes.push_back("GPU search skipped: not asked for (no CUBIN cache dir or no contexts)");
    else {
        std::string why;
        gpu = MlaDecodeBench::open(s, t.cubin_dir, &why);
        if (!gpu) plan.notes.push_back("GPU search skipped: " + why);
    }

    ThreadPool pool(cpus);
    KernelCache cache;
    const uint64_t pool_bytes = t.pool_bytes ? t.pool_bytes : default_pool_bytes(hp);
    const auto roles = expert_gemm_roles(s);
    const double B = t.budget_seconds * (gpu ? 1 - std::clamp(t.gpu_share, 0.0, 0.9) : 1.0);

    // Stage 1: the GEMM kernels per role (int8).
    std::map<std::pair<std::string, int>, GemvConfig> best_gemv;
    std::map<std::pair<std::string, int>, AmxGemmConfig> best_amx;
    // The runners-up too: the fused search starts from the best two of each kernel search.
    std::map<std::pair<std::string, int>, std::vector<GemvConfig>> top_gemv;
    std::map<std::pair<std::string, int>, std::vector<AmxGemmConfig>> top_amx;
    plan.amx_min_tokens = 17;
    if (!int4) {
        ExpertGemmBench bench(pool, cache, plan.host, pool_bytes);
        const double end1 = 0.35 * B;
        int left = int(roles.size() * (t.gemv_ms.size() + (amx ? t.amx_ms.size() : 0)));
        const auto gemv_r = m_ranges(t.gemv_ms), amx_r = m_ranges(t.amx_ms);
        for (const GemmRole& r : roles) {
            for (size_t i = 0; i < t.gemv_ms.size(); ++i) {
                const int m = t.gemv_ms[i];
                auto cands = bench.gemv_candidates(r, m);
                const auto res = run.search(fmt::format("gemv_avx512 {} m{}", r.name, m), cands, run.share(end1, left--));
                const GemvConfig c = fields_from_json<GemvConfig>(cands[size_t(res.chosen)].config);
                best_gemv[{r.name, m}] = c;
                top_gemv[{r.name, m}] = {c};
                for (int i : res.ranking)
                    if (top_gemv[{r.name, m}].size() < 2 && i != res.chosen)
                        top_gemv[{r.name, m}].push_back(fields_from_json<GemvConfig>(cands[size_t(i)].config));
                const GemvDesc d{WeightType::int8, r.k, m};
                PlannedKernel k = planned("gemv_avx512", r.name, fields_to_json(d), cands, res, m,
                                          ExpertGemmBench::ops(r, m), ExpertGemmBench::weight_bytes(r),
                                          kernel_name(d, c));
                k.m_min = gemv_r[i].first;
                k.m_max = std::min(16, gemv_r[i].second);
                plan.kernels.push_back(k);
            }
            for (size_t i = 0; amx && i < t.amx_ms.size(); ++i) {
                const int m = t.amx_ms[i];
                auto cands = bench.amx_candidates(r, m);
                const auto res = run.search(fmt::format("gemm_amx {} m{}", r.name, m), cands, run.share(end1, left--));
                const AmxGemmConfig c = fields_from_json<AmxGemmConfig>(cands[size_t(res.chosen)].config);
                best_amx[{r.name, m}] = c;
                top_amx[{r.name, m}] = {c};
                for (int i : res.ranking)
                    if (top_amx[{r.name, m}].size() < 2 && i != res.chosen)
                        top_amx[{r.name, m}].push_back(fields_from_json<AmxGemmConfig>(cands[size_t(i)].config));
                const AmxGemmDesc d{WeightType::int8, r.k};
                PlannedKernel k = planned("gemm_amx", r.name, fields_to_json(d), cands, res, m,
                                          ExpertGemmBench::ops(r, m), ExpertGemmBench::weight_bytes(r),
                                          kernel_name(d, c));
                k.m_min = amx_r[i].first;
                k.m_max = amx_r[i].second;
                plan.kernels.push_back(k);
            }
        }

        // Stage 2: the hand-over, on gate+up (the larger GEMM), tuned GEMV against tuned AMX.
        if (amx) {
            const GemmRole& r = roles.front();
            const double len = std::max(0.02, 0.05 * B / double(2 * t.handover_ms.size()) / 3);
            std::vector<bool> amx_wins;
            for (int m : t.handover_ms) {
                run.check_stop();
                const GemvConfig g = best_gemv[{r.name, nearest(t.gemv_ms, m)}];
                const AmxGemmConfig a = best_amx[{r.name, t.amx_ms.front()}];
                // Alternating timings, best of two each: one noisy timing must not move the hand-over.
                double tg = 0, ta = 0;
                const std::string fam = fmt::format("handover {} m{}", r.name, m);
                if (auto* x = run.store.find(fam, "gemv", 0)) tg = x->seconds;
                if (auto* x = run.store.find(fam, "amx", 0)) ta = x->seconds;
                if (tg <= 0 || ta <= 0) {
                    tg = ta = 1e30;
                    for (int rep = 0; rep < 2; ++rep) {
                        tg = std::min(tg, bench.time_gemv(r, m, g, len));
                        ta = std::min(ta, bench.time_amx(r, m, a, len));
                    }
                    run.store.add({fam, "gemv", 0, tg, run.elapsed(), true, ""});
                    run.store.add({fam, "amx", 0, ta, run.elapsed(), false, ""});
                }
                run.trials.push_back({fam, "gemv", run.elapsed(), tg, 0, true, false});
                run.trials.push_back({fam, "amx", run.elapsed(), ta, 0, false, false});
                amx_wins.push_back(ta < tg);
                if (t.progress) t.progress(std::min(1.0, run.elapsed() / B), fam);
            }
            for (size_t i = amx_wins.size(); i-- > 0;) {
                if (!amx_wins[i]) break;
                plan.amx_min_tokens = t.handover_ms[i];
            }
        }
    }

    // Stage 3: the fused FFN driver per benchmark m.
    {
        ExpertFfnBench bench(pool, cache, s, pool_bytes);
        const int gemv_max_m = std::clamp(plan.amx_min_tokens - 1, 0, 16);
        const auto ranges = m_ranges(t.ffn_ms);
        int left = int(t.ffn_ms.size());
        for (size_t i = 0; i < t.ffn_ms.size(); ++i) {
            const int m = t.ffn_ms[i];
            std::vector<GemvConfig> gemvs;
            std::vector<AmxGemmConfig> amxs;
            for (const GemmRole& r : roles) {
                for (const GemvConfig& g : top_gemv[{r.name, nearest(t.gemv_ms, std::min(m, 16))}])
                    if (std::find(gemvs.begin(), gemvs.end(), g) == gemvs.end()) gemvs.push_back(g);
                if (amx)
                    for (const AmxGemmConfig& a : top_amx[{r.name, nearest(t.amx_ms, m)}])
                        if (std::find(amxs.begin(), amxs.end(), a) == amxs.end()) amxs.push_back(a);
            }
            if (int4) {  // no kernel stage: small grids of the int4 kernels' own fields (GEMV k_unroll is fixed at 1)
                for (int np : {1, 2, 4})
                    for (int pf : {0, 8, 32}) gemvs.push_back(GemvConfig{np, pf, 1});
                if (amx)
                    for (int mt : {1, 2})
                        for (int nt : {1, 2})
                            for (LoopOrder o : {LoopOrder::mn, LoopOrder::nm}) amxs.push_back(AmxGemmConfig{mt, nt, o});
            }
            if (gemvs.empty()) gemvs.push_back(GemvConfig{});
            if (amxs.empty()) amxs.push_back(AmxGemmConfig{});
            gemvs.push_back(GemvConfig{});
            amxs.push_back(AmxGemmConfig{});
            const auto cfgs = ffn_grid(m, gemv_max_m, gemvs, amxs, amx, int4);
            auto cands = bench.candidates(m, cfgs, 0);
            const bool path_amx = amx && m > gemv_max_m;
            const double peak = path_amx ? plan.host.amx_int8_ops : plan.host.avx512_vnni_ops;
            const double bound = 0.9 * std::max(peak > 0 ? bench.ops(m) / peak : 0.0,
                                                plan.host.dram_read_bytes > 0
                                                    ? bench.weight_bytes(m) / plan.host.dram_read_bytes
                                                    : 0.0);
            for (auto& c : cands) c.bound_seconds = bound;
            const auto res = run.search(fmt::format("moe_ffn m{}", m), cands, run.share(B, left--));
            const ExpertFfnConfig c = fields_from_json<ExpertFfnConfig>(cands[size_t(res.chosen)].config);
            PlannedKernel k = planned("moe_ffn", "expert", fields_to_json(bench.desc()), cands, res, m, bench.ops(m),
                                      bench.weight_bytes(m), kernel_name(bench.desc(), c));
            k.m_min = ranges[i].first;
            k.m_max = ranges[i].second;
            k.bench_experts = ffn_bench_experts(s, m);
            plan.kernels.push_back(k);
        }
    }
    // Stage 4: the MLA decode kernel on the GPU per context, batch 1.
    if (gpu) {
        plan.gpu.name = gpu->gpu_name();
        plan.gpu.sm = gpu->sm();
        plan.gpu.device = gpu->device();
        plan.gpu.cpu_only = false;  // tuned with a GPU: run and bench place layers on it (all that fit)
        plan.gpu.gpu_layers = -1;
        plan.host.gpu_copy_bytes = gpu->copy_bandwidth();
        const auto ranges = m_ranges(t.mla_contexts);
        int left = int(t.mla_contexts.size());
        for (size_t i = 0; i < t.mla_contexts.size(); ++i) {
            const int ctx = t.mla_contexts[i];
            auto cands = gpu->candidates(ctx);
            const auto res = run.search(fmt::format("mla_decode ctx{}", ctx), cands,
                                        std::max(2.0, run.share(t.budget_seconds, left--)));
            const json& chosen = cands[size_t(res.chosen)].config;
            PlannedKernel k = planned("mla_decode", "decode", gpu->desc_json(), cands, res, ctx, gpu->ops(ctx),
                                      gpu->cache_bytes(ctx), gpu->kernel_name(chosen));
            k.m_min = ranges[i].first;
            k.m_max = ranges[i].second;
            k.bench_experts = 1;  // batch
            plan.kernels.push_back(k);
        }
    }
    plan.trials = run.trials;
    plan.tune_seconds = run.elapsed();
    plan.created_at = utc_now();
    return plan;
}

}  // namespace mf
