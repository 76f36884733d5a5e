// Folder in, folder out: what `upres image` and `upres video` share when given a directory.
// Every file is tried: a failure is reported and the next file goes on; the summary at the end
// names the failures and the exit status is non-zero when there was one.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace upres::cli {

struct FolderSettings {
  bool recursive = false;      // subfolders too, mirrored under the output folder
  bool skip_existing = false;  // an output already there is left as it is (reruns)
};

struct FolderJob {
  std::filesystem::path input, output;
};

struct FolderPlan {
  std::vector<FolderJob> jobs;
  std::vector<std::filesystem::path> skipped_folders;  // subfolders left out (no --recursive)
};

// The files under `input_dir` that `wanted` accepts, sorted, each with its output from
// `output_for(input, output folder)`; the output folder must not be a file. Throws upres::Error
// naming the folder and `what` ("images", "video files") when there is none.
FolderPlan plan_folder(const std::string& input_dir, const std::string& output_dir,
                       const std::function<bool(const std::filesystem::path&)>& wanted,
                       const std::string& what,
                       const std::function<std::string(const std::string&, const std::string&)>& output_for,
                       const FolderSettings& settings);

// Runs `run` on each job (making its output's folder first). An upres::Error other than
// cancellation is reported and the next job goes on; cancellation stops at once (rethrown).
// `run` returns what was wrong with an input that still gave an output (a video that ended
// early), or "" when nothing was. Prints what was done, skipped, incomplete and failed; returns
// the exit status (1 when any failed).
int run_folder(const FolderPlan& plan, const FolderSettings& settings, const std::string& what,
               const std::function<std::string(const FolderJob&)>& run);

// `message` without a leading "PATH: " (a folder run names the file itself).
std::string without_path_prefix(const std::string& message, const std::string& path);

}  // namespace upres::cli
