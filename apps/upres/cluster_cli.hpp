// `upres cluster slurm|status`: one video spread over a Slurm cluster's machines.
#pragma once

#include <CLI/CLI.hpp>

namespace upres::cli {

struct ClusterCommand {
  CLI::App* cluster = nullptr;
  int run();
};

ClusterCommand add_cluster_commands(CLI::App& app);

}  // namespace upres::cli
