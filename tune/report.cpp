#include "tune/report.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <stdexcept>

#include <fmt/format.h>

#include "tune/svg_plot.hpp"

namespace mf {

using nlohmann::json;

namespace {

bool is_amx_path(const Plan& p, const PlannedKernel& k) {
    if (k.family == "gemm_amx") return true;
    if (k.family == "gemv_avx512") return false;
    return p.host.amx_int8_ops > 0 && k.bench_m >= p.amx_min_tokens;
}

void write_text(const std::filesystem::path& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f || !(f << text) || !f.flush()) throw std::runtime_error("cannot write " + path.string());
}

std::string field_value(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

std::string ms(double s) { return s > 0 ? fmt::format("{:.3f} ms", s * 1e3) : "-"; }
std::string us(double s) { return s > 0 ? fmt::format("{:.1f} µs", s * 1e6) : "-"; }

bool cpu_family(const PlannedKernel& k) { return k.family != "mla_decode"; }

// One row per "mla_decode" entry: context, time default -> tuned, cache bytes/s and how far above the floor of
// reading the cache once at the device's copy bandwidth (read + write counted, as a copy moves both).
std::string mla_decode_rows(const Plan& p, bool markdown) {
    std::string s;
    for (const auto& k : p.kernels) {
        if (k.family != "mla_decode") continue;
        const double floor_s = p.host.gpu_copy_bytes > 0 ? k.bytes / p.host.gpu_copy_bytes : 0;
        const std::string range =
            k.m_max >= (1 << 29) ? fmt::format("{}+", k.m_min) : fmt::format("{}–{}", k.m_min, k.m_max);
        if (markdown)
            s += fmt::format("| {} | {} | {} | {} | **{:.2f}×** | {}B/s | {:.2f}× | `{}` | {} |\n", k.bench_m, range,
                             us(k.default_seconds), us(k.seconds), k.speedup(),
                             si_number(k.seconds > 0 ? k.bytes / k.seconds : 0),
                             floor_s > 0 && k.seconds > 0 ? k.seconds / floor_s : 0.0, k.name,
                             config_changes(k.default_config, k.config));
        else
            s += fmt::format("  {:>6} {:>8} {:>12} {:>12} {:>7.2f}x {:>8.2f}x floor   {}\n", k.bench_m, k.bench_experts,
                             us(k.default_seconds), us(k.seconds), k.speedup(),
                             floor_s > 0 && k.seconds > 0 ? k.seconds / floor_s : 0.0,
                             config_changes(k.default_config, k.config));
    }
    return s;
}

}  // namespace

double roofline_ops(const Plan& p, const PlannedKernel& k) {
    const double peak = is_amx_path(p, k) ? p.host.amx_int8_ops : p.host.avx512_vnni_ops;
    const double ai = k.bytes > 0 ? k.ops / k.bytes : 0;
    double roof = peak;
    if (p.host.dram_read_bytes > 0 && ai > 0) roof = std::min(roof > 0 ? roof : 1e30, ai * p.host.dram_read_bytes);
    return roof;
}

std::string config_changes(const json& def, const json& cfg) {
    std::string s;
    for (auto it = cfg.begin(); it != cfg.end(); ++it) {
        if (def.contains(it.key()) && def.at(it.key()) == it.value()) continue;
        if (!s.empty()) s += ", ";
        s += fmt::format("{}: {} → {}", it.key(), def.contains(it.key()) ? field_value(def.at(it.key())) : "?",
                         field_value(it.value()));
    }
    return s.empty() ? "default" : s;
}

std::string render_roofline_svg(const Plan& p) {
    SvgPlot plot(fmt::format("Roofline: {} ({} cores)", p.host.cpu_name, p.host.cores),
                 "arithmetic intensity (ops per weight byte)", "ops/s (int8 multiply-add = 2 ops)");
    double ai_lo = 0.5, ai_hi = 4096, y_lo = 1e12, y_hi = 1e9;
    const double amx = p.host.amx_int8_ops, vnni = p.host.avx512_vnni_ops, bw = p.host.dram_read_bytes;
    for (const auto& k : p.kernels) {
        if (k.seconds <= 0 || k.bytes <= 0 || !cpu_family(k)) continue;
        const double ai = k.ops / k.bytes;
        ai_lo = std::min(ai_lo, ai / 2);
        ai_hi = std::max(ai_hi, ai * 2);
        y_lo = std::min({y_lo, k.ops / k.seconds / 2, k.ops / std::max(k.default_seconds, k.seconds) / 2});
        y_hi = std::max(y_hi, k.ops / k.seconds * 2);
    }
    y_hi = std::max({y_hi, amx * 2, vnni * 2});
    y_lo = std::min(y_lo, bw * ai_lo);
    plot.x_axis(ai_lo, ai_hi, true);
    plot.y_axis(std::max(y_lo, 1e6), y_hi, true);
    auto roof = [&](double peak, const std::string& name, const std::string& color, bool dashed) {
        if (peak <= 0 || bw <= 0) return;
        const double ridge = peak / bw;
        plot.line({{ai_lo, bw * ai_lo}, {ridge, peak}, {ai_hi, peak}}, color, name, dashed);
        plot.note({ai_hi, dashed ? peak / 1.35 : peak * 1.15}, fmt::format("{}: {}ops/s", name, si_number(peak)),
                  color, "end");
    };
    roof(amx, "AMX int8 peak", "#333", false);
    roof(vnni, "AVX-512 VNNI peak", "#777", true);
    if (bw > 0) plot.note({ai_lo * 1.3, bw * ai_lo * 1.8}, fmt::format("DRAM {}B/s", si_number(bw)), "#333");
    int series = 0;
    for (const char* fam : {"moe_ffn", "gemm_amx", "gemv_avx512"}) {
        const std::string color = SvgPlot::palette(series++);
        bool named = false;
        for (const auto& k : p.kernels) {
            if (k.family != fam || k.seconds <= 0 || k.bytes <= 0) continue;
            const double ai = k.ops / k.bytes;
            if (!named) {
                plot.line({}, color, "", false);
                named = true;
            }
            // Only the fused FFN points carry labels (the GEMM points sit close to them).
            const bool label = k.family == "moe_ffn";
            if (k.default_seconds > 0) plot.point({ai, k.ops / k.default_seconds}, color, "", false);
            plot.point({ai, k.ops / k.seconds}, color, label ? fmt::format("m={}", k.bench_m) : "");
        }
        static const std::map<std::string, std::string> names = {
            {"moe_ffn", "fused expert FFN (tuned ●, default ○)"},
            {"gemm_amx", "AMX GEMM, one expert (gate+up, down)"},
            {"gemv_avx512", "AVX-512 GEMV, one expert (gate+up, down)"}};
        if (named) plot.line({{ai_lo / 10, 1}, {ai_lo / 10, 1}}, color, names.at(fam));
    }
    return plot.render();
}

std::string render_search_svg(const Plan& p, const std::string& prefix, const std::string& title) {
    SvgPlot plot(title, "timed trials in the family (successive halving: short timings first)",
                 "best so far: speed-up over the default");
    std::map<std::string, std::vector<const PlanTrial*>> fams;
    std::vector<std::string> order;
    for (const auto& t : p.trials) {
        if (t.family.rfind(prefix, 0) != 0 || t.rung < 0 || t.seconds <= 0) continue;
        if (!fams.count(t.family)) order.push_back(t.family);
        fams[t.family].push_back(&t);
    }
    size_t max_n = 2;
    double y_hi = 1.2, y_lo = 0.9;
    std::vector<std::pair<std::string, std::vector<SvgPoint>>> curves;
    for (const auto& f : order) {
        const auto& ts = fams[f];
        // Against the default's best timing in the family (its short first timing is the noisiest).
        double def = 0;
        for (const auto* t : ts)
            if (t->is_default && (def == 0 || t->seconds < def)) def = t->seconds;
        if (def <= 0) continue;
        std::vector<SvgPoint> pts;
        double best = 1e300;
        for (size_t i = 0; i < ts.size(); ++i) {
            best = std::min(best, ts[i]->seconds);
            pts.push_back({double(i + 1), def / best});
            y_hi = std::max(y_hi, def / best * 1.05);
            y_lo = std::min(y_lo, def / best * 0.95);
        }
        max_n = std::max(max_n, ts.size());
        curves.emplace_back(f, std::move(pts));
    }
    plot.x_axis(1, double(max_n), false);
    plot.y_axis(y_lo, y_hi, false);
    plot.line({{1, 1}, {double(max_n), 1}}, "#999", "default", true, 1);
    for (size_t i = 0; i < curves.size(); ++i) plot.line(curves[i].second, SvgPlot::palette(int(i)), curves[i].first);
    return plot.render();
}

std::string render_handover_svg(const Plan& p) {
    SvgPlot plot("Hand-over: tuned AVX-512 GEMV vs tuned AMX GEMM (gate+up, one expert)", "tokens per expert (m)",
                 "seconds per call (best of two)");
    std::vector<SvgPoint> gemv, amx;
    double lo = 1e300, hi = 0;
    for (const auto& t : p.trials) {
        if (t.family.rfind("handover", 0) != 0 || t.seconds <= 0) continue;
        const auto pos = t.family.rfind(" m");
        if (pos == std::string::npos) continue;
        const double m = std::atof(t.family.c_str() + pos + 2);
        (t.config == "gemv" ? gemv : amx).push_back({m, t.seconds});
        lo = std::min(lo, t.seconds);
        hi = std::max(hi, t.seconds);
    }
    auto by_x = [](SvgPoint a, SvgPoint b) { return a.x < b.x; };
    std::sort(gemv.begin(), gemv.end(), by_x);
    std::sort(amx.begin(), amx.end(), by_x);
    double mmax = 2;
    for (const auto& q : gemv) mmax = std::max(mmax, q.x);
    plot.x_axis(1, mmax, true);
    plot.y_axis(0, hi > 0 ? hi * 1.3 : 1, false);
    plot.line(gemv, SvgPlot::palette(0), "AVX-512 VNNI GEMV");
    plot.line(amx, SvgPlot::palette(1), "AMX int8 GEMM");
    for (const auto& q : gemv) plot.point(q, SvgPlot::palette(0), "");
    for (const auto& q : amx) plot.point(q, SvgPlot::palette(1), "");
    if (hi > 0)
        plot.note({1.05, hi * 1.2}, fmt::format("AMX from {} tokens per expert", p.amx_min_tokens), "#333");
    return plot.render();
}

std::string render_plan_summary(const Plan& p) {
    std::string s = fmt::format("fused expert FFN on {} ({}), AMX from {} tokens per expert:\n", p.shape.key(),
                                p.host_fingerprint, p.amx_min_tokens);
    s += fmt::format("  {:>6} {:>8} {:>12} {:>12} {:>8} {:>10}\n", "m", "experts", "default", "tuned", "speed-up",
                     "roofline");
    auto check_of = [&](int m) -> const PlanCheck* {
        for (const auto& c : p.checks)
            if (c.m == m) return &c;
        return nullptr;
    };
    for (const auto& k : p.kernels) {
        if (k.family != "moe_ffn") continue;
        const double roof = roofline_ops(p, k);
        s += fmt::format("  {:>6} {:>8} {:>12} {:>12} {:>7.2f}x {:>9.0f}%\n", k.bench_m,
                         k.bench_experts,
                         ms(k.default_seconds), ms(k.seconds), k.speedup(),
                         roof > 0 && k.seconds > 0 ? 100 * k.ops / k.seconds / roof : 0.0);
        if (const PlanCheck* c = check_of(k.bench_m))
            s += fmt::format("  {:>6} {:>8} {:>12} {:>12} {:>7.2f}x {:>9.0f}%   (bench kernels check)\n", "",
                             c->experts_per_call > 0 ? fmt::format("{}x{}", c->experts_per_call,
                                                                   c->experts / c->experts_per_call)
                                                     : std::to_string(c->experts),
                             ms(c->default_seconds), ms(c->tuned_seconds), c->speedup(), 100 * c->roofline_ratio);
    }
    if (const std::string gpu = mla_decode_rows(p, false); !gpu.empty())
        s += fmt::format("MLA decode on {} (sm_{}), batch 1:\n  {:>6} {:>8} {:>12} {:>12} {:>8} {:>14}\n{}", p.gpu.name,
                         p.gpu.sm, "ctx", "batch", "default", "tuned", "speed-up", "tuned", gpu);
    for (const auto& n : p.notes) s += n + "\n";
    return s;
}

std::string render_report_markdown(const Plan& p) {
    std::string s;
    s += fmt::format("# moeforge tune report: {}\n\n", p.host.cpu_name);
    s += fmt::format("Host `{}` ({}), model shape `{}`. Tuned {} in {:.0f} s (budget {:.0f} s) by {}; a tuned config "
                     "replaces the default only when it is faster by more than {:.0f}% on the same run (confirmed by "
                     "re-timing both).\n\n",
                     p.host_fingerprint, p.host_description, p.shape.key(), p.created_at, p.tune_seconds,
                     p.budget_seconds, p.tool_version, 100 * p.tolerance);
    s += "| host figure (measured) | value |\n| --- | --- |\n";
    s += fmt::format("| cores (workers) | {} |\n", p.host.cores);
    s += fmt::format("| AMX int8 peak, all cores | {}ops/s |\n", si_number(p.host.amx_int8_ops));
    s += fmt::format("| AVX-512 VNNI int8 peak, all cores | {}ops/s |\n", si_number(p.host.avx512_vnni_ops));
    s += fmt::format("| DRAM read | {}B/s |\n", si_number(p.host.dram_read_bytes));
    s += fmt::format("| last-level cache | {} MiB |\n\n", p.host.llc_bytes >> 20);

    s += "## Fused expert FFN (what `moeforge run` uses)\n\n";
    s += fmt::format("Per benchmark m (tokens per expert), a batch of experts with m tokens each through gate+up, "
                     "SiLU·up, down and the weighted accumulate, weights streamed from a pool larger than the LLC. "
                     "AVX-512 GEMV up to {} tokens per expert, AMX from {}.\n\n",
                     p.amx_min_tokens - 1, p.amx_min_tokens);
    s += "| m | serves m | default | tuned | speed-up | tuned ops/s | weight B/s | of roofline | chosen vs default |\n";
    s += "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n";
    auto row = [&](const PlannedKernel& k, bool with_role) {
        const double roof = roofline_ops(p, k);
        const std::string range = k.m_max >= (1 << 29) ? fmt::format("{}+", k.m_min) : fmt::format("{}–{}", k.m_min, k.m_max);
        s += fmt::format("| {}{} | {} | {} | {} | **{:.2f}×** | {} | {} | {:.0f}% | {} |\n",
                         with_role ? k.role + " " : "", k.bench_m, range, ms(k.default_seconds), ms(k.seconds),
                         k.speedup(), si_number(k.seconds > 0 ? k.ops / k.seconds : 0),
                         si_number(k.seconds > 0 ? k.bytes / k.seconds : 0),
                         roof > 0 && k.seconds > 0 ? 100 * k.ops / k.seconds / roof : 0.0,
                         config_changes(k.default_config, k.config));
    };
    for (const auto& k : p.kernels)
        if (k.family == "moe_ffn") row(k, false);
    if (!p.checks.empty()) {
        s += "\nIndependent check: `moeforge bench kernels`'s FFN benchmark on the search's problem (the same experts "
             "per driver call) with its own weights, inputs and timing, default and tuned config alternately in the "
             "same run, best pass of each:\n\n";
        s += "| m | experts per call | experts per pass | default | tuned | speed-up | tuned of roofline |\n";
        s += "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
        for (const auto& c : p.checks)
            s += fmt::format("| {} | {} | {} | {} | {} | **{:.2f}×** | {:.0f}% |\n", c.m,
                             c.experts_per_call > 0 ? std::to_string(c.experts_per_call) : "all", c.experts,
                             ms(c.default_seconds), ms(c.tuned_seconds), c.speedup(), 100 * c.roofline_ratio);
    }
    bool above_roof = false;
    for (const auto& k : p.kernels) {
        const double roof = roofline_ops(p, k);
        if (cpu_family(k) && k.seconds > 0 && roof > 0 && k.ops / k.seconds > 1.05 * roof) above_roof = true;
    }
    if (above_roof)
        s += "\n> **Warning:** some kernels measured faster than the roofline, so the host profile's peaks or bandwidth "
             "were measured under load. Re-run `moeforge tune` on an idle machine for trustworthy ratios.\n";
    s += "\n![roofline](roofline.svg)\n\n";
    s += "Filled markers: tuned; hollow: default, same run. The roof is min(measured peak, intensity × measured DRAM "
         "read bandwidth).\n\n";
    s += "## Search\n\n";
    int verified = 0, failed = 0, pruned = 0, timed = 0;
    for (const auto& t : p.trials) {
        if (t.family.rfind("handover", 0) == 0) continue;
        if (t.rung < 0)
            ++(t.failed ? failed : verified);
        else if (t.seconds > 0)
            ++timed;
        else
            ++pruned;
    }
    s += fmt::format("{} candidates matched the scalar reference and {} were refused or failed it (never timed); {} "
                     "timings; {} skipped by the roofline bound. Successive halving: every candidate briefly, the best "
                     "third three times longer, twice; the default on every rung.\n\n",
                     verified, failed, timed, pruned);
    s += "![fused FFN search](search-moe_ffn.svg)\n\n![kernel search](search-kernels.svg)\n\n";
    s += "![hand-over](handover.svg)\n\n";
    s += "## GEMM kernels inside the FFN (one expert, all workers)\n\n";
    s += "| role m | serves m | default | tuned | speed-up | tuned ops/s | weight B/s | of roofline | chosen vs default |\n";
    s += "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n";
    for (const char* fam : {"gemv_avx512", "gemm_amx"}) {
        s += fmt::format("| **{}** | | | | | | | | |\n", fam);
        for (const auto& k : p.kernels)
            if (k.family == fam) row(k, true);
    }
    if (std::any_of(p.kernels.begin(), p.kernels.end(), [](const auto& k) { return k.family == "mla_decode"; })) {
        s += fmt::format("\n## GPU: MLA decode, batch 1 ({}, sm_{})\n\n", p.gpu.name, p.gpu.sm);
        s += fmt::format("One layer's absorbed decode + split combine over the paged bf16 latent cache, replayed in a "
                         "CUDA graph over more distinct cache pages than the L2 holds, timed with CUDA events. Every "
                         "candidate (tile, stages, cluster, split policy) matched the scalar reference first. Floor: "
                         "reading the cache once at the measured device copy bandwidth ({}B/s, read + write).\n\n",
                         si_number(p.host.gpu_copy_bytes));
        s += "| context | serves context | default | tuned | speed-up | cache B/s | × floor | chosen kernel | chosen vs "
             "default |\n| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |\n";
        s += mla_decode_rows(p, true);
        s += "\n![MLA decode search](search-mla_decode.svg)\n";
    }
    if (!p.notes.empty()) {
        s += "\n## Notes\n\n";
        for (const auto& n : p.notes) s += "- " + n + "\n";
    }
    s += "\n## Placement\n\n";
    std::string cpus;
    for (int c : p.threads.cpus) {
        if (!cpus.empty()) cpus += ',';
        cpus += std::to_string(c);
    }
    s += fmt::format("- threads: {} workers pinned to cpus {}; NUMA binding of experts: {}\n", p.threads.workers, cpus,
                     p.threads.bind_experts_to_numa ? "on" : "off (one node)");
    s += fmt::format("- GPU: {}\n\n",
                     p.gpu.cpu_only ? "none (CPU only)"
                                    : fmt::format("device {} {}, {}", p.gpu.device, p.gpu.name,
                                                  p.gpu.gpu_layers < 0 ? std::string("all layers that fit")
                                                                       : fmt::format("{} layers", p.gpu.gpu_layers)));
    s += fmt::format("Re-render: `moeforge report --plan plan-{}-{}.json --out DIR`\n", p.host_fingerprint,
                     p.shape.key());
    return s;
}

std::filesystem::path write_report(const Plan& plan, const std::filesystem::path& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw std::runtime_error("cannot create the report directory " + dir.string() + ": " + ec.message());
    write_text(dir / "roofline.svg", render_roofline_svg(plan));
    write_text(dir / "search-moe_ffn.svg", render_search_svg(plan, "moe_ffn", "Fused expert FFN search"));
    write_text(dir / "search-kernels.svg", render_search_svg(plan, "gem", "GEMM kernel search (per role and m)"));
    write_text(dir / "handover.svg", render_handover_svg(plan));
    write_text(dir / "search-mla_decode.svg", render_search_svg(plan, "mla_decode", "MLA decode search (GPU, per context)"));
    const auto md = dir / "README.md";
    write_text(md, render_report_markdown(plan));
    return md;
}

}  // namespace mf
