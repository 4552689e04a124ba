// `moeforge tune`: the host profile (always the first stage), then the kernel search for a model's shapes, the plan
// and the report.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "model/model.hpp"
#include "runtime/plan.hpp"
#include "codegen/x64/expert_gemm_desc.hpp"
#include "tools/bench_kernels.hpp"
#include "tools/cache_dir.hpp"
#include "tools/command.hpp"
#include "tools/progress_bar.hpp"
#include "tune/host_profile.hpp"
#include "tune/report.hpp"
#include "tune/trial_store.hpp"
#include "tune/tuner.hpp"

namespace mf {
namespace {

struct TuneOptions {
    bool host_only = false;
    bool json = false;
    int repeats = 5;
    double seconds_per_run = 0.05;
    std::string model;
    double budget = 240;
    std::string wtype = "int8";
    ModelShape shape;
    bool fresh = false;
    bool reuse_profile = false;
    bool cpu_only = false;
    int gpu_layers = -1;
    int pool_mib = 0;
    bool no_check = false;
    int check_experts = 16;
    std::string out;
};

std::atomic<bool> g_stop{false};
extern "C" void on_sigint(int) { g_stop.store(true); }

HostProfile host_profile_stage(const TuneOptions& o, const std::filesystem::path& dir) {
    if (o.reuse_profile) {
        HostProfileOptions quick;
        quick.measure = false;
        const HostProfile id = capture_host_profile(quick);
        const auto path = dir / fmt::format("host-{}.json", id.fingerprint);
        std::ifstream f(path);
        if (f) {
            std::stringstream ss;
            ss << f.rdbuf();
            HostProfile p = host_profile_from_json(nlohmann::json::parse(ss.str()));
            fmt::print(stderr, "host profile: reusing {} (captured {})\n", path.string(), p.captured_at);
            return p;
        }
        fmt::print(stderr, "host profile: no saved profile {} for this host; measuring\n", path.string());
    }
    HostProfileOptions hopt;
    hopt.repeats = o.repeats;
    hopt.seconds_per_run = o.seconds_per_run;
    ProgressBar bar("host profile");
    const HostProfile p = capture_host_profile(hopt, [&](std::string_view stage, int done, int total) {
        bar.update(uint64_t(done), uint64_t(total), stage);
    });
    bar.finish();
    const std::string text = host_profile_to_json(p).dump(2) + "\n";
    write_file_atomic(dir / fmt::format("host-{}.json", p.fingerprint), text);
    write_file_atomic(dir / "host-profile.json", text);
    if (o.json)
        fmt::print("{}", text);
    else
        fmt::print("{}saved to {}\n", render_host_profile(p), (dir / "host-profile.json").string());
    return p;
}

// The independent check: `bench kernels`'s benchmark with the default config and with the plan's, alternately. It
// poses the search's problem (the same experts per driver call, k->bench_experts) on its own weights, inputs and
// timing loop, over more distinct experts per pass (a whole number of calls).
void check_plan(Plan& plan, const HostProfile& hp, int experts) {
    std::vector<const PlannedKernel*> ffn;
    for (const auto& k : plan.kernels)
        if (k.family == "moe_ffn") ffn.push_back(&k);
    ProgressBar bar("check with bench kernels");
    int done = 0;
    for (const PlannedKernel* k : ffn) {
        bar.update(uint64_t(done++), ffn.size(), fmt::format("m={}", k->bench_m));
        if (g_stop) break;
        KernelBenchOptions opt;
        opt.ms = {k->bench_m};
        opt.hidden = plan.shape.hidden;
        opt.inter = plan.shape.moe_intermediate;
        enum_parse(plan.shape.wtype, opt.wtype);
        opt.experts_per_call = std::max(1, k->bench_experts);
        opt.experts = std::min(experts, default_bench_experts(opt, hp));
        opt.experts = std::max(opt.experts_per_call, opt.experts / opt.experts_per_call * opt.experts_per_call);
        // Passes enough for about 0.3 s per config and round (a decode-sized pass lasts tens of ms: one noisy pass
        // must not decide), estimated from the search's time per call.
        const double pass_s = std::max(k->default_seconds, k->seconds) * opt.experts / opt.experts_per_call;
        opt.repeats = std::clamp(pass_s > 0 ? int(0.3 / pass_s) : 2, 2, 12);
        PlanCheck c;
        c.m = k->bench_m;
        c.experts = opt.experts;
        c.experts_per_call = opt.experts_per_call;
        c.default_seconds = c.tuned_seconds = 1e30;
        const bool same = k->config == k->default_config;  // nothing to compare: time once, report 1.00x
        for (int round = 0; round < 2; ++round)
            for (bool tuned : {false, true}) {
                if (same && (round > 0 || tuned)) continue;
                opt.cfg = fields_from_json<ExpertFfnConfig>(tuned ? k->config : k->default_config);
                const auto rows = run_kernel_bench(opt, hp, {});
                if (rows.empty()) continue;
                double& best = tuned ? c.tuned_seconds : c.default_seconds;
                if (rows[0].seconds < best) {
                    best = rows[0].seconds;
                    if (tuned || same) c.roofline_ratio = rows[0].roofline_ratio;
                }
            }
        if (same) c.tuned_seconds = c.default_seconds;
        plan.checks.push_back(c);
    }
    bar.finish();
}

void run_tune(const TuneOptions& o, const GlobalOptions& g) {
    ModelShape shape = o.shape;
    shape.wtype = o.wtype;
    shape.group_size = o.wtype == "int4" ? kInt4Group : 0;  // the int4 kernels' group along K (Q4_K's sub-block)
    if (!o.model.empty() && !o.host_only) {
        // Only the config is needed; the weights stay mapped, not read.
        const auto model = Model::open(o.model);
        const DeepSeekV3Config& c = model->config();
        shape = model_shape_of(c, o.wtype);
        fmt::print(stderr, "model {}: {}\n", o.model, describe(c));
    }
    const auto dir = cache_dir();
    const HostProfile p = host_profile_stage(o, dir);
    if (o.host_only) return;

    TuneSettings t;
    t.budget_seconds = o.budget;
    t.trials_file = dir / fmt::format("trials-{}-{}.jsonl", p.fingerprint, shape.key());
    t.fresh = o.fresh;
    t.cpu_only = o.cpu_only;
    t.gpu_layers = o.gpu_layers;
    t.pool_bytes = uint64_t(o.pool_mib) << 20;
    t.tool_version = "moeforge 0.1.0";
    t.cubin_dir = dir / "cubin";
    t.stop = &g_stop;
    if (!o.fresh && std::filesystem::exists(t.trials_file)) {
        const TrialStore earlier(t.trials_file, tune_context(p, shape, t.tool_version));
        if (earlier.loaded() > 0)
            fmt::print(stderr, "tune: resuming with {} finished trials from {} (--fresh starts over)\n",
                       earlier.loaded(), t.trials_file.string());
    }
    ProgressBar bar(fmt::format("tune {}", shape.key()));
    t.progress = [&](double fraction, const std::string& what) { bar.update(uint64_t(fraction * 1000), 1000, what); };
    g_stop = false;
    auto old = std::signal(SIGINT, on_sigint);
    Plan plan;
    try {
        plan = tune_plan(p, shape, t);
    } catch (const TuneInterrupted&) {
        std::signal(SIGINT, old);
        bar.finish("interrupted");
        fmt::print(stderr,
                   "moeforge tune: interrupted; the finished trials are saved in {}. Run the same command again to "
                   "resume (--fresh starts over).\n",
                   t.trials_file.string());
        throw CommandExit{130};
    }
    bar.finish(fmt::format("{:.0f} s", plan.tune_seconds));
    if (!o.no_check) check_plan(plan, p, o.check_experts);
    std::signal(SIGINT, old);
    const auto plan_path = dir / plan_file_name(p.fingerprint, shape);
    write_plan_file(plan_path, plan);
    const std::filesystem::path out =
        o.out.empty() ? dir / fmt::format("report-{}-{}", p.fingerprint, shape.key()) : std::filesystem::path(o.out);
    const auto report = write_report(plan, out);
    fmt::print("{}", render_plan_summary(plan));
    fmt::print("plan:   {}\nreport: {}\n", plan_path.string(), report.string());
}

}  // namespace

void add_tune_command(CLI::App& app, const GlobalOptions& g) {
    auto opt = std::make_shared<TuneOptions>();
    auto* cmd = app.add_subcommand(
        "tune",
        "Profile this host (ISA, AMX, caches, NUMA, GPU, measured compute peaks and DRAM bandwidth) and fit the\n"
        "kernels to it. The profile is saved in the cache dir ($XDG_CACHE_HOME/moeforge or ~/.cache/moeforge).\n"
        "Then search the expert kernels' tuning parameters for the model's shapes (DeepSeek-V3/R1's by default):\n"
        "every candidate is checked against a scalar reference before it is timed, candidates that cannot beat the\n"
        "best are pruned by the roofline, and the rest go through successive halving. With a CUDA GPU, 15% of the\n"
        "budget searches the MLA decode kernel (tile, stages, cluster, split count policy) at batch 1 over 1K, 8K\n"
        "and 32K tokens of context, each candidate checked against a CPU reference first. Writes the plan\n"
        "(plan-<host>-<shape>.json, keyed by the widths the kernels see, which `moeforge run` loads for any model\n"
        "of those widths) and a report (Markdown + SVG charts).\n"
        "Ctrl-C stops after the current trial; running the same command again resumes.\n"
        "Run it on an idle machine: the peaks and the kernels are measured, not looked up.");
    cmd->add_flag("--host-only", opt->host_only, "Stop after the host profile");
    cmd->add_flag("--json", opt->json, "Print the profile as JSON on stdout (progress stays on stderr)");
    cmd->add_option("--model", opt->model,
                    "Model whose shapes to tune for (GGUF file, any part of a split GGUF, or HF checkpoint directory); "
                    "overrides --hidden/--moe-intermediate/--top-k. The plan is keyed by the widths the kernels see, not by "
                    "layer or expert counts, so it also serves v3-slice models of the same widths");
    cmd->add_option("--repeats", opt->repeats, "Timed runs per host-profile measurement; the best is kept")
        ->check(CLI::Range(1, 100))
        ->capture_default_str();
    cmd->add_option("--seconds-per-run", opt->seconds_per_run, "Length of one timed run of a compute peak")
        ->check(CLI::Range(0.001, 10.0))
        ->capture_default_str();
    cmd->add_option("--budget", opt->budget,
                    "Seconds for the kernel search (after the host profile); more finds better configs")
        ->check(CLI::Range(5.0, 86400.0))
        ->capture_default_str();
    cmd->add_option("--wtype", opt->wtype,
                    "Compute format of the routed experts' weights (int4: groups of 32 along K, as `run` uses for "
                    "Q4_K models)")
        ->check(CLI::IsMember({"int8", "int4", "bf16"}))
        ->capture_default_str();
    cmd->add_option("--hidden", opt->shape.hidden, "Model width (DeepSeek-V3: 7168)")
        ->check(CLI::Range(64, 65536))
        ->capture_default_str();
    cmd->add_option("--moe-intermediate", opt->shape.moe_intermediate, "Routed expert width (DeepSeek-V3: 2048)")
        ->check(CLI::Range(64, 65536))
        ->capture_default_str();
    cmd->add_option("--top-k", opt->shape.top_k, "Experts per token (DeepSeek-V3: 8)")
        ->check(CLI::Range(1, 64))
        ->capture_default_str();
    cmd->add_flag("--fresh", opt->fresh, "Forget the trials of earlier (interrupted) runs and start over");
    cmd->add_flag("--reuse-profile", opt->reuse_profile,
                  "Reuse this host's saved profile instead of measuring it again (fast; for re-tuning)");
    cmd->add_flag("--cpu-only", opt->cpu_only,
                  "Plan for the CPU only, even where a GPU is present (skips the GPU kernel search)");
    cmd->add_option("--gpu-layers", opt->gpu_layers,
                    "Layers whose attention/dense/shared-expert work goes to the GPU (-1: all that fit)")
        ->capture_default_str();
    cmd->add_option("--pool-mib", opt->pool_mib,
                    "Weight pool per benchmark in MiB (0: four times the last-level cache, at most 4 GiB)")
        ->check(CLI::Range(0, 1 << 20))
        ->capture_default_str();
    cmd->add_flag("--no-check", opt->no_check,
                  "Skip the final check, which re-runs `bench kernels`'s FFN benchmark with the default and the tuned "
                  "config");
    cmd->add_option("--check-experts", opt->check_experts, "Experts per pass in the final check")
        ->check(CLI::Range(2, 256))
        ->capture_default_str();
    cmd->add_option("--out", opt->out, "Directory for the report (default: report-<host>-<shape> in the cache dir)");
    cmd->callback([opt, &g] { run_tune(*opt, g); });
}

}  // namespace mf
