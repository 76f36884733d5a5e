#include "cluster_cli.hpp"

#include <sys/wait.h>
#include <unistd.h>
#include <wordexp.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/shell_quote.hpp"
#include "upres/error.hpp"
#include "upres/segments.hpp"
#include "video_cli.hpp"

namespace upres::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct ClusterFlags {
  std::string input, output, work_dir, sbatch, join_sbatch;
  double segment_seconds = 0;  // 0: the plan's, else 60
  int tasks = 0, retries = 2;
  bool wait = false, json = false;
  CLI::App *slurm = nullptr, *status = nullptr;
};
ClusterFlags g_cluster;

// Runs a program (no shell) and returns its exit code and standard output.
std::pair<int, std::string> run_program(const std::vector<std::string>& args) {
  std::vector<char*> argv;  // made before fork: the child only calls async-signal-safe functions
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int fds[2];
  if (pipe(fds) != 0) throw Error(ErrorCode::io_failure, "cannot make a pipe");
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    throw Error(ErrorCode::io_failure, fmt::format("cannot start {}", args[0]));
  }
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, size_t(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (rc == 127)
    throw Error(
        ErrorCode::not_found,
        fmt::format("{} is not installed here; run this where the Slurm client commands are", args[0]));
  return {rc, out};
}

// Words of a user's extra sbatch options, split as a shell would: quotes keep words together,
// $VARIABLES set in the environment are expanded, command substitution is refused. Characters a
// shell would take as operators (| & ; < >) must be quoted: --constraint='a&b'.
std::vector<std::string> shell_words(const std::string& text, const char* option) {
  std::vector<std::string> words;
  if (text.empty()) return words;
  wordexp_t w{};
  if (wordexp(text.c_str(), &w, WRDE_NOCMD | WRDE_UNDEF) != 0)
    throw Error(
        ErrorCode::invalid_argument,
        fmt::format("{} '{}' is not a list of options (quote characters like & and |)", option, text));
  for (size_t i = 0; i < w.we_wordc; ++i) words.push_back(w.we_wordv[i]);
  wordfree(&w);
  return words;
}

// A quoted word for /bin/sh (always quoted: the scripts are read by machines).
std::string sh_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

void write_script(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
  fs::permissions(path, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                            fs::perms::others_read | fs::perms::others_exec);
}

