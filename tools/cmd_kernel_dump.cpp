// `moeforge kernel-dump`: every x86 kernel the routed-expert FFN uses: name, descriptor, config, code size,
// emission time and disassembly (Zydis; AMX instructions by name); with --cuda, the GPU kernels (source, PTX,
// SASS) instead.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "codegen/kernel_cache.hpp"
#include "codegen/x64/disasm_x64.hpp"
#include "codegen/x64/expert_ffn_desc.hpp"
#include "runtime/expert_ffn.hpp"
#include "tools/command.hpp"
#include "runtime/plan.hpp"
#include "tools/cache_dir.hpp"
#include "tools/kernel_dump_cuda.hpp"
#include "tune/host_profile.hpp"

namespace mf {
namespace {

struct KernelDumpCli {
    std::string desc_json, config_json, filter;
    bool all = false, no_disasm = false, json = false;
    bool cuda = false;
    CudaDumpOptions cuda_opt;
    std::string plan_file;
};

template <class T>
T parse_fields(const std::string& text, const char* option, const T& base = T{}) {
    if (text.empty()) return base;
    try {
        return fields_from_json<T>(nlohmann::json::parse(text), base);
    } catch (const std::exception& e) {
        throw std::runtime_error(fmt::format("{}: {}", option, e.what()));
    }
}

void run_kernel_dump(const KernelDumpCli& c) {
    if (c.cuda) {
        CudaDumpOptions o = c.cuda_opt;
        o.filter = c.filter;
        // The plan's CUDA kernels: --plan, else this host's plan for DeepSeek-V3's shape if tune wrote one.
        std::filesystem::path path = c.plan_file;
        if (path.empty()) {
            HostProfileOptions quick;
            quick.measure = false;
            const HostProfile id = capture_host_profile(quick);
            path = cache_dir() / plan_file_name(id.fingerprint, ModelShape{});
            if (!std::filesystem::exists(path)) path.clear();
        }
        Plan plan;
        if (!path.empty()) {
            plan = read_plan_file(path);
            o.plan = &plan;
        }
        fmt::print("{}", render_cuda_kernel_dump(o));
        return;
    }
    const ExpertFfnDesc desc =
        parse_fields(c.desc_json, "--desc", ExpertFfnDesc{WeightType::int8, 7168, 2048});
    const ExpertFfnConfig cfg = parse_fields<ExpertFfnConfig>(c.config_json, "--config");
    KernelCache cache;
    const ExpertFfn ffn(desc, cfg, cache, 1);  // resolves (emits) every kernel it may call
    nlohmann::json list = nlohmann::json::array();
    if (!c.json)
        fmt::print("{}\n  desc:   {}\n  config: {}\n  AMX: {}; disassembler: {}\n\n", kernel_name(desc, cfg),
                   fields_to_string(desc), fields_to_string(cfg), ffn.uses_amx() ? "yes" : "no (GEMV only)",
                   have_disassembler() ? "Zydis" : "none (raw bytes)");
    for (const CachedKernel* e : cache.entries()) {
        const bool shown = c.all || e->name.starts_with("gemm_amx") ||
                           e->name.find("_m1__") != std::string::npos ||
                           e->name.find("_m4__") != std::string::npos;
        if (!shown || (!c.filter.empty() && e->name.find(c.filter) == std::string::npos)) continue;
        const JitKernel& k = *e->kernel;
        const std::string dis = c.no_disasm ? ""
                                            : disassemble_x64(static_cast<const uint8_t*>(k.entry()),
                                                              k.code_size(), k.text_size());
        if (c.json) {
            list.push_back({{"name", e->name},
                            {"desc", e->desc_json},
                            {"config", e->config_json},
                            {"code_bytes", k.code_size()},
                            {"emit_seconds", e->emit_seconds},
                            {"disassembly", dis}});
            continue;
        }
        fmt::print(
            "== {}\n  desc:   {}\n  config: {}\n  code:   {} bytes ({} of instructions, then data), emitted "
            "in {:.3f} ms\n",
            e->name, e->desc_text, e->config_text, k.code_size(), k.text_size(), e->emit_seconds * 1e3);
        fmt::print("{}\n", dis);
    }
    if (c.json)
        fmt::print("{}\n", list.dump(2));
    else if (!c.all)
        fmt::print("(GEMV kernels for 2..16 rows other than 4 hidden; --all shows them)\n");
}

}  // namespace

void add_kernel_dump_command(CLI::App& app, const GlobalOptions& g) {
    auto c = std::make_shared<KernelDumpCli>();
    auto* cmd = app.add_subcommand(
        "kernel-dump",
        "Print the generated routed-expert kernels: descriptor, config, code size, emission time and x86\n"
        "disassembly (AMX tile instructions by name). Until the tuner writes plans, the kernels are those of "
        "the\n"
        "fused expert FFN for --desc (default: DeepSeek-V3, int8, hidden 7168, intermediate 2048) and "
        "--config.");
    cmd->add_option("--desc", c->desc_json,
                    "FFN problem as JSON, e.g. '{\"wtype\":\"int4\",\"hidden\":7168,\"inter\":2048}'; "
                    "omitted fields keep\n"
                    "DeepSeek-V3's (int8, 7168, 2048)");
    cmd->add_option("--config", c->config_json,
                    "FFN config as JSON (fields as printed under 'config'); omitted "
                    "fields keep their defaults");
    cmd->add_flag("--all", c->all, "Every kernel, including the GEMV kernels for each row count 1..16");
    cmd->add_option("--filter", c->filter, "Only kernels whose name contains this text");
    cmd->add_flag("--no-disasm", c->no_disasm, "Descriptors and sizes only");
    cmd->add_flag("--json", c->json,
                  "JSON list of {name, desc, config, code_bytes, emit_seconds, disassembly}");
    cmd->add_flag("--cuda", c->cuda,
                  "The GPU kernels of a DeepSeek-V3 layer instead (the plan's tuned MLA decode kernels where it has\n"
                  "them): NVRTC instantiation source, included headers, PTX size and SASS (where cuobjdump or nvdisasm\n"
                  "is installed). Needs NVRTC, not a GPU");
    cmd->add_option("--sm", c->cuda_opt.sm, "With --cuda: compute capability x10 to compile for (default: the GPU's, else 90)")
        ->check(CLI::Range(50, 200));
    cmd->add_flag("--ptx", c->cuda_opt.ptx, "With --cuda: print the whole PTX");
    cmd->add_option("--plan", c->plan_file,
                    "With --cuda: the plan whose tuned MLA decode kernels to show (default: this host's plan for "
                    "DeepSeek-V3's shape in the cache dir if `moeforge tune` wrote one, else the defaults)")
        ->check(CLI::ExistingFile);
    cmd->callback([c] { run_kernel_dump(*c); });
}

}  // namespace mf
