// `moeforge report`: re-renders the autotune report (Markdown + SVG) of a plan.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "runtime/plan.hpp"
#include "tools/cache_dir.hpp"
#include "tools/command.hpp"
#include "tune/host_profile.hpp"
#include "tune/report.hpp"

namespace mf {
namespace {

struct ReportOptions {
    std::string plan;
    std::string out;
};

void run_report(const ReportOptions& o) {
    std::filesystem::path path = o.plan;
    if (path.empty()) {
        HostProfileOptions quick;
        quick.measure = false;
        const HostProfile id = capture_host_profile(quick);
        path = cache_dir() / plan_file_name(id.fingerprint, ModelShape{});
        if (!std::filesystem::exists(path))
            throw std::runtime_error(fmt::format("no plan {} for this host and DeepSeek-V3's shape: run `moeforge tune` "
                                                 "first, or pass --plan FILE",
                                                 path.string()));
    }
    const Plan plan = read_plan_file(path);  // any host's plan renders; only run refuses a foreign one
    const std::filesystem::path out = o.out.empty() ? path.parent_path() / fmt::format("report-{}-{}",
                                                                                      plan.host_fingerprint,
                                                                                      plan.shape.key())
                                                    : std::filesystem::path(o.out);
    const auto md = write_report(plan, out);
    fmt::print("{}report: {}\n", render_plan_summary(plan), md.string());
}

}  // namespace

void add_report_command(CLI::App& app, const GlobalOptions&) {
    auto opt = std::make_shared<ReportOptions>();
    auto* cmd = app.add_subcommand(
        "report",
        "Re-render the autotune report of a plan: README.md with a roofline chart, the search's best-so-far\n"
        "curves, the AVX-512/AMX hand-over and tables of chosen against default parameters (SVG charts, readable\n"
        "on GitHub and in a browser). Works on a plan from any host.");
    cmd->add_option("--plan", opt->plan,
                    "Plan file (default: this host's plan for DeepSeek-V3's shape in the cache dir)")
        ->check(CLI::ExistingFile);
    cmd->add_option("--out", opt->out, "Report directory (default: report-<host>-<shape> beside the plan)");
    cmd->callback([opt] { run_report(*opt); });
}

}  // namespace mf
