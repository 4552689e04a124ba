// `moeforge perplexity`: perplexity over a text file in llama-perplexity's windowing (see runtime/perplexity.hpp).
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "runtime/perplexity.hpp"
#include "tools/command.hpp"
#include "tools/model_loading.hpp"

namespace mf {
namespace {

struct PerplexityCliOptions {
    std::string model;
    std::string file;
    std::string logits_out;
    int64_t ctx = 512;
    int64_t chunks = 0;
    bool json = false;
    RuntimeOptions runtime;
};

void run_perplexity(PerplexityCliOptions& o) {
    if (o.model.empty()) throw std::runtime_error("--model is required");
    const std::string text = read_text_file(o.file, "--file");
    o.runtime.ctx = o.ctx;
    auto model = load_model_for_cli(o.model, o.runtime);
    const auto tok = load_model_tokenizer(model->file());
    const std::vector<int32_t> tokens = tok->encode(text, EncodeOptions{tok->add_bos(), false});
    PerplexityOptions po;
    po.ctx = o.ctx;
    po.bos_id = tok->bos_id();
    po.replace_first_with_bos = tok->add_bos();
    po.max_chunks = o.chunks;
    std::unique_ptr<LogitsWriter> lw;
    if (!o.logits_out.empty()) lw = std::make_unique<LogitsWriter>(o.logits_out, model->vocab());
    const int64_t total_chunks = o.chunks > 0 ? std::min(o.chunks, int64_t(tokens.size()) / o.ctx)
                                              : int64_t(tokens.size()) / o.ctx;
    fmt::print(stderr, "moeforge: {} tokens, {} windows of {} (scoring the second half of each)\n", tokens.size(),
               total_chunks, o.ctx);
    const PerplexityResult r = compute_perplexity(*model, tokens, po, [&](const PerplexityChunk& c) {
        if (!o.json) fmt::print(stderr, "[{}]{:.4f},", c.index + 1, c.running_ppl);
    }, lw.get());
    if (!o.json) fmt::print(stderr, "\n");
    if (lw) lw->close();
    if (o.json) {
        nlohmann::json j;
        j["ppl"] = r.ppl;
        j["ppl_error"] = r.ppl_error;
        j["mean_nll"] = r.mean_nll;
        j["ctx"] = o.ctx;
        j["chunks"] = r.chunks;
        j["tokens"] = r.tokens;
        j["scored"] = r.scored;
        j["seconds"] = r.seconds;
        j["tokens_per_s"] = double(r.chunks * o.ctx) / r.seconds;
        nlohmann::json per = nlohmann::json::array();
        for (const auto& c : r.per_chunk) per.push_back({{"nll_sum", c.nll_sum}, {"scored", c.scored}});
        j["per_chunk"] = per;
        if (lw) j["logits_out"] = o.logits_out;
        fmt::print("{}\n", j.dump(2));
        return;
    }
    fmt::print("Final estimate: PPL = {:.4f} +/- {:.5f}\n", r.ppl, r.ppl_error);
    fmt::print(stderr, "moeforge: {} positions scored in {:.1f} s ({:.1f} tok/s evaluated)\n", r.scored, r.seconds,
               double(r.chunks * o.ctx) / r.seconds);
    if (lw) fmt::print(stderr, "moeforge: wrote {} rows of logits to {}\n", lw->rows(), o.logits_out);
}

}  // namespace

void add_perplexity_command(CLI::App& app, const GlobalOptions&) {
    auto o = std::make_shared<PerplexityCliOptions>();
    auto* cmd = app.add_subcommand(
        "perplexity",
        "Perplexity of a model over a text file, windowed as llama.cpp's llama-perplexity does so the numbers\n"
        "compare on the same GGUF: the text (bos first) is cut into windows of --ctx tokens, each run from an empty\n"
        "cache with bos as its first token, and the second half of each window is scored. Prints the running\n"
        "estimate per window ([1]x,[2]y,...) and the final PPL with its uncertainty.");
    cmd->add_option("--model", o->model, "Model: a .gguf file (any part of a split GGUF) or an HF checkpoint directory")
        ->required();
    cmd->add_option("--file", o->file, "UTF-8 text to score (needs at least 2 x --ctx tokens)")->required();
    cmd->add_option("--ctx", o->ctx, "Window length in tokens")
        ->check(CLI::Range(int64_t(4), int64_t(1) << 20))
        ->capture_default_str();
    cmd->add_option("--chunks", o->chunks, "Score only the first N windows (0 = all)")->capture_default_str();
    cmd->add_flag("--json", o->json, "Print the result as JSON on stdout (keys ppl, ppl_error, chunks, scored, ...)");
    cmd->add_option("--logits-out", o->logits_out,
                    "Write the logits of every scored position to this .npy file (float32, rows x vocab; row i "
                    "predicts the token after scored position i, windows in order)");
    add_runtime_options(cmd, o->runtime, /*ctx_option=*/false);
    cmd->callback([o] { run_perplexity(*o); });
}

}  // namespace mf
