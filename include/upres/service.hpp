// upres: the job service behind `upres serve` and `upres mcp`.
//
//   upres::ServiceOptions options;
//   options.root = "/srv/media";               // requests may only touch files under here
//   upres::JobManager jobs(options);
//   upres::JobStatus job = jobs.start_video(R"({"input": "clip.mp4", "scale": 2})", {});
//   jobs.wait_for_update(job.id, job.version, deadline);
//
// One manager owns every running job. Jobs share loaded models (one copy of the weights per
// model, however many jobs use it) but each has its own Upscaler, buffers and cancel token, so
// one failing job only ends itself. At most `max_jobs` upscales run at once: video jobs, image
// requests and stream sessions all take a slot; asking for one more throws Error(busy).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "upres/image.hpp"
#include "upres/model.hpp"
#include "upres/upscaler.hpp"
#include "upres/video.hpp"

namespace upres {

struct ServiceOptions {
  // Every path a request names must resolve (symlinks followed) inside this folder.
  std::string root = ".";
  // Uploads, and outputs of jobs that name no output path. "": a fresh folder under the system
  // temporary folder, removed when the manager ends.
  std::string work_dir;
  int max_jobs = 2;
  UpscaleOptions engine;                        // backend, threads and memory budget for every job
  int max_output_side = 4096;                   // no job may produce a larger picture, whatever it asks for
  int64_t max_input_pixels = int64_t(1) << 26;  // image requests and stream frames
  size_t keep_finished = 100;                   // finished jobs remembered (and their outputs kept) at most
};

enum class JobState { running, succeeded, failed, cancelled };
const char* job_state_name(JobState state);

struct JobStatus {
  std::string id;
  JobState state = JobState::running;
  bool cancel_requested = false;
  VideoProgress progress;
  VideoPlan plan;
  VideoStats stats;  // when succeeded
  std::string error_code, error_message;
  std::string input_name;   // as the request named it, or the uploaded file's name
  std::string output_path;  // absolute, on this machine
  std::string output_name;  // relative to the root, or "" when it is in the work folder
  std::string download_name;
  int64_t created_unix_ms = 0, finished_unix_ms = 0;
  uint64_t version = 0;  // grows with every change; wait_for_update waits for it to pass a value
  bool finished() const { return state != JobState::running; }
};

// A reserved place among the max_jobs upscales that may run at once; released when destroyed.
class JobSlot {
 public:
  JobSlot() = default;
  JobSlot(JobSlot&& other) noexcept;
  JobSlot& operator=(JobSlot&& other) noexcept;
  JobSlot(const JobSlot&) = delete;
  JobSlot& operator=(const JobSlot&) = delete;
  ~JobSlot();
  explicit operator bool() const { return counter_ != nullptr; }

 private:
  friend class JobManager;
  explicit JobSlot(std::shared_ptr<struct SlotCounter> counter);
  std::shared_ptr<struct SlotCounter> counter_;
};

// An Upscaler borrowed from the manager's pool; it goes back (buffers and kernels kept warm for
// the next request of the same model and scale) when the lease ends.
class UpscalerLease {
 public:
  UpscalerLease(UpscalerLease&&) noexcept;
  ~UpscalerLease();
  Upscaler& operator*() const { return *upscaler_; }
  Upscaler* operator->() const { return upscaler_.get(); }

 private:
  friend class JobManager;
  UpscalerLease(std::shared_ptr<struct UpscalerPool> pool, std::string key,
                std::unique_ptr<Upscaler> upscaler);
  std::shared_ptr<struct UpscalerPool> pool_;
  std::string key_;
  std::unique_ptr<Upscaler> upscaler_;
};

struct ImageRequest {
  std::string model;  // "": the default model for the scale
  int scale = 0;      // 0: the model's native scale
};

class JobManager {
 public:
  explicit JobManager(ServiceOptions options);
  ~JobManager();  // cancels running jobs, waits for them, removes a temporary work folder
  JobManager(const JobManager&) = delete;
  JobManager& operator=(const JobManager&) = delete;

  const ServiceOptions& options() const { return options_; }
  const std::filesystem::path& root() const { return root_; }
  const std::filesystem::path& work_dir() const { return work_dir_; }

  // A path from a request, checked against the root: no "..", and the file (input) or its
  // folder (output) must resolve inside the root with symlinks followed. Throws
  // Error(invalid_argument) for escapes and Error(not_found) for missing inputs.
  std::filesystem::path resolve_input(const std::string& path) const;
  std::filesystem::path resolve_output(const std::string& path) const;

  // Reserves one of max_jobs places; throws Error(busy) when all are taken.
  JobSlot acquire_slot();
  int running() const;

  // A fresh path in the work folder for an upload named `client_name` (extension kept).
  std::filesystem::path upload_path(const std::string& client_name);

  // Starts a video job from JSON options (the CLI's long names, see video_options_from_json).
  // With `uploaded` set, that file is the input (removed when the job is forgotten) and
  // `upload_name` its name for display. The job is validated here, so bad options, missing
  // inputs and outputs over the size cap throw upres::Error before anything runs; then it runs
  // on its own thread, holding `slot` (taken from the pool when empty).
  JobStatus start_video(const std::string& options_json, const std::filesystem::path& uploaded = {},
                        const std::string& upload_name = {}, JobSlot slot = {});

  std::optional<JobStatus> status(const std::string& id) const;
  std::vector<JobStatus> list() const;
  // Blocks until the job's version passes `seen_version` (or, with `only_finish`, until it
  // finishes) or the deadline passes; returns the status then (nullopt for unknown ids).
  std::optional<JobStatus> wait_for_update(const std::string& id, uint64_t seen_version,
                                           std::chrono::steady_clock::time_point deadline,
                                           bool only_finish = false) const;
  // Asks a running job to stop; false for unknown ids. A finished job is unaffected.
  bool cancel(const std::string& id);
  // Forgets a finished job and deletes the files the service made for it; false when unknown
  // or still running.
  bool forget(const std::string& id);
  // Cancels every running job and waits for all of them; no job starts after this.
  void cancel_all_and_wait();

  // A loaded model, shared by every job that names it. "" gives the default for `scale`.
  std::shared_ptr<const Model> model(const std::string& name, int scale = 2);
  UpscalerLease lease_upscaler(const ImageRequest& request);
  // Upscales one image with a pooled Upscaler; the caller holds a slot.
  Image upscale_image(const Image& input, const ImageRequest& request);

 private:
  struct Job;
  struct State;
  void run_job(std::shared_ptr<Job> job, std::shared_ptr<VideoJob> video, JobSlot slot);
  void prune_finished();

  ServiceOptions options_;
  std::filesystem::path root_, work_dir_;
  bool owns_work_dir_ = false;
  std::shared_ptr<SlotCounter> slots_;
  std::shared_ptr<UpscalerPool> pool_;
  std::shared_ptr<struct ModelCache> models_;
  std::unique_ptr<State> state_;
};

}  // namespace upres
