// `moeforge mkmodel`: a DeepSeek-V3-architecture model with seeded random weights, as GGUF (llama.cpp's
// deepseek2) and/or a Hugging Face safetensors directory, carrying the real DeepSeek-V3 tokenizer.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <map>
#include <stdexcept>

#include "model/synthetic_model.hpp"
#include "tools/cache_dir.hpp"
#include "tools/command.hpp"
#include "tools/progress_bar.hpp"

namespace mf {
namespace {

struct MkmodelOptions {
    std::string preset;
    std::string out;
    std::string format = "both";
    uint64_t seed = 1;
    std::string wtype = "bf16";
    std::string tokenizer;
    std::string name;
    std::string gguf_layout = "mla";
    double split_gb = 0;
    double shard_gb = 5;
};

const std::map<std::string, GgmlType>& wtypes() {
    static const std::map<std::string, GgmlType> m = {
        {"f32", GgmlType::f32},   {"bf16", GgmlType::bf16}, {"f16", GgmlType::f16},
        {"q8_0", GgmlType::q8_0}, {"q4_k", GgmlType::q4_k}, {"q5_k", GgmlType::q5_k},
        {"q6_k", GgmlType::q6_k},
    };
    return m;
}

std::string human_bytes(double b) {
    const char* units[] = {"B", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (b >= 1000 && u < 4) b /= 1000, ++u;
    return fmt::format("{:.1f} {}", b, units[u]);
}

void run_mkmodel(const MkmodelOptions& o, const GlobalOptions& g) {
    SyntheticModelOptions so;
    so.config = preset_config(o.preset);
    so.name = o.name.empty() ? o.preset : o.name;
    so.seed = o.seed;
    so.wtype = wtypes().at(o.wtype);
    so.gguf = o.format != "safetensors";
    so.safetensors = o.format != "gguf";
    so.gguf_mla_layout = o.gguf_layout == "mla";
    so.gguf_split_bytes = uint64_t(o.split_gb * 1e9);
    so.shard_bytes = uint64_t(o.shard_gb * 1e9);
    const std::filesystem::path tok = o.tokenizer.empty()
                                          ? cache_dir() / "tokenizer" / "deepseek-v3" / "tokenizer.json"
                                          : std::filesystem::path(o.tokenizer);
    if (!std::filesystem::exists(tok))
        throw std::runtime_error(
            "tokenizer " + tok.string() +
            " not found: run tools/fetch_tokenizer.sh to fetch DeepSeek-V3's tokenizer.json, or "
            "pass --tokenizer PATH");
    so.vocab = load_tokenizer_json(tok);
    so.tokenizer_json = tok;

    const std::filesystem::path out(o.out);
    std::filesystem::create_directories(out);
    const double estimate =
        double(synthetic_model_gguf_bytes(so.config, so.wtype)) * (so.gguf + so.safetensors);
    const auto space = std::filesystem::space(out);
    if (double(space.available) < estimate)
        throw std::runtime_error(fmt::format("{} has {} free, the model needs about {}", out.string(),
                                             human_bytes(double(space.available)), human_bytes(estimate)));
    fmt::print("{}\n", describe(so.config));
    fmt::print("writing about {} to {} (weights in {}, seed {})\n", human_bytes(estimate), out.string(),
               o.wtype, o.seed);
    std::fflush(stdout);

    ProgressBar bar("mkmodel");
    so.progress = [&](uint64_t done, uint64_t total, std::string_view stage) {
        bar.update(done, total, stage);
    };
    const auto res = write_synthetic_model(so, out);
    bar.finish(fmt::format("wrote {}", human_bytes(double(res.gguf_bytes + res.hf_bytes))));
    if (!res.gguf.empty())
        fmt::print("gguf:        {} ({})\n", res.gguf.string(), human_bytes(double(res.gguf_bytes)));
    if (!res.hf_dir.empty())
        fmt::print("safetensors: {}/ ({})\n", res.hf_dir.string(), human_bytes(double(res.hf_bytes)));
    for (const auto& n : res.notes)
        if (g.verbosity > 0) fmt::print("note: {}\n", n);
    if (!res.notes.empty() && g.verbosity == 0)
        fmt::print("note: {} tensors kept in a fallback type (rows too short for {} blocks); -v lists them\n",
                   res.notes.size(), o.wtype);
}

}  // namespace

void add_mkmodel_command(CLI::App& app, const GlobalOptions& g) {
    auto o = std::make_shared<MkmodelOptions>();
    auto* cmd = app.add_subcommand(
        "mkmodel",
        "Write a DeepSeek-V3-architecture model with seeded random weights, for tests and benchmarks.\n"
        "The weights are scaled so activations stay O(1) through every layer (unit-variance embedding, "
        "projections\n"
        "with std 1/sqrt(fan_in), the ones writing the residual stream a further 1/sqrt(2*layers)). The GGUF "
        "is\n"
        "llama.cpp's arch deepseek2; the safetensors directory is what transformers' DeepseekV3ForCausalLM "
        "loads.\n"
        "Both copies hold identical weights (after dequantisation) and the real DeepSeek-V3 tokenizer.");
    cmd->add_option(
           "--preset", o->preset,
           "tiny: every feature at toy widths (hidden 64, 4 layers: 1 dense + 3 MoE, 16 experts in 4 "
           "groups,\n"
           "top-4 of 2 groups, shared expert, MLA, YaRN), ~35 MB per format;\n"
           "small: a demo model (hidden 512, 8 layers, 64 experts of 256, top-6), a few hundred MB;\n"
           "v3-slice-N: full DeepSeek-V3 widths with N layers: the 3 dense ones first when N > 3, one dense\n"
           "layer first when N is 2 or 3, v3-slice-1 is one MoE layer; ~23 GB per MoE layer in bf16,\n"
           "~6.3 GB in q4_k, plus 3.7 GB of bf16 embedding and lm_head")
        ->required();
    cmd->add_option("--out", o->out,
                    "Output directory: gets NAME.gguf and/or NAME-hf/ (NAME defaults to the preset)")
        ->required();
    cmd->add_option("--format", o->format, "Which files to write")
        ->check(CLI::IsMember({"gguf", "safetensors", "both"}))
        ->capture_default_str();
    cmd->add_option("--seed", o->seed, "Seed of the weights: the same seed gives the same model")
        ->capture_default_str();
    cmd->add_option(
           "--wtype", o->wtype,
           "Type of the FFN weights (dense FFN, routed and shared experts). Attention and embeddings are "
           "bf16\n"
           "(f32/f16 when --wtype is f32/f16); norms, router and its bias f32. Rows that are not whole\n"
           "blocks of the type (tiny's 64-wide rows under k-quants) fall back to q8_0, then bf16. The\n"
           "safetensors copy stores quantised types as their exact f32 dequantisation")
        ->check(CLI::IsMember({"f32", "bf16", "f16", "q8_0", "q4_k", "q5_k", "q6_k"}))
        ->capture_default_str();
    cmd->add_option(
        "--tokenizer", o->tokenizer,
        "DeepSeek-V3's tokenizer.json (default: $cache/tokenizer/deepseek-v3/tokenizer.json, fetched by "
        "tools/fetch_tokenizer.sh)");
    cmd->add_option("--name", o->name, "Base name of the files and general.name (default: the preset)");
    cmd->add_option("--gguf-layout", o->gguf_layout,
                    "mla: attn_k_b/attn_v_b per layer (llama.cpp since mid-2025); legacy: one attn_kv_b")
        ->check(CLI::IsMember({"mla", "legacy"}))
        ->capture_default_str();
    cmd->add_option("--split-gb", o->split_gb,
                    "Split the GGUF into NAME-0000i-of-0000n.gguf parts of about this many GB (0: one file)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--shard-gb", o->shard_gb, "Size of the safetensors shards in GB")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    cmd->callback([o, &g] { run_mkmodel(*o, g); });
}

}  // namespace mf
