#include "segment_cli.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "progress.hpp"
#include "upres/error.hpp"
#include "upres/segments.hpp"

namespace upres::cli {
namespace {

struct SegmentFlags {
  std::string work_dir, progress = "auto", backend;
  int index = -1, device = -1, threads = -1, task = -1, tasks = 0;
  bool overwrite = false, json = false, verify = false;
  CLI::App *run = nullptr, *join = nullptr, *status = nullptr;
};

SegmentFlags g_segment;
CancelToken g_segment_cancel;

// The segment a task runs: --index, else the index its scheduler gives it (a Slurm array task,
// a Kubernetes indexed job).
int task_index() {
  if (g_segment.index >= 0) return g_segment.index;
  for (const char* name : {"SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"})
    if (const char* v = std::getenv(name)) {
      char* end = nullptr;
      const long i = std::strtol(v, &end, 10);
      if (end != v && *end == '\0' && i >= 0 && i < 1'000'000) return int(i);
      throw Error(ErrorCode::invalid_argument, fmt::format("{}='{}' is not a segment index", name, v));
    }
  throw Error(
      ErrorCode::invalid_argument,
      g_segment.tasks > 0
          ? "which task? give --task K (or run it as a Slurm array task)"
          : "which segment? give --index N (or run it as a Slurm array task or Kubernetes indexed job)");
}

int run_status(const SegmentManifest& m) {
  const std::vector<SegmentStatus> all = segment_status(m, g_segment.verify);
  const SegmentTotals totals = segment_totals(all);
  const int done = totals.done;
  const int64_t frames = totals.frames;
  const double seconds = totals.seconds;
  if (g_segment.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const SegmentStatus& s : all)
      list.push_back({{"index", s.segment.index},
                      {"state", segment_state_name(s.state)},
                      {"start_seconds", s.segment.start_seconds},
                      {"end_seconds", s.segment.end_seconds},
                      {"frames", s.frames},
                      {"seconds", s.seconds},
                      {"note", s.note}});
    const nlohmann::json j{{"work_dir", m.work_dir},  {"source", m.source}, {"output", m.plan.options.output},
                           {"segments", all.size()},  {"done", done},       {"frames_done", frames},
                           {"frames", m.plan.frames}, {"list", list}};
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("%s -> %s\n", m.source.c_str(), m.plan.options.output.c_str());
  std::printf("%d of %zu segments done, %lld of ~%lld frames", done, all.size(), (long long)frames,
              (long long)m.plan.frames);
  if (seconds > 0) std::printf(", %.2f fps per task", double(frames) / seconds);
  std::printf("\n");
  for (const SegmentStatus& s : all)
    std::printf("  %5d  %8.2f-%8.2f s  %-8s %s\n", s.segment.index, s.segment.start_seconds,
                s.segment.end_seconds, segment_state_name(s.state), s.note.c_str());
  return 0;
}

}  // namespace

SegmentCommand add_segment_commands(CLI::App& app) {
  SegmentCommand c;
  c.segment =
      app.add_subcommand("segment", "one part of a segmented job (`upres video --work-dir`), for clusters");
  c.segment->require_subcommand(1);
  SegmentFlags& f = g_segment;
  f.run = c.segment->add_subcommand("run", "upscale one segment of the plan in WORK_DIR");
  f.run->add_option("work_dir", f.work_dir, "the job's work folder")->required();
  f.run
      ->add_option("--index", f.index, "the segment (default: $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX)")
      ->check(CLI::Range(0, 999999));
  f.run
      ->add_option("--tasks", f.tasks,
                   "share the segments among this many tasks: this one runs every segment i with i % TASKS "
                   "== TASK that is not finished")
      ->check(CLI::Range(1, 100000));
  f.run->add_option("--task", f.task, "with --tasks: which task this is (default: $SLURM_ARRAY_TASK_ID)")
      ->check(CLI::Range(0, 99999));
  f.run->add_option("--backend", f.backend, "this machine's backend (default: the job's)");
  f.run->add_option("--device", f.device, "this machine's device")->check(CLI::Range(0, 255));
  f.run->add_option("--threads", f.threads, "this task's threads (default: $SLURM_CPUS_PER_TASK, else all)")
      ->check(CLI::Range(0, 256));
  f.run->add_option("--progress", f.progress, "auto, bar, json or none")->capture_default_str();
  f.join = c.segment->add_subcommand("join", "join the finished segments in WORK_DIR into the job's output");
  f.join->add_option("work_dir", f.work_dir, "the job's work folder")->required();
  f.join->add_flag("--overwrite", f.overwrite, "replace an existing output");
  f.status = c.segment->add_subcommand("status", "which segments of WORK_DIR are done");
  f.status->add_option("work_dir", f.work_dir, "the job's work folder")->required();
  f.status->add_flag("--verify", f.verify, "read finished segments and check their checksums");
  f.status->add_flag("--json", f.json, "machine-readable output");
  return c;
}

int SegmentCommand::run() {
  SegmentFlags& f = g_segment;
  const SegmentManifest m = read_segment_manifest(f.work_dir);
  if (f.status->parsed()) return run_status(m);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) std::signal(sig, [](int) { g_segment_cancel.cancel(); });
  if (f.join->parsed()) {
    const VideoStats s = join_segments(m, f.overwrite, &g_segment_cancel);
    std::printf("%s: %lld frames from %zu segments in %.1f s\n", m.plan.options.output.c_str(),
                (long long)s.frames, m.segments.size(), s.seconds);
    return 0;
  }
  SegmentMachine machine;
  if (!f.backend.empty()) machine.backend = f.backend;
  if (f.device >= 0) machine.device = f.device;
  if (f.threads >= 0) {
    machine.threads = f.threads;
  } else if (const char* cpus = std::getenv("SLURM_CPUS_PER_TASK")) {
    const int n = std::atoi(cpus);
    if (n > 0 && n <= 256) machine.threads = n;
  }
  // One segment, or a task's share of them (skipping those an earlier attempt finished).
  std::vector<int> mine;
  if (f.tasks > 0) {
    if (f.index >= 0) throw Error(ErrorCode::invalid_argument, "give --index or --tasks, not both");
    f.index = f.task;
    const int task = task_index();
    if (task >= f.tasks)
      throw Error(ErrorCode::invalid_argument, fmt::format("task {} is not below --tasks {}", task, f.tasks));
    for (const SegmentStatus& s : segment_status(m, false))
      if (s.segment.index % f.tasks == task && s.state != SegmentState::done) mine.push_back(s.segment.index);
  } else {
    mine.push_back(task_index());
  }
  // A segment that fails does not hold back the rest of the task's share; the task fails at the end.
  int failed = 0;
  for (int index : mine) {
    ProgressPrinter printer(f.progress, fmt::format("{} segment {}", m.source, index));
    try {
      const VideoStats s = run_segment(
          m, index, machine, [&](const VideoProgress& p) { printer(p); }, &g_segment_cancel);
      std::printf("segment %d: %lld frames in %.1f s (%.2f fps)\n", index, (long long)s.frames, s.seconds,
                  s.fps);
      std::fflush(stdout);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::cancelled) {
        std::fprintf(stderr, "\nupres: segment %d cancelled; nothing of it was kept\n", index);
        return 130;
      }
      std::fprintf(stderr, "upres: error: segment %d: %s\n", index, e.what());
      ++failed;
    }
  }
  if (failed) return 1;
  return 0;
}

}  // namespace upres::cli
