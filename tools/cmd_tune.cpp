// `moeforge tune`: the host profile (always the first stage), then the kernel search for a model's shapes.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "tools/cache_dir.hpp"
#include "tools/command.hpp"
#include "tools/progress_bar.hpp"
#include "tune/host_profile.hpp"

namespace mf {
namespace {

struct TuneOptions {
    bool host_only = false;
    bool json = false;
    int repeats = 5;
    double seconds_per_run = 0.05;
    std::string model;
};

void run_tune(const TuneOptions& o, const GlobalOptions& g) {
    HostProfileOptions hopt;
    hopt.repeats = o.repeats;
    hopt.seconds_per_run = o.seconds_per_run;
    ProgressBar bar("host profile");
    const HostProfile p = capture_host_profile(hopt, [&](std::string_view stage, int done, int total) {
        bar.update(uint64_t(done), uint64_t(total), stage);
    });
    bar.finish();
    const auto dir = cache_dir();
    const std::string text = host_profile_to_json(p).dump(2) + "\n";
    write_file_atomic(dir / fmt::format("host-{}.json", p.fingerprint), text);
    write_file_atomic(dir / "host-profile.json", text);
    if (o.json)
        fmt::print("{}", text);
    else
        fmt::print("{}saved to {}\n", render_host_profile(p), (dir / "host-profile.json").string());
    if (!o.host_only) {
        fmt::print(stderr, "moeforge tune: the kernel search is not built yet (issue #7); the host profile was saved.\n");
        throw CommandExit{kExitNotBuilt};
    }
}

}  // namespace

void add_tune_command(CLI::App& app, const GlobalOptions& g) {
    auto opt = std::make_shared<TuneOptions>();
    auto* cmd = app.add_subcommand(
        "tune",
        "Profile this host (ISA, AMX, caches, NUMA, GPU, measured compute peaks and DRAM bandwidth) and fit the\n"
        "kernels to it. The profile is saved in the cache dir ($XDG_CACHE_HOME/moeforge or ~/.cache/moeforge).\n"
        "Run it on an idle machine: the peaks are measured, not looked up.");
    cmd->add_flag("--host-only", opt->host_only, "Stop after the host profile");
    cmd->add_flag("--json", opt->json, "Print the profile as JSON on stdout (progress stays on stderr)");
    cmd->add_option("--model", opt->model, "Model whose shapes to tune for (GGUF file or HF directory)");
    cmd->add_option("--repeats", opt->repeats, "Timed runs per measurement; the best is kept")
        ->check(CLI::Range(1, 100))
        ->capture_default_str();
    cmd->add_option("--seconds-per-run", opt->seconds_per_run, "Length of one timed run of a compute peak")
        ->check(CLI::Range(0.001, 10.0))
        ->capture_default_str();
    cmd->callback([opt, &g] { run_tune(*opt, g); });
}

}  // namespace mf
