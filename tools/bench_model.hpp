// The model half of `moeforge bench`: `bench --model PATH [--prompt-len 512,2048] [--gen 64] [--json]`.
// The bench command (tools/cmd_bench.cpp, issue #3) calls add_bench_model_options() on its subcommand and, when
// --model is given, run_bench_model() (see runtime/model_bench.hpp for what is measured).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "runtime/runtime_options.hpp"

namespace CLI {
class App;
}

namespace mf {

struct BenchModelOptions {
    std::string model;
    std::vector<int64_t> prompt_lens{512, 2048};
    int64_t gen = 64;
    bool json = false;  // shared with the kernel bench's --json when the caller binds it there
    RuntimeOptions runtime;
};

// Adds --model, --prompt-len, --gen and the runtime options (--threads, --dense, --experts, --prefill-chunk).
// Pass add_json = false when the command already has a --json flag (then set o.json yourself).
void add_bench_model_options(CLI::App* cmd, BenchModelOptions& o, bool add_json = true);

// Loads the model (ctx = longest prompt + gen), runs the benchmark and prints the table or the JSON on stdout.
// DRAM bandwidth comes from the host profile in the cache dir (`moeforge tune --host-only`), if present.
void run_bench_model(const BenchModelOptions& o);

}  // namespace mf
