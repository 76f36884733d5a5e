// The `upres serve` (HTTP service) and `upres mcp` (MCP over stdio) subcommands.
#pragma once

#include <CLI/CLI.hpp>

namespace upres::cli {

struct ServiceCommand {
  CLI::App* serve = nullptr;
  CLI::App* mcp = nullptr;
  int run();  // for whichever was parsed
};

ServiceCommand add_service_commands(CLI::App& app);

}  // namespace upres::cli
