#include "tools/model_loading.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <fstream>
#include <optional>
#include <sstream>

#include "model/gguf_vocab.hpp"
#include "model/synthetic_model.hpp"
#include "codegen/kernel_fields.hpp"
#include "runtime/expert_ffn_set.hpp"
#include "runtime/plan.hpp"
#include "tools/cache_dir.hpp"
#include "tune/host_profile.hpp"
#include "tools/progress_bar.hpp"

namespace mf {

void add_runtime_options(CLI::App* cmd, RuntimeOptions& opt, bool ctx_option) {
    cmd->add_option("--threads", opt.threads,
                    "Worker threads, each pinned to one physical core (0: one per core, grouped by NUMA node)")
        ->check(CLI::Range(0, 4096))
        ->capture_default_str();
    if (ctx_option)
        cmd->add_option("--ctx", opt.ctx, "Context length: positions of KV cache (prompt + history + reply)")
            ->check(CLI::Range(int64_t(8), int64_t(1) << 24))
            ->capture_default_str();
    cmd->add_option("--prefill-chunk", opt.prefill_chunk,
                    "Tokens per forward step while prefilling (each chunk appends to the KV cache); 0 = auto: 2048 "
                    "with GPU layers (more tokens per routed expert per step), 256 CPU-only")
        ->check(CLI::Range(int64_t(0), int64_t(1) << 20))
        ->capture_default_str();
    cmd->add_option("--dense", opt.dense,
                    "Compute format of attention, dense FFN, shared expert and lm_head: auto (bf16), bf16 or int8 "
                    "(per-channel)")
        ->check(CLI::IsMember({"auto", "bf16", "int8"}))
        ->capture_default_str();
    cmd->add_option("--experts", opt.experts,
                    "Compute format of the routed experts: auto (int4 for Q4_K files, packed exactly; else int8), "
                    "int8 (per channel), int4 (per group of 32) or bf16")
        ->check(CLI::IsMember({"auto", "bf16", "int8", "int4"}))
        ->capture_default_str();
    // The commands default to hybrid when a GPU is usable (the library's RuntimeOptions default is CPU only).
    opt.gpu_layers = -1;
    cmd->add_option("--gpu-layers", opt.gpu_layers,
                    "Layers whose attention, dense FFN, shared expert and router run on the GPU (routed experts "
                    "always run on the CPU); the rest run wholly on the CPU. -1: every layer that fits when a CUDA "
                    "GPU is usable, else CPU only")
        ->check(CLI::Range(-1, 1 << 20))
        ->capture_default_str();
    cmd->add_flag_callback("--cpu-only", [&opt] { opt.gpu_layers = 0; }, "Run everything on the CPU (same as --gpu-layers 0)");
    cmd->add_option("--gpu", opt.gpu_device, "CUDA device ordinal for the GPU layers")->check(CLI::Range(0, 64))->capture_default_str();
    cmd->add_option("--plan", opt.plan_file,
                    "Tuned plan file to use (default: the one `moeforge tune` saved in the cache dir for this host and "
                    "model shape, else documented defaults)");
}

std::filesystem::path demo_model_path() {
    const auto dir = cache_dir() / "demo";
    const auto path = dir / "moeforge-demo-small.gguf";
    if (std::filesystem::exists(path)) return path;
    const auto tok = cache_dir() / "tokenizer" / "deepseek-v3" / "tokenizer.json";
    if (!std::filesystem::exists(tok))
        throw std::runtime_error("the demo model needs DeepSeek-V3's tokenizer at " + tok.string() +
                                 ": run tools/fetch_tokenizer.sh first (or pass --model PATH)");
    std::filesystem::create_directories(dir);
    fmt::print(stderr, "moeforge: writing the demo model (mkmodel preset 'small', random weights) to {}\n",
               path.string());
    SyntheticModelOptions o;
    o.config = preset_config("small");
    o.name = "moeforge-demo-small";
    o.seed = 1;
    o.wtype = GgmlType::bf16;
    o.safetensors = false;
    o.vocab = load_tokenizer_json(tok);
    ProgressBar bar("demo model");
    o.progress = [&](uint64_t done, uint64_t total, std::string_view stage) { bar.update(done, total, stage); };
    const auto tmp = dir / "writing";
    std::filesystem::remove_all(tmp);
    std::filesystem::create_directories(tmp);
    const SyntheticModelResult r = write_synthetic_model(o, tmp);
    bar.finish();
    std::filesystem::rename(r.gguf, path);
    std::filesystem::remove_all(tmp);
    return path;
}

namespace {

// The tuned plan for this host and the model's kernel shapes (cache dir, or --plan), applied to the options: the
// fused expert FFN's config per range of tokens per expert (every "moe_ffn" entry) and the worker count. Without a plan: the defaults,
// and the note says so. A plan for another host or shape is refused (PlanMismatch, one line).
void apply_plan(const Model& m, RuntimeOptions& opt) {
    const DeepSeekV3Config& c = m.config();
    if (c.n_layers <= c.n_dense_layers) return;
    const ModelShape shape = model_shape_of(c, compute_type_name(opt.expert_type(m)));
    HostProfileOptions quick;
    quick.measure = false;
    HostProfile here = capture_host_profile(quick);
    compute_fingerprint(here);
    Plan plan;
    try {
        plan = load_plan(cache_dir(), here.fingerprint, shape, opt.plan_file);
    } catch (const PlanMismatch& e) {
        if (!opt.plan_file.empty()) throw;  // an explicit --plan that does not fit is an error
        // The cache dir's plan under this host's and shape's name does not match them (copied from elsewhere).
        opt.plan_note = std::string("the cached plan does not fit (") + e.what() + "): documented defaults";
        return;
    }
    if (plan.is_default) {
        opt.plan_note = "no tuned plan for this host and shape (run `moeforge tune`): documented defaults";
        return;
    }
    opt.expert_ffn_by_m = expert_ffn_choices(plan);
    if (const PlannedKernel* k = plan.find("moe_ffn", "expert", 1)) opt.expert_ffn = fields_from_json<ExpertFfnConfig>(k->config);
    if (opt.threads == 0 && plan.threads.workers > 0) opt.threads = plan.threads.workers;
    for (const PlannedKernel& k : plan.kernels)
        if (k.family == "mla_decode")
            opt.mla_decode_by_ctx.push_back({k.m_min, k.m_max, fields_from_json<MlaDecodeConfig>(k.config),
                                             fields_from_json<MlaSplitPolicy>(k.config)});
    // A plan tuned with a GPU places layers on it; one tuned without leaves the choice to the command line.
    if (opt.gpu_layers == -1 && !plan.gpu.cpu_only) opt.gpu_layers = plan.gpu.gpu_layers, opt.gpu_device = plan.gpu.device;
    opt.plan_note = fmt::format("tuned plan {} ({} expert FFN configs by tokens per expert)",
                                plan.source.empty() ? plan_file_name(here.fingerprint, shape) : plan.source,
                                opt.expert_ffn_by_m.size());
}

}  // namespace

std::unique_ptr<ModelRunner> load_model_for_cli(const std::filesystem::path& path, const RuntimeOptions& options) {
    if (!std::filesystem::exists(path))
        throw std::runtime_error("model " + path.string() + " does not exist (give a .gguf file or an HF directory)");
    auto file = Model::open(path);
    RuntimeOptions opt = options;
    apply_plan(*file, opt);
    if (opt.cubin_cache.empty()) opt.cubin_cache = (cache_dir() / "cubins").string();
    // The bar starts with the first packed tensor, so that a file that does not open fails in one line.
    std::optional<ProgressBar> bar;
    auto model = std::make_unique<ModelRunner>(std::move(file), opt, [&](uint64_t done, uint64_t total, std::string_view stage) {
        if (!bar) bar.emplace("loading " + path.filename().string());
        bar->update(done, total, stage);
    });
    if (bar) bar->finish(fmt::format("{:.1f} MiB repacked", double(model->packed_bytes()) / (1 << 20)));
    fmt::print(stderr, "moeforge: {}\nmoeforge: {}\n", describe(model->config()), model->describe());
    fmt::print(stderr, "moeforge: {}\n", opt.describe());
    return model;
}

std::unique_ptr<Tokenizer> load_model_tokenizer(const Model& m) {
    if (m.format() == ModelFormat::gguf) return std::make_unique<Tokenizer>(read_gguf_vocab(*m.gguf_parts().at(0)));
    const auto json = m.path() / "tokenizer.json";
    if (!std::filesystem::exists(json))
        throw std::runtime_error(m.path().string() + " has no tokenizer.json: copy DeepSeek-V3's tokenizer.json there");
    return std::make_unique<Tokenizer>(load_tokenizer_json(json, int32_t(m.config().vocab_size)));
}

std::string read_text_file(const std::filesystem::path& path, const std::string& option) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error(option + ": cannot open " + path.string());
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

}  // namespace mf
