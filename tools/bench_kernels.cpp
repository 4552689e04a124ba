#include "tools/bench_kernels.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <tuple>

#include "codegen/kernel_cache.hpp"
#include "codegen/x64/pack_bf16.hpp"
#include "runtime/expert_ffn.hpp"

namespace mf {
namespace {

// Packed bytes of one expert: int8 1 byte per weight; int4 0.75 (nibbles plus fp32 scale and min per 32);
// bf16 2.
uint64_t expert_weight_bytes(const KernelBenchOptions& o) {
    const uint64_t n = 3ull * uint64_t(o.hidden) * uint64_t(o.inter);
    return o.wtype == WeightType::int4 ? n / 4 * 3 : o.wtype == WeightType::bf16 ? 2 * n : n;
}

uint64_t available_memory() {
    const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : (8ull << 30);
}

// The AMX compute peak for `threads` workers: all cores, or one core's times threads.
double amx_peak_for(const PeakSet& ps, const HostProfile& hp, int threads) {
    const int cores = std::max(1, hp.worker_count());
    return threads >= cores ? ps.all_cores.value : ps.one_core.value * threads;
}

// The ops/s bound and which side binds. Compute: the AMX peak on random operands held in tiles (the unit's rate on
// real data; the zero-operand figure when the profile has none). Memory: ops per weight byte x DRAM read
// bandwidth.
std::pair<double, const char*> roofline_of(const HostProfile& hp, WeightType wt, int threads, double ops,
                                           double bytes) {
    const double peak = amx_peak_for(amx_roofline_peak(hp, wt == WeightType::bf16), hp, threads);
    const double bw = hp.dram_read_total.value;
    const double mem = ops / bytes * bw;
    return mem < peak ? std::pair{mem, "memory"} : std::pair{peak, "compute"};
}

}  // namespace

int default_bench_experts(const KernelBenchOptions& opt, const HostProfile& hp) {
    const uint64_t per = expert_weight_bytes(opt) * (opt.peer_onednn ? 2 : 1);
    const uint64_t budget = available_memory() / 2;
    const uint64_t cap = budget / per;
    if (opt.experts > 0) {
        if (uint64_t(opt.experts) > cap)
            throw std::runtime_error(
                fmt::format("--experts {} needs {} MiB of weights but only {} MiB (half the "
                            "available memory) may be used; lower --experts",
                            opt.experts, opt.experts * per >> 20, budget >> 20));
        return opt.experts;
    }
    const uint64_t llc = std::max<uint64_t>(hp.topology.llc_bytes_total(), 32ull << 20);
    const uint64_t want =
        std::max<uint64_t>(8, (4 * llc + expert_weight_bytes(opt) - 1) / expert_weight_bytes(opt));
    const uint64_t e = std::min(want, cap);
    if (e < 2)
        throw std::runtime_error("not enough free memory for two experts' weights; close other programs");
    return int(e);
}

std::vector<KernelBenchRow> run_kernel_bench(const KernelBenchOptions& opt, const HostProfile& hp,
                                             const BenchProgress& progress) {
    if (opt.peer_onednn && opt.wtype != WeightType::int8)
        throw std::runtime_error("--peer onednn compares int8 weights only; use --wtype int8");
    const int threads = opt.threads > 0 ? opt.threads : std::max(1, hp.worker_count());
    const int experts = default_bench_experts(opt, hp);
    const int H = opt.hidden, I = opt.inter;
    const int steps_per_m = opt.repeats + 1 + (opt.peer_onednn ? opt.repeats + 1 : 0);
    const int total_steps = 1 + int(opt.ms.size()) * steps_per_m;
    int done = 0;
    auto tick = [&](const std::string& stage) {
        if (progress) progress(stage, done, total_steps);
        ++done;
    };

    std::vector<int> cpus = hp.topology.one_pu_per_core();
    if (cpus.empty()) cpus.push_back(0);
    std::vector<int> use;
    for (int i = 0; i < threads; ++i) use.push_back(cpus[size_t(i) % cpus.size()]);
    ThreadPool pool(use);
    KernelCache cache;
    // The config and its alternatives, each with its own driver; their passes interleave (noise hits each alike).
    // Built before the weights are packed, so that a config no kernel accepts fails at once, not after packing.
    std::vector<std::unique_ptr<ExpertFfn>> ffns;
    ffns.push_back(std::make_unique<ExpertFfn>(ExpertFfnDesc{opt.wtype, H, I}, opt.cfg, cache, pool.size()));
    for (const ExpertFfnConfig& a : opt.alts)
        ffns.push_back(std::make_unique<ExpertFfn>(ExpertFfnDesc{opt.wtype, H, I}, a, cache, pool.size()));

    // Weights: one random expert packed, copied to the others (the kernels' speed does not depend on the
    // values).
    tick(fmt::format("packing {} experts ({} MiB)", experts, experts * expert_weight_bytes(opt) >> 20));
    std::vector<ExpertFfnWeights> w;
    {
        std::mt19937 rng(7);
        std::uniform_int_distribution<int> q(-127, 127);
        std::vector<int8_t> g(size_t(I) * H), u(g.size()), d(g.size());
        for (auto* v : {&g, &u, &d})
            for (auto& x : *v) x = int8_t(q(rng));
        if (opt.wtype == WeightType::int8) {
            std::vector<float> si(size_t(I), 1e-3f), sh(size_t(H), 1e-3f);
            w.push_back(pack_expert_ffn_int8({SrcType::int8, I, H, g.data(), 0, si.data()},
                                             {SrcType::int8, I, H, u.data(), 0, si.data()},
                                             {SrcType::int8, H, I, d.data(), 0, sh.data()}));
        } else if (opt.wtype == WeightType::bf16) {
            std::vector<uint16_t> b(g.size());
            for (size_t i = 0; i < b.size(); ++i) b[i] = float_to_bf16(float(g[i]) * 1e-3f);
            w.push_back(pack_expert_ffn_bf16({SrcType::bf16, I, H, b.data()}, {SrcType::bf16, I, H, b.data()},
                                             {SrcType::bf16, H, I, b.data()}));
        } else {
            for (auto* v : {&g, &u, &d})
                for (auto& x : *v) x = int8_t(x & 15);
            // Q4_K's form (one d per 256 k, 6-bit sc per group: the super-block form holds, pack_int4_sb.hpp),
            // scales near 1e-3 with sc 32..63 (so the high bytes of sc * q are not all zero).
            std::vector<float> sc(size_t(I) * H / 32), mn(sc.size(), 7e-3f);
            for (size_t i = 0; i < sc.size(); ++i) sc[i] = std::ldexp(float(32 + (i * 7) % 32), -16);
            w.push_back(pack_expert_ffn_int4({SrcType::u4_group, I, H, g.data(), 0, sc.data(), mn.data()},
                                             {SrcType::u4_group, I, H, u.data(), 0, sc.data(), mn.data()},
                                             {SrcType::u4_group, H, I, d.data(), 0, sc.data(), mn.data()}));
        }
        for (int e = 1; e < experts; ++e) w.push_back({w[0].gate_up.clone(), w[0].down.clone()});
    }
    const double pass_bytes =
        double(experts) * double(w[0].gate_up.weight_bytes() + w[0].down.weight_bytes());

    std::vector<KernelBenchRow> rows;
    for (int m : opt.ms) {
        // Every expert gets the same m tokens; experts run in batches of at most ~8k routed rows.
        std::mt19937 rng(static_cast<uint32_t>(m));
        std::normal_distribution<float> nd(0, 1);
        std::vector<float> x(size_t(m) * H), y_small;
        AlignedBytes y_huge;  // --y-huge: 2 MiB pages once y is that large
        float* y = nullptr;
        if (opt.y_huge) {
            y_huge = AlignedBytes(size_t(m) * H * sizeof(float));
            std::memset(y_huge.data(), 0, y_huge.size());
            y = reinterpret_cast<float*>(y_huge.data());
        } else {
            y_small.assign(size_t(m) * H, 0.0f);
            y = y_small.data();
        }
        for (auto& v : x) v = nd(rng);
        std::vector<int32_t> tokens(static_cast<size_t>(m));
        for (int i = 0; i < m; ++i) tokens[size_t(i)] = i;
        const std::vector<float> gates(size_t(m), 0.125f);
        const int batch = opt.experts_per_call > 0 ? std::min(opt.experts_per_call, experts)
                                                   : std::clamp(8192 / m, 1, experts);
        auto pass = [&](ExpertFfn& ffn) {
            const auto t0 = std::chrono::steady_clock::now();
            for (int e0 = 0; e0 < experts; e0 += batch) {
                std::vector<ExpertRoute> routes;
                for (int e = e0; e < std::min(experts, e0 + batch); ++e)
                    routes.push_back({&w[size_t(e)], tokens, gates});
                ffn.run(pool, ExpertFfnBatch{x.data(), H, y, H, routes});
            }
            return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        };
        tick(fmt::format("M={} warm-up", m));
        for (auto& f : ffns) {
            pass(*f);
            f->reset_times();
        }
        std::vector<double> best(ffns.size(), 1e30);
        for (int r = 0; r < opt.repeats; ++r) {
            tick(fmt::format("M={} pass {}/{}", m, r + 1, opt.repeats));
            for (size_t i = 0; i < ffns.size(); ++i) best[i] = std::min(best[i], pass(*ffns[i]));
        }
        const double ops = 2.0 * m * 3.0 * double(H) * double(I) * experts;
        for (size_t i = 0; i < ffns.size(); ++i) {
            KernelBenchRow row{i ? fmt::format("alt{}", i) : "moeforge", m, opt.wtype, experts, best[i],
                               ops / best[i], pass_bytes / best[i]};
            std::tie(row.roofline, row.bound) = roofline_of(hp, opt.wtype, threads, ops, pass_bytes);
            row.roofline_ratio = row.ops_per_s / row.roofline;
            row.zero_peak_ratio = row.ops_per_s / amx_peak_for(opt.wtype == WeightType::bf16 ? hp.amx_bf16 : hp.amx_int8,
                                                               hp, threads);
            row.passes = ffns[i]->times();
            for (double* v : {&row.passes.quantise, &row.passes.gate_up, &row.passes.requantise, &row.passes.down,
                              &row.passes.gate_up_kernel, &row.passes.down_kernel, &row.passes.gate_up_epilogue,
                              &row.passes.down_epilogue})
                *v /= opt.repeats;
            rows.push_back(row);
        }
        const KernelBenchRow row = rows[rows.size() - ffns.size()];
        if (opt.peer_onednn) {
            const double s = onednn_expert_pass_seconds(H, I, experts, m, threads, opt.repeats,
                                                        [&] { tick(fmt::format("M={} oneDNN", m)); });
            if (s < 0)
                throw std::runtime_error("--peer onednn: this build has no oneDNN (install libdnnl-dev)");
            KernelBenchRow p{"onednn",     m, opt.wtype, experts, s, ops / s, pass_bytes / s,
                             row.roofline, 0, row.bound};
            p.roofline_ratio = p.ops_per_s / p.roofline;
            p.zero_peak_ratio = row.zero_peak_ratio * p.ops_per_s / row.ops_per_s;
            rows.push_back(p);
        }
    }
    return rows;
}

nlohmann::json kernel_bench_json(const std::vector<KernelBenchRow>& rows) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& r : rows)
        j.push_back({{"m", r.m},
                     {"wtype", enum_name(r.wtype)},
                     {"impl", r.impl},
                     {"experts", r.experts},
                     {"seconds", r.seconds},
                     {"ops_per_s", r.ops_per_s},
                     {"bytes_per_s", r.bytes_per_s},
                     {"roofline_ratio", r.roofline_ratio},
                     {"bound", r.bound},
                     {"zero_operand_peak_ratio", r.zero_peak_ratio}});
    return j;
}

