#include "folders.hpp"

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

#include "upres/error.hpp"
#include "upres/files.hpp"

namespace upres::cli {

namespace fs = std::filesystem;

FolderPlan plan_folder(const std::string& input_dir, const std::string& output_dir,
                       const std::function<bool(const fs::path&)>& wanted, const std::string& what,
                       const std::function<std::string(const std::string&, const std::string&)>& output_for,
                       const FolderSettings& settings) {
  std::error_code ec;
  if (fs::exists(output_dir, ec) && !fs::is_directory(output_dir, ec))
    throw Error(
        ErrorCode::invalid_argument,
        fmt::format("{} is a folder, so -o must be a folder too, but {} is a file", input_dir, output_dir));
  const fs::path root(input_dir), out_root(output_dir);
  const fs::path out_inside = fs::weakly_canonical(out_root, ec);
  FolderPlan plan;
  std::vector<fs::path> inputs;
  auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied);
  for (; it != fs::recursive_directory_iterator(); ++it) {
    const fs::directory_entry& entry = *it;
    if (entry.is_directory()) {
      // The output folder inside the input folder holds results, not inputs.
      const bool is_output = fs::weakly_canonical(entry.path(), ec) == out_inside;
      if (is_output || !settings.recursive) {
        if (!is_output) plan.skipped_folders.push_back(entry.path());
        it.disable_recursion_pending();
      }
      continue;
    }
    // Partial files of an earlier run that was killed are not inputs (upres/files.hpp).
    if (entry.is_regular_file() && !is_partial_output(entry.path().string()) && wanted(entry.path()))
      inputs.push_back(entry.path());
  }
  std::sort(inputs.begin(), inputs.end());
  std::sort(plan.skipped_folders.begin(), plan.skipped_folders.end());
  if (inputs.empty())
    throw Error(ErrorCode::not_found, fmt::format("{}: no {} in this folder{}", input_dir, what,
                                                  plan.skipped_folders.empty() || settings.recursive
                                                      ? ""
                                                      : " (it has subfolders: --recursive takes them too)"));
  for (const fs::path& in : inputs) {
    const fs::path sub = (out_root / in.lexically_relative(root)).parent_path();
    plan.jobs.push_back({in, fs::path(output_for(in.string(), sub.string()))});
  }
  return plan;
}

std::string without_path_prefix(const std::string& message, const std::string& path) {
  const std::string prefix = path + ": ";
  return message.compare(0, prefix.size(), prefix) == 0 ? message.substr(prefix.size()) : message;
}

int run_folder(const FolderPlan& plan, const FolderSettings& settings, const std::string& what,
               const std::function<std::string(const FolderJob&)>& run) {
  for (const fs::path& sub : plan.skipped_folders)
    std::fprintf(stderr, "upres: %s: a subfolder, left out (--recursive takes subfolders too)\n",
                 sub.c_str());
  size_t done = 0, skipped = 0;
  std::vector<std::string> failed, incomplete;
  for (const FolderJob& job : plan.jobs) {
    std::error_code ec;
    if (settings.skip_existing && fs::exists(job.output, ec)) {
      std::printf("%s: %s exists, skipped\n", job.input.c_str(), job.output.c_str());
      ++skipped;
      continue;
    }
    try {
      fs::create_directories(job.output.parent_path(), ec);
      if (ec)
        throw Error(ErrorCode::io_failure, fmt::format("cannot create folder {}: {}",
                                                       job.output.parent_path().string(), ec.message()));
      const std::string problem = run(job);
      if (!problem.empty()) {
        const std::string own = job.input.string() + " ";  // the message may start with the file's name
        incomplete.push_back(job.input.string() + ": " +
                             (problem.rfind(own, 0) == 0 ? problem.substr(own.size()) : problem));
      }
      ++done;
    } catch (const Error& e) {
      if (e.code() == ErrorCode::cancelled) throw;
      std::fprintf(stderr, "upres: error: %s: %s\n", job.input.c_str(),
                   without_path_prefix(e.what(), job.input.string()).c_str());
      failed.push_back(job.input.string());
    }
  }
  std::printf("%zu %s: %zu done, %zu skipped, %zu failed%s\n", plan.jobs.size(), what.c_str(), done, skipped,
              failed.size(),
              incomplete.empty()
                  ? ""
                  : fmt::format(" ({} done from damaged or incomplete inputs)", incomplete.size()).c_str());
  for (const std::string& f : incomplete) std::printf("incomplete: %s\n", f.c_str());
  for (const std::string& f : failed) std::printf("failed: %s\n", f.c_str());
  return failed.empty() ? 0 : 1;
}

}  // namespace upres::cli
