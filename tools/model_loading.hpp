// What run, perplexity and bench --model share: the runtime options on the command line, the demo model, loading
// a model with a progress bar, and its tokenizer.
#pragma once
#include <filesystem>
#include <memory>
#include <string>

#include "model/tokenizer.hpp"
#include "runtime/model_runner.hpp"
#include "runtime/runtime_options.hpp"

namespace CLI {
class App;
}

namespace mf {

// --threads, --ctx (unless the command has its own), --dense, --experts, --prefill-chunk.
void add_runtime_options(CLI::App* cmd, RuntimeOptions& opt, bool ctx_option = true);

// The demo model (mkmodel preset `small`, bf16, seed 1) in the cache dir, written on first use with a progress bar.
std::filesystem::path demo_model_path();

// Loads and repacks with a progress bar on stderr; prints one line describing the runtime.
std::unique_ptr<ModelRunner> load_model_for_cli(const std::filesystem::path& path, const RuntimeOptions& opt);

// The model's own tokenizer (GGUF tokenizer.ggml.* keys, or tokenizer.json in an HF directory).
std::unique_ptr<Tokenizer> load_model_tokenizer(const Model& m);

std::string read_text_file(const std::filesystem::path& path, const std::string& option);

}  // namespace mf
