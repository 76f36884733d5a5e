// Folder in, folder out: what `upres image` and `upres video` share when given a directory.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace upres::cli {

// The files in `input_dir` that `wanted` accepts, sorted, after making `output_dir` (which must
// not be a file). Throws upres::Error naming the folder and `what` ("images", "videos") when
// there is none.
std::vector<std::filesystem::path> folder_inputs(
    const std::string& input_dir, const std::string& output_dir,
    const std::function<bool(const std::filesystem::path&)>& wanted, const std::string& what);

}  // namespace upres::cli
