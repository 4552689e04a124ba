// The report renders from a plan alone: Markdown tables with the speed-ups, SVG charts that are complete documents
// with one marker per kernel point and the roofs.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "tune/report.hpp"
#include "tune/svg_plot.hpp"

using namespace mf;

namespace {

int count(const std::string& s, const std::string& what) {
    int n = 0;
    for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
    return n;
}

Plan sample() {
    Plan p = default_plan("00112233aabbccdd", ModelShape{});
    p.is_default = false;
    p.host = {"Test Xeon", 16, 40e12, 20e12, 5e12, 100e9, 300ull << 20};
    p.tolerance = 0.03;
    p.amx_min_tokens = 8;
    p.kernels.clear();
    for (int m : {1, 64, 1024}) {
        PlannedKernel k;
        k.family = "moe_ffn";
        k.role = "expert";
        k.bench_m = m;
        k.bench_experts = 8;
        k.ops = 2.0 * 3 * 7168 * 2048 * m * 8;
        k.bytes = 3.0 * 7168 * 2048 * 8;
        k.seconds = std::max(k.bytes / 90e9, k.ops / 20e12);
        k.default_seconds = k.seconds * 1.25;
        k.config = {{"n_block", 256}, {"m_block", 256}};
        k.default_config = {{"n_block", 128}, {"m_block", 256}};
        p.kernels.push_back(k);
    }
    for (int i = 0; i < 10; ++i)
        p.trials.push_back({"moe_ffn m1", fmt::format("c{}", i), 0.1 * i, 1.0 - 0.02 * i, i < 8 ? 0 : 1, i == 0, false});
    p.checks = {{1, 16, 8, 0.030, 0.024, 0.8}};
    p.trials.push_back({"handover gate_up m4", "gemv", 1, 0.001, 0, true, false});
    p.trials.push_back({"handover gate_up m4", "amx", 1, 0.002, 0, false, false});
    p.trials.push_back({"handover gate_up m16", "gemv", 1, 0.004, 0, true, false});
    p.trials.push_back({"handover gate_up m16", "amx", 1, 0.002, 0, false, false});
    return p;
}

}  // namespace

TEST_CASE("report: tables carry the speed-up and the changed fields") {
    const Plan p = sample();
    const std::string md = render_report_markdown(p);
    CHECK(count(md, "**1.25×**") == 4);  // three kernels and the bench-kernels check
    CHECK(md.find("Independent check") != std::string::npos);
    CHECK(md.find("Warning") == std::string::npos);
    CHECK(md.find("n_block: 128 → 256") != std::string::npos);
    CHECK(md.find("![roofline](roofline.svg)") != std::string::npos);
    CHECK(config_changes({{"a", 1}}, {{"a", 1}}) == "default");
    const std::string summary = render_plan_summary(p);
    CHECK(count(summary, "1.25x") == 4);
    CHECK(summary.find("bench kernels check") != std::string::npos);
    // A kernel faster than the roofline means the profile was measured under load: the report says so.
    Plan q = p;
    q.kernels[0].seconds /= 3;
    CHECK(render_report_markdown(q).find("Warning") != std::string::npos);
}

TEST_CASE("report: roofline against the measured peaks, one marker per tuned and default point") {
    const Plan p = sample();
    // m = 1 is DRAM-bound: its roof is intensity x bandwidth; m = 1024 is compute-bound: the AMX peak.
    CHECK(roofline_ops(p, p.kernels[0]) == doctest::Approx(p.kernels[0].ops / p.kernels[0].bytes * 100e9));
    CHECK(roofline_ops(p, p.kernels[2]) == doctest::Approx(40e12));
    const std::string svg = render_roofline_svg(p);
    CHECK(svg.rfind("<svg", 0) == 0);
    CHECK(count(svg, "</svg>") == 1);
    CHECK(count(svg, "<circle") == 6);
    CHECK(svg.find("AMX int8 peak") != std::string::npos);
    CHECK(svg.find("nan") == std::string::npos);
}

TEST_CASE("report: best-so-far curve never rises and the files are written") {
    const Plan p = sample();
    const std::string svg = render_search_svg(p, "moe_ffn", "search");
    CHECK(count(svg, "<polyline") == 2);  // the default line and one family
    const std::string h = render_handover_svg(p);
    CHECK(count(h, "<circle") == 4);
    const auto dir = std::filesystem::temp_directory_path() / ("mf_test_report_" + std::to_string(getpid()));
    const auto md = write_report(p, dir);
    CHECK(std::filesystem::exists(md));
    for (const char* f : {"roofline.svg", "search-moe_ffn.svg", "search-kernels.svg", "handover.svg"})
        CHECK(std::filesystem::file_size(dir / f) > 200);
    std::filesystem::remove_all(dir);
}

TEST_CASE("svg: numbers in engineering notation and escaped text") {
    CHECK(si_number(1.5e12) == "1.5 T");
    CHECK(si_number(2e-3) == "2 m");
    CHECK(si_number(0) == "0");
    CHECK(xml_escape("a<b & \"c\"") == "a&lt;b &amp; &quot;c&quot;");
}

TEST_CASE("report: the GPU's MLA decode entries get their own table against the copy-bandwidth floor") {
    Plan p = sample();
    const std::string cpu_svg = render_roofline_svg(p);
    p.gpu = {false, 0, -1, "NVIDIA H200", 90};
    p.host.gpu_copy_bytes = 4e12;
    for (int ctx : {1024, 32768}) {
        PlannedKernel k;
        k.family = "mla_decode";
        k.role = "decode";
        k.name = "mla_decode_bf16_h128_lat512_rope64_pg64__t32_s2_c4";
        k.bench_m = ctx;
        k.bench_experts = 1;
        k.bytes = ctx * 576.0 * 2;
        k.ops = 2.0 * 128 * ctx * 1088;
        k.seconds = 2 * k.bytes / p.host.gpu_copy_bytes;  // twice the floor
        k.default_seconds = k.seconds * 1.5;
        k.config = {{"tile_tokens", 32}, {"cluster", 4}, {"split_sm_fill_pct", 50}};
        k.default_config = {{"tile_tokens", 64}, {"cluster", 1}, {"split_sm_fill_pct", 100}};
        p.kernels.push_back(k);
    }
    const std::string md = render_report_markdown(p);
    CHECK(md.find("## GPU: MLA decode, batch 1 (NVIDIA H200, sm_90)") != std::string::npos);
    CHECK(count(md, "**1.50×**") == 2);
    CHECK(count(md, "| 2.00× |") == 2);  // x floor
    CHECK(md.find("split_sm_fill_pct: 100 → 50") != std::string::npos);
    CHECK(md.find("search-mla_decode.svg") != std::string::npos);
    CHECK(md.find("Warning") == std::string::npos);  // GPU kernels are not held against the CPU roofline
    CHECK(render_roofline_svg(p) == cpu_svg);
    const std::string summary = render_plan_summary(p);
    CHECK(summary.find("MLA decode on NVIDIA H200 (sm_90), batch 1") != std::string::npos);
    CHECK(count(summary, "1.50x") == 2);
    // Without a GPU the plan's note says why the GPU search was skipped, in the report and the summary.
    Plan cpu = sample();
    cpu.notes = {"GPU search skipped: no CUDA GPU here"};
    CHECK(render_report_markdown(cpu).find("- GPU search skipped: no CUDA GPU here") != std::string::npos);
    CHECK(render_plan_summary(cpu).find("GPU search skipped") != std::string::npos);
    CHECK(render_report_markdown(cpu).find("## GPU") == std::string::npos);
}
