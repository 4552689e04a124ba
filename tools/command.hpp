// Each subcommand lives in its own tools/cmd_*.cpp and registers itself on the CLI11 app; main.cpp lists them.
#pragma once
#include <string>

namespace CLI {
class App;
}

namespace mf {

struct GlobalOptions {
    int verbosity = 0;  // -v, -vv
};

// Exit codes: 0 success, 1 a user-facing error (one line on stderr), 2 a command or feature not built yet.
constexpr int kExitError = 1;
constexpr int kExitNotBuilt = 2;

// Thrown by a command to end with a specific exit code after its message.
struct CommandExit {
    int code;
};

void add_tune_command(CLI::App& app, const GlobalOptions& g);
void add_tokenize_command(CLI::App& app, const GlobalOptions& g);
void add_run_command(CLI::App& app, const GlobalOptions& g);
void add_perplexity_command(CLI::App& app, const GlobalOptions& g);
void add_mkmodel_command(CLI::App& app, const GlobalOptions& g);
void add_bench_command(CLI::App& app, const GlobalOptions& g);
void add_kernel_dump_command(CLI::App& app, const GlobalOptions& g);
void add_report_command(CLI::App& app, const GlobalOptions& g);
// Registers a subcommand that says in one line that it is not built yet and exits 2.
void add_unbuilt_command(CLI::App& app, const std::string& name, const std::string& what, const std::string& issue);

}  // namespace mf