std::string render_kernel_bench(const std::vector<KernelBenchRow>& rows, const HostProfile& hp, int threads) {
    const bool bf16 = !rows.empty() && rows[0].wtype == WeightType::bf16;
    const PeakSet& zero = bf16 ? hp.amx_bf16 : hp.amx_int8;
    const PeakSet& used = amx_roofline_peak(hp, bf16);
    const PeakSet& loop = bf16 ? hp.amx_bf16_l1_loop : hp.amx_int8_l1_loop;
    std::string s = fmt::format(
        "{}, {} threads; DRAM read {:.1f} GB/s; {} experts per pass\n"
        "AMX {} peak ({} threads): {:.2f} {} on random operands held in tiles (the roofline's compute side), "
        "{:.2f} on zero operands\n",
        hp.cpu.model_name, threads, hp.dram_read_total.value / 1e9, rows.empty() ? 0 : rows[0].experts,
        bf16 ? "bf16" : "int8", threads, amx_peak_for(used, hp, threads) / 1e12, bf16 ? "TFLOP/s" : "TOPS",
        amx_peak_for(zero, hp, threads) / 1e12);
    if (loop.all_cores.value > 0)
        s += fmt::format("(reference, not a peak: the L1-fed 2x2 loop on random data, operand tiles reloaded before "
                         "every product: {:.2f})\n",
                         amx_peak_for(loop, hp, threads) / 1e12);
    if (&used == &zero) s += "(this host profile has no random-operand peak: the roofline uses the zero-operand one)\n";
    s += fmt::format("{:>9} {:>5} {:>5} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9}\n", "impl", "m", "wtype", "TOPS",
                     "GB/s", "bound", "of bound", "of 0-peak", "pass ms");
    for (const auto& r : rows)
        s += fmt::format("{:>9} {:>5} {:>5} {:>10.3f} {:>10.1f} {:>10} {:>8.1f}% {:>8.1f}% {:>9.1f}\n", r.impl, r.m,
                         enum_name(r.wtype), r.ops_per_s / 1e12, r.bytes_per_s / 1e9, r.bound,
                         100 * r.roofline_ratio, 100 * r.zero_peak_ratio, r.seconds * 1e3);
    return s;
}

