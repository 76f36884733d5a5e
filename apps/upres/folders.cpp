#include "folders.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "upres/error.hpp"
#include "upres/files.hpp"

namespace upres::cli {

namespace fs = std::filesystem;

std::vector<fs::path> folder_inputs(const std::string& input_dir, const std::string& output_dir,
                                    const std::function<bool(const fs::path&)>& wanted,
                                    const std::string& what) {
  std::error_code ec;
  if (fs::exists(output_dir, ec) && !fs::is_directory(output_dir, ec))
    throw Error(
        ErrorCode::invalid_argument,
        fmt::format("{} is a folder, so -o must be a folder too, but {} is a file", input_dir, output_dir));
  std::vector<fs::path> inputs;
  for (const auto& entry : fs::directory_iterator(input_dir))
    // Partial files of an earlier run that was killed are not inputs (upres/files.hpp).
    if (entry.is_regular_file() && !is_partial_output(entry.path().string()) && wanted(entry.path()))
      inputs.push_back(entry.path());
  std::sort(inputs.begin(), inputs.end());
  if (inputs.empty())
    throw Error(ErrorCode::not_found, fmt::format("{}: no {} in this folder", input_dir, what));
  fs::create_directories(output_dir, ec);
  if (ec)
    throw Error(ErrorCode::io_failure, fmt::format("cannot create folder {}: {}", output_dir, ec.message()));
  return inputs;
}

}  // namespace upres::cli
