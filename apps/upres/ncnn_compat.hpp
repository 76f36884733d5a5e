// The realesrgan-ncnn-vulkan compatible command line (ncnn_compat.cpp).
#pragma once

namespace upres::cli {

// Whether the program was started under the name realesrgan-ncnn-vulkan (argv[0]).
bool invoked_as_ncnn_compat(const char* argv0);
// Runs that program's command line (argv[0] is skipped); returns its exit code.
int run_ncnn_compat(int argc, char** argv, const char* program);

}  // namespace upres::cli
