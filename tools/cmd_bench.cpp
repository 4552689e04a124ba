// `moeforge bench`: model-level prefill/decode (`bench --model`) and kernel-level benchmarks (`bench kernels`).
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "tools/bench_attention.hpp"
#include "tools/bench_kernels.hpp"
#include "tools/bench_model.hpp"
#include "tools/command.hpp"
#include "tools/host_profile_cache.hpp"
#include "tools/progress_bar.hpp"

namespace mf {
namespace {

struct BenchKernelsCli {
    KernelBenchOptions opt;
    std::string wtype = "int8";
    std::string peer;
    std::string config_json;
    std::vector<std::string> alt_json;
    bool json = false;
    bool passes = false;
};

void run_bench_kernels(const BenchKernelsCli& c) {
    KernelBenchOptions opt = c.opt;
    enum_parse(c.wtype, opt.wtype);
    if (!c.peer.empty() && c.peer != "onednn")
        throw std::runtime_error("--peer '" + c.peer + "' is unknown; the only peer is onednn");
    opt.peer_onednn = c.peer == "onednn";
    if (!c.config_json.empty()) {
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(c.config_json);
        } catch (const std::exception& e) {
            throw std::runtime_error("--config is not valid JSON: " + std::string(e.what()));
        }
        opt.cfg = fields_from_json<ExpertFfnConfig>(j);
    }
    for (size_t i = 0; i < c.alt_json.size(); ++i) {
        try {
            opt.alts.push_back(fields_from_json<ExpertFfnConfig>(nlohmann::json::parse(c.alt_json[i])));
        } catch (const std::exception& e) {
            throw std::runtime_error("--alt " + std::to_string(i + 1) + " '" + c.alt_json[i] +
                                     "' is not a valid kernel config: " + e.what());
        }
    }
    const HostProfile hp = load_or_capture_host_profile();
    const int threads = opt.threads > 0 ? opt.threads : std::max(1, hp.worker_count());
    ProgressBar bar("bench kernels");
    const auto rows = run_kernel_bench(opt, hp, [&](std::string_view stage, int done, int total) {
        bar.update(uint64_t(done), uint64_t(total), stage);
    });
    bar.finish();
    if (c.json)
        fmt::print("{}\n", kernel_bench_json(rows).dump(2));
    else {
        fmt::print("{}{}kernel config: {}\n", render_kernel_bench(rows, hp, threads),
                   c.passes ? render_kernel_passes(rows, threads) : "",
                   kernel_name(ExpertFfnDesc{opt.wtype, opt.hidden, opt.inter}, opt.cfg));
        for (size_t i = 0; i < opt.alts.size(); ++i)
            fmt::print("alt{}: {}\n", i + 1, kernel_name(ExpertFfnDesc{opt.wtype, opt.hidden, opt.inter}, opt.alts[i]));
    }
}

}  // namespace