// The job id sbatch --parsable printed ("123" or "123;cluster").
std::string job_id(const std::pair<int, std::string>& r, const char* what) {
  std::string id = r.second.substr(0, r.second.find_first_of(";\n"));
  if (r.first != 0 || id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
    throw Error(ErrorCode::io_failure, fmt::format("sbatch did not accept the {} job: {}", what, r.second));
  return id;
}

// JobState=... of `scontrol show job ID` (one line per array task); empty when unknown.
std::vector<std::string> job_states(const std::string& id) {
  const auto [rc, out] = run_program({"scontrol", "show", "job", id});
  std::vector<std::string> states;
  if (rc != 0) return states;
  for (size_t at = out.find("JobState="); at != std::string::npos; at = out.find("JobState=", at + 1))
    states.push_back(out.substr(at + 9, out.find_first_of(" \n", at) - at - 9));
  return states;
}

json read_jobs(const std::string& work_dir) {
  std::ifstream in(fs::path(work_dir) / "slurm" / "jobs.json");
  if (!in) return json::object();
  try {
    return json::parse(in);
  } catch (const json::exception&) {
    return json::object();
  }
}

int run_status(const std::string& work_dir) {
  const SegmentManifest m = read_segment_manifest(work_dir);
  const std::vector<SegmentStatus> all = segment_status(m, false);
  const SegmentTotals totals = segment_totals(all);
  const int done = totals.done;
  const int64_t frames = totals.frames;
  const double seconds = totals.seconds;
  const json jobs = read_jobs(work_dir);
  std::map<std::string, int> tasks;  // array task states
  std::string join_state;
  if (jobs.contains("array")) {
    for (const std::string& st : job_states(jobs["array"].get<std::string>())) ++tasks[st];
    const std::string join_id = jobs.value("join", "");
    const std::vector<std::string> j = join_id.empty() ? std::vector<std::string>{} : job_states(join_id);
    join_state = j.empty() ? "unknown" : j[0];
  }
  const int running = tasks.count("RUNNING") ? tasks["RUNNING"] : 0;
  const double fps = seconds > 0 ? double(frames) / seconds : 0;  // per task
  const int64_t left = std::max<int64_t>(0, m.plan.frames - frames);
  const double eta = fps > 0 && running > 0 ? double(left) / (fps * running) : -1;
  if (g_cluster.json) {
    json j{{"work_dir", m.work_dir},
           {"segments", all.size()},
           {"done", done},
           {"frames_done", frames},
           {"frames", m.plan.frames},
           {"fps_per_task", fps},
           {"eta_seconds", eta},
           {"tasks", tasks},
           {"join", join_state},
           {"jobs", jobs}};
    std::printf("%s\n", j.dump(2, ' ', false, json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("%s -> %s\n", m.source.c_str(), m.plan.options.output.c_str());
  std::printf("segments: %d of %zu done, %lld of ~%lld frames", done, all.size(), (long long)frames,
              (long long)m.plan.frames);
  if (fps > 0) std::printf(", %.2f fps per task", fps);
  if (eta >= 0) std::printf(", about %d min left", int(eta / 60 + 0.5));
  std::printf("\n");
  if (jobs.contains("array")) {
    std::printf("array job %s:", jobs["array"].get<std::string>().c_str());
    for (const auto& [state, n] : tasks) std::printf(" %d %s", n, state.c_str());
    std::printf("\njoin job %s: %s\n", jobs["join"].get<std::string>().c_str(), join_state.c_str());
  }
  return 0;
}

// Follows the join job until it ends; its state decides the exit code.
int wait_for(const std::string& work_dir, const std::string& join) {
  std::string last;
  int unknown = 0;
  for (;;) {
    const std::vector<std::string> s = job_states(join);
    const std::string state = s.empty() ? "UNKNOWN" : s[0];
    const SegmentManifest m = read_segment_manifest(work_dir);
    int done = 0;
    for (const SegmentStatus& st : segment_status(m, false)) done += st.state == SegmentState::done;
    const std::string line = fmt::format("segments {}/{} done; join {}", done, m.segments.size(), state);
    if (line != last) std::fprintf(stderr, "%s\n", line.c_str());
    last = line;
    unknown = state == "UNKNOWN" ? unknown + 1 : 0;
    if (unknown > 30) {  // a minute: the controller is gone, or it forgot the job
      const bool written = fs::exists(m.plan.options.output);
      std::fprintf(stderr, "upres: Slurm no longer knows the join job %s; the output %s\n", join.c_str(),
                   written ? "is written" : "is not there: see the logs and rerun to go on");
      return written ? 0 : 1;
    }
    if (state == "COMPLETED") {
      std::printf("%s written\n", m.plan.options.output.c_str());
      return 0;
    }
    if (state == "FAILED" || state == "CANCELLED" || state == "TIMEOUT" || state == "NODE_FAIL" ||
        state == "OUT_OF_MEMORY" || state == "DEADLINE" || state == "BOOT_FAIL") {
      std::fprintf(stderr, "upres: the join job %s ended %s; see %s/slurm/*.log, then rerun to go on\n",
                   join.c_str(), state.c_str(), work_dir.c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
}

int run_slurm() {
  ClusterFlags& f = g_cluster;
  if (fs::absolute(f.work_dir).string().find('%') != std::string::npos)
    throw Error(ErrorCode::invalid_argument,
                fmt::format("--work-dir {}: Slurm reads % in log paths as a pattern; use a folder without %",
                            f.work_dir));
  VideoOptions o = video_options_from_flags(f.input, f.output);
  const SegmentManifest m = prepare_segments(o, f.work_dir, f.segment_seconds);
  const int tasks = std::min<int>(f.tasks, int(m.segments.size()));
  const fs::path dir = fs::path(m.work_dir) / "slurm";
  fs::create_directories(dir);
  // The scripts name this very binary: the cluster's nodes see it on the shared filesystem.
  const std::string upres = fs::canonical("/proc/self/exe").string();
  write_script(
      dir / "segments.sh",
      fmt::format("#!/bin/sh\n"
                  "# Written by `upres cluster slurm`: array task K upscales segments K, K+{0}, ...\n"
                  "# A failure is retried by requeueing the task, at most {1} times.\n"
                  "{2} segment run {3} --tasks {0} --task \"$SLURM_ARRAY_TASK_ID\" --progress none\n"
                  "rc=$?\n"
                  "if [ $rc -ne 0 ] && [ $rc -ne 130 ] && [ \"${{SLURM_RESTART_COUNT:-0}}\" -lt {1} ]; then\n"
                  "  echo \"upres: task failed ($rc); requeueing it\" >&2\n"
                  "  scontrol requeue \"${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}\" || exit $rc\n"
                  "  sleep 120  # the requeue ends this run\n"
                  "fi\n"
                  "exit $rc\n",
                  tasks, f.retries, sh_quote(upres), sh_quote(m.work_dir)));
  write_script(dir / "join.sh",
               fmt::format("#!/bin/sh\n# Written by `upres cluster slurm`: joins the segments.\n"
                           "exec {} segment join {}{}\n",
                           sh_quote(upres), sh_quote(m.work_dir), o.overwrite ? " --overwrite" : ""));
  std::vector<std::string> array = {"sbatch",
                                    "--parsable",
                                    "--requeue",
                                    fmt::format("--array=0-{}", tasks - 1),
                                    "--job-name=upres-segments",
                                    "--open-mode=append",  // a requeued task's log keeps the failure
                                    "--output=" + (dir / "segment-%a.log").string()};
  for (const std::string& w : shell_words(f.sbatch, "--sbatch")) array.push_back(w);
  array.push_back((dir / "segments.sh").string());
  const std::string a = job_id(run_program(array), "segment");
  std::ofstream(dir / "jobs.json") << json{{"array", a}, {"join", ""}, {"tasks", tasks}}.dump() << "\n";
  // The join waits for each task, not the array as a whole: `afterok:ARRAY` can never be met once
  // a task has failed, even after a requeue succeeds.
  std::string after = "--dependency=afterok";
  for (int k = 0; k < tasks; ++k) after += fmt::format(":{}_{}", a, k);
  std::vector<std::string> join = {"sbatch",
                                   "--parsable",
                                   after,
                                   "--kill-on-invalid-dep=yes",
                                   "--job-name=upres-join",
                                   "--output=" + (dir / "join.log").string()};
  for (const std::string& w : shell_words(f.join_sbatch.empty() ? f.sbatch : f.join_sbatch,
                                          f.join_sbatch.empty() ? "--sbatch" : "--join-sbatch"))
    join.push_back(w);
  join.push_back((dir / "join.sh").string());
  std::string j;
  try {
    j = job_id(run_program(join), "join");
  } catch (...) {
    run_program({"scancel", a});  // no array job without its join
    throw;
  }
  const json jobs{{"array", a}, {"join", j}, {"tasks", tasks}};
  std::ofstream(dir / "jobs.json") << jobs.dump() << "\n";
  std::printf("%zu segments in %d tasks: array job %s, join job %s (logs in %s)\n", m.segments.size(), tasks,
              a.c_str(), j.c_str(), dir.c_str());
  std::printf("follow with `upres cluster status %s`; stop with `scancel %s %s`\n",
              shell_quote(m.work_dir).c_str(), shell_quote(a).c_str(), shell_quote(j).c_str());
  std::fflush(stdout);
  return f.wait ? wait_for(m.work_dir, j) : 0;
}

}  // namespace

ClusterCommand add_cluster_commands(CLI::App& app) {
  ClusterCommand c;
  ClusterFlags& f = g_cluster;
  c.cluster = app.add_subcommand("cluster", "spread one video over a cluster's machines (docs/CLUSTER.md)");
  c.cluster->require_subcommand(1);
  f.slurm = c.cluster->add_subcommand("slurm",
                                      "plan segments and submit them as a Slurm array job plus a join job");
  f.slurm->add_option("input", f.input, "video file (on a filesystem every node sees)")->required();
  f.slurm->add_option("-o,--output", f.output, "output file")->required();
  f.slurm->add_option("--work-dir", f.work_dir, "the job's folder on the shared filesystem")->required();
  f.slurm->add_option("--tasks", f.tasks, "array tasks (machines) to share the segments")
      ->required()
      ->check(CLI::Range(1, 100000));
  f.slurm->add_option("--segment-seconds", f.segment_seconds,
                      "segment length, cut at the source's keyframes (default: 60, or what the plan has)");
  f.slurm->add_option("--sbatch", f.sbatch, "extra sbatch options, e.g. \"--partition=gpu --gres=gpu:1\"");
  f.slurm->add_option("--join-sbatch", f.join_sbatch,
                      "sbatch options for the join job (default: --sbatch's)");
  f.slurm->add_option("--retries", f.retries, "times a failed task is requeued")
      ->capture_default_str()
      ->check(CLI::Range(0, 100));
  f.slurm->add_flag("--wait", f.wait, "follow the jobs and exit with the join's result");
  add_video_job_options(f.slurm);
  f.status = c.cluster->add_subcommand("status", "segments done, the jobs' states, speed and time left");
  f.status->add_option("work_dir", f.work_dir, "the job's work folder")->required();
  f.status->add_flag("--json", f.json, "machine-readable output");
  return c;
}

int ClusterCommand::run() {
  if (g_cluster.status->parsed()) return run_status(g_cluster.work_dir);
  return run_slurm();
}

}  // namespace upres::cli
