// `upres segment run|join|status`: what each task of a cluster job runs (docs/CLUSTER.md).
#pragma once

#include <CLI/CLI.hpp>

namespace upres::cli {

struct SegmentCommand {
  CLI::App* segment = nullptr;
  int run();
};

SegmentCommand add_segment_commands(CLI::App& app);

}  // namespace upres::cli
