// The tune report: Markdown with hand-written SVG charts, rendered from a plan alone (so `moeforge report` can
// re-render it anywhere): a roofline chart placing each chosen kernel against the host's measured peaks and DRAM
// bandwidth, best-so-far curves of the search, the AVX-512/AMX hand-over, and tables of chosen against default
// parameters with the speed-up of each.
#pragma once
#include <filesystem>
#include <string>

#include "runtime/plan.hpp"

namespace mf {

// Writes README.md, roofline.svg, search-moe_ffn.svg, search-kernels.svg and handover.svg into dir (created);
// returns the Markdown file's path.
std::filesystem::path write_report(const Plan& plan, const std::filesystem::path& dir);

std::string render_report_markdown(const Plan& plan);
std::string render_roofline_svg(const Plan& plan);
// Best-so-far speed-up over the default against timed trials, one curve per search family whose name starts with
// `family_prefix` (e.g. "moe_ffn", or "gem" for the GEMM kernels).
std::string render_search_svg(const Plan& plan, const std::string& family_prefix, const std::string& title);
std::string render_handover_svg(const Plan& plan);

// The short table `moeforge tune` prints: per fused-FFN benchmark m, default and tuned time and the speed-up.
std::string render_plan_summary(const Plan& plan);

// "n_block: 128 → 256, m_block: 256 → 64" (only the fields that differ), or "default".
std::string config_changes(const nlohmann::json& default_config, const nlohmann::json& config);

// Roofline of one kernel entry: min(peak of its path, intensity x DRAM bandwidth) in ops/s.
double roofline_ops(const Plan& plan, const PlannedKernel& k);

}  // namespace mf
