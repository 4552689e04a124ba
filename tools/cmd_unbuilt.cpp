#include <CLI/CLI.hpp>

#include <fmt/core.h>

#include "tools/command.hpp"

namespace mf {

void add_unbuilt_command(CLI::App& app, const std::string& name, const std::string& what, const std::string& issue) {
    auto* cmd = app.add_subcommand(name, what + " [not built yet]");
    cmd->allow_extras();
    cmd->callback([name, issue] {
        fmt::print(stderr, "moeforge {}: not built yet (tracked in issue {}).\n", name, issue);
        throw CommandExit{kExitNotBuilt};
    });
}

}  // namespace mf