void add_bench_command(CLI::App& app, const GlobalOptions& g) {
    auto* bench = app.add_subcommand(
        "bench",
        "Benchmarks. `bench --model PATH`: prefill and decode tokens/s of a model with the time of each stage\n"
        "(attention, router, routed experts, shared expert, lm_head, sampling) and the routed experts' share of\n"
        "the measured DRAM bandwidth during decode. `bench kernels`: the routed-expert kernels against this\n"
        "host's roofline. `bench attention`: one CPU attention layer, no model file.");
    bench->require_subcommand(0, 1);
    auto model_opt = std::make_shared<BenchModelOptions>();
    add_bench_model_options(bench, *model_opt);
    bench->callback([bench, model_opt] {
        if (!bench->get_subcommands().empty()) return;
        if (model_opt->model.empty())
            throw std::runtime_error("bench needs --model PATH (a model benchmark) or the subcommand `kernels`");
        run_bench_model(*model_opt);
    });

    auto c = std::make_shared<BenchKernelsCli>();
    auto* k = bench->add_subcommand(
        "kernels",
        "Fused routed-expert FFN (gate+up, SiLU*up, down, weighted accumulate) on DeepSeek-V3 shapes (hidden "
        "7168,\n"
        "expert intermediate 2048) for each tokens-per-expert M. Enough experts are cycled that the weights "
        "far\n"
        "exceed the last-level cache. Reports ops/s (a multiply-add counts 2), weight bytes/s, and the ratio "
        "to the\n"
        "roofline min(AMX peak, ops per weight byte x DRAM read bandwidth) from the host profile (measured "
        "first if the\n"
        "cache has none for this host). The AMX peak is measured on random operands held in tiles (the unit's\n"
        "rate on real data; zero operands can run faster: that figure is shown too, with each M's ratio to it in\n"
        "'of 0-peak'). Each M is timed --repeats times and the best pass is kept.");
    k->add_flag("--json", c->json,
                "Print a JSON list of {m, wtype, impl, ops_per_s, bytes_per_s, roofline_ratio, ...}");
    k->add_option("--m", c->opt.ms, "Tokens per expert to measure, comma separated")
        ->delimiter(',')
        ->check(CLI::Range(1, 65536))
        ->capture_default_str();
    k->add_option("--wtype", c->wtype,
                  "Weight format: int8 (one scale per output channel), int4 (scale and min per group of 32, "
                  "as Q4_K),\n"
                  "bf16 (activations rounded to bf16)")
        ->check(CLI::IsMember({"int8", "int4", "bf16"}))
        ->capture_default_str();
    k->add_option("--threads", c->opt.threads, "Worker threads, pinned one per physical core (0: all cores)")
        ->check(CLI::Range(0, 4096));
    k->add_option(
         "--experts", c->opt.experts,
         "Experts cycled per pass (0: enough for 4x the last-level cache, at most half the free memory)")
        ->check(CLI::Range(0, 100000));
    k->add_option("--repeats", c->opt.repeats, "Timed passes per M; the best is reported")
        ->check(CLI::Range(1, 100))
        ->capture_default_str();
    k->add_option("--alt", c->alt_json,
                  "Another kernel config (JSON, as --config) to time in the same run: its passes alternate with\n"
                  "--config's on the same experts and inputs, so machine noise hits both alike; rows alt1, alt2, ...\n"
                  "(repeat the option for more)")
        ->allow_extra_args(false);
    k->add_flag("--passes", c->passes,
                "Also print where moeforge's time went per M: each pass of the fused FFN (quantise, gate/up with\n"
                "SiLU*up, requantise, down with the accumulate) and the GEMM kernels' share of their passes");
    k->add_flag("--y-huge", c->opt.y_huge,
                "Put the output rows (y, accumulated into by the down pass) on 2 MiB pages instead of a vector's\n"
                "4 KiB pages (how callers allocate them today): one token's row is 28 KiB, so on 4 KiB pages the\n"
                "accumulate takes a TLB miss per row");
    k->add_option("--peer", c->peer,
                  "Also time another implementation on the same shapes and weight bytes: onednn");
    k->add_option(
        "--config", c->config_json,
        "Kernel config as JSON, e.g. '{\"gemv_max_m\":4,\"n_block\":256}' (fields as kernel-dump prints)");
    k->callback([c] { run_bench_kernels(*c); });

    auto a = std::make_shared<AttentionBenchOptions>();
    auto* at = bench->add_subcommand(
        "attention",
        "One MLA attention layer on the CPU (norms, q/kv projections, the absorbed per-head attention over the\n"
        "latent cache, output projection) at DeepSeek-V3's widths, with seeded random weights: no model file.\n"
        "Times a prefill chunk from position 0, then single-token decode steps at each context length (the cache\n"
        "rows before it hold random latent rows); reports ms per token and the packed weights' bytes per second.");
    at->add_option("--preset", a->preset, "Widths of a mkmodel preset (v3-slice-N: DeepSeek-V3's; tiny, small)")
        ->capture_default_str();
    at->add_option("--dense", a->dense, "Compute format of the projections: bf16 or int8 (per channel)")
        ->check(CLI::IsMember({"bf16", "int8"}))
        ->capture_default_str();
    at->add_option("--threads", a->threads, "Worker threads, pinned one per physical core (0: all cores)")
        ->check(CLI::Range(0, 4096));
    at->add_option("--prefill", a->prefill, "Tokens of the prefill chunk (0: no prefill)")
        ->check(CLI::Range(int64_t(0), int64_t(1) << 16))
        ->capture_default_str();
    at->add_option("--ctx", a->ctx, "Context lengths of the decode steps, comma separated")
        ->delimiter(',')
        ->check(CLI::Range(int64_t(1), int64_t(1) << 20))
        ->capture_default_str();
    at->add_option("--steps", a->steps, "Decode steps per context length; the best is reported")
        ->check(CLI::Range(1, 10000))
        ->capture_default_str();
    at->callback([a] { fmt::print("{}", render_attention_bench(run_attention_bench(*a))); });
}

}  // namespace mf