std::string render_kernel_passes(const std::vector<KernelBenchRow>& rows, int threads) {
    std::string s = fmt::format("passes of the moeforge driver, ms per pass over all experts (mean of the timed "
                                "passes); 'kernels' / 'epi': the GEMM kernels' / their epilogues' (SiLU*up, "
                                "accumulate) share of their pass's {} worker(s); 'outside': the share of all passes' "
                                "worker time not in a GEMM kernel (epilogues, waiting, item overhead)\n",
                                threads);
    s += fmt::format("{:>9} {:>5} {:>10} {:>10} {:>8} {:>6} {:>11} {:>10} {:>8} {:>6} {:>9}\n", "impl", "m",
                     "quantise", "gate/up", "kernels", "epi", "requantise", "down", "kernels", "epi", "outside");
    for (const auto& r : rows) {
        if (r.impl == "onednn") continue;
        const ExpertFfnTimes& p = r.passes;
        const double total = p.quantise + p.gate_up + p.requantise + p.down;
        const auto share = [&](double k, double wall) { return wall > 0 ? 100 * k / (wall * threads) : 0.0; };
        // Outside the kernels: the worker-seconds of all passes not spent in a kernel.
        const double outside = total > 0 ? 100 * (1 - (p.gate_up_kernel + p.down_kernel) / (total * threads)) : 0;
        s += fmt::format("{:>9} {:>5} {:>10.1f} {:>10.1f} {:>7.1f}% {:>5.1f}% {:>11.1f} {:>10.1f} {:>7.1f}% {:>5.1f}% "
                         "{:>8.1f}%\n",
                         r.impl, r.m, 1e3 * p.quantise, 1e3 * p.gate_up, share(p.gate_up_kernel, p.gate_up),
                         share(p.gate_up_epilogue, p.gate_up), 1e3 * p.requantise, 1e3 * p.down,
                         share(p.down_kernel, p.down), share(p.down_epilogue, p.down), outside);
    }
    return s;
}

}  // namespace mf
