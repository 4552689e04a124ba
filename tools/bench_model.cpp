#include "tools/bench_model.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/model_bench.hpp"
#include "tools/cache_dir.hpp"
#include "tools/model_loading.hpp"
#include "tune/host_profile.hpp"

namespace mf {

void add_bench_model_options(CLI::App* cmd, BenchModelOptions& o, bool add_json) {
    cmd->add_option("--model", o.model,
                    "Benchmark this model end to end (GGUF or HF directory): prefill and decode tok/s, time per stage, "
                    "routed experts' share of DRAM bandwidth");
    cmd->add_option("--prompt-len", o.prompt_lens, "Prompt lengths to time prefill at (comma separated)")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("--gen", o.gen, "Tokens to decode (greedy) after the first prompt length")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 20))
        ->capture_default_str();
    if (add_json) cmd->add_flag("--json", o.json, "Print JSON (keys prefill_tok_s, decode_tok_s, stages, ...)");
    add_runtime_options(cmd, o.runtime, /*ctx_option=*/false);
}

namespace {

double dram_read_bandwidth() {
    const auto path = cache_dir() / "host-profile.json";
    if (!std::filesystem::exists(path)) return 0;
    try {
        std::ifstream f(path);
        const HostProfile p = host_profile_from_json(nlohmann::json::parse(f));
        return p.dram_read_total.value;
    } catch (const std::exception& e) {
        fmt::print(stderr, "moeforge: ignoring {}: {}\n", path.string(), e.what());
        return 0;
    }
}

}  // namespace

void run_bench_model(const BenchModelOptions& o) {
    ModelBenchOptions mo;
    mo.prompt_lens = o.prompt_lens;
    mo.gen = o.gen;
    mo.dram_bytes_per_s = dram_read_bandwidth();
    int64_t longest = 0;
    for (int64_t n : o.prompt_lens) longest = std::max(longest, n);
    if (o.prompt_lens.empty()) throw std::runtime_error("--prompt-len: give at least one length");
    RuntimeOptions ro = o.runtime;
    ro.ctx = std::max(longest, o.prompt_lens[0] + o.gen);
    auto model = load_model_for_cli(o.model, ro);
    const ModelBenchResult r = run_model_bench(*model, mo, [&](const std::string& stage) {
        fmt::print(stderr, "bench: {}\n", stage);
    });
    if (o.json)
        fmt::print("{}\n", model_bench_json(r).dump(2));
    else
        fmt::print("{}", render_model_bench(r));
}

}  // namespace mf
