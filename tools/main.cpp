// The moeforge CLI: one binary, one subcommand per task (see README.md).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include <fmt/core.h>

#include "tools/command.hpp"

int main(int argc, char** argv) {
    CLI::App app{"moeforge: DeepSeek-V3/R1 inference on a big CPU and a modest GPU.\n"
                 "Routed experts run on the CPU through JIT-generated AMX/AVX-512 kernels; attention and the KV cache\n"
                 "on the GPU through NVRTC-generated kernels. Start with `moeforge tune`, then `moeforge run`."};
    app.require_subcommand(1);
    mf::GlobalOptions g;
    app.add_flag("-v,--verbose", g.verbosity, "More detail on stderr (repeat for more)");
    app.set_version_flag("--version", "moeforge 0.1.0");

    mf::add_tune_command(app, g);
    mf::add_run_command(app, g);
    mf::add_kernel_dump_command(app, g);
    mf::add_report_command(app, g);
    mf::add_bench_command(app, g);
    mf::add_mkmodel_command(app, g);
    mf::add_tokenize_command(app, g);
    mf::add_perplexity_command(app, g);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const mf::CommandExit& e) {
        return e.code;
    } catch (const std::exception& e) {
        std::fflush(stdout);
        fmt::print(stderr, "moeforge: error: {}\n", e.what());
        return mf::kExitError;
    }
    return 0;
}
