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
// requests and stream sessions all take a place. When all are taken, up to `queue` more wait
// their turn in order (video jobs as "queued", image requests and streams for at most
// `queue_wait_seconds`); past that a request gets Error(busy).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "upres/image.hpp"
#include "upres/model.hpp"
#include "upres/upscaler.hpp"
#include "upres/video.hpp"

namespace upres {

constexpr int kMaxJobs = 64;
constexpr int kMaxQueue = 10000;

struct ServiceOptions {
  // Every path a request names must resolve (symlinks followed) inside this folder.
  std::string root = ".";
  // Uploads, and outputs of jobs that name no output path. "": a fresh folder under the system
  // temporary folder, removed when the manager ends.
  std::string work_dir;
  int max_jobs = 2;
  int queue = 16;                  // requests that may wait for a place (-1: no limit, as for MCP)
  double queue_wait_seconds = 60;  // how long an image request or a stream waits for one
  // Idle Upscalers (their scratch can be gigabytes) and models no job uses are released after
  // this long.
  double keep_warm_seconds = 60;
  UpscaleOptions engine;                        // backend, threads and memory budget for every job
  int max_output_side = 4096;                   // no job may produce a larger picture, whatever it asks for
  int64_t max_input_pixels = int64_t(1) << 26;  // image requests and stream frames
  int64_t max_image_file_bytes = int64_t(256) << 20;  // image files a request names (MCP)
  size_t keep_finished = 100;  // finished jobs remembered (and their outputs kept) at most
};

enum class JobState { queued, running, succeeded, failed, cancelled };
const char* job_state_name(JobState state);

struct JobStatus {
  std::string id;
  JobState state = JobState::running;
  bool cancel_requested = false;
  VideoProgress progress;
  VideoPlan plan;
  VideoStats stats;                       // when succeeded
  int queue_position = 0;                 // while queued: 1 for the next to run
  std::string error_code, error_message;  // error_code_name() words, and a message for the client
  std::string input_name;                 // as the request named it, or the uploaded file's name
  std::string output_path;                // absolute, on this machine
  std::string output_name;                // relative to the root, or "" when it is in the work folder
  std::string download_name;
  int64_t created_unix_ms = 0, finished_unix_ms = 0;
  uint64_t version = 0;  // grows with every change; wait_for_update waits for it to pass a value
  bool finished() const { return state != JobState::queued && state != JobState::running; }
};

// A place among the max_jobs upscales that may run at once; released when destroyed.
class JobSlot {
 public:
  JobSlot() = default;
  JobSlot(JobSlot&& other) noexcept;
  JobSlot& operator=(JobSlot&& other) noexcept;
  JobSlot(const JobSlot&) = delete;
  JobSlot& operator=(const JobSlot&) = delete;
  ~JobSlot();
  explicit operator bool() const { return queue_ != nullptr; }

 private:
  friend class JobTicket;
  explicit JobSlot(std::shared_ptr<struct SlotQueue> queue);
  std::shared_ptr<struct SlotQueue> queue_;
};

// A claim on a place: either a place already (a free one was taken at once) or a position in the
// wait queue. Destroying a ticket that still waits leaves the queue.
class JobTicket {
 public:
  JobTicket() = default;
  JobTicket(JobTicket&& other) noexcept;
  JobTicket& operator=(JobTicket&& other) noexcept;
  JobTicket(const JobTicket&) = delete;
  JobTicket& operator=(const JobTicket&) = delete;
  ~JobTicket();
  explicit operator bool() const { return queue_ != nullptr; }

  // 0 when the ticket holds a place, else its position in the queue (1: next).
  int position() const;
  // Waits for the place. `on_position` hears each new queue position. Throws Error(busy) when
  // the deadline passes first and Error(cancelled) when `cancel` is set; the ticket is spent
  // either way.
  JobSlot wait(std::chrono::steady_clock::time_point deadline, const CancelToken* cancel = nullptr,
               const std::function<void(int)>& on_position = {});

 private:
  friend class JobManager;
  void leave();
  std::shared_ptr<struct SlotQueue> queue_;
  uint64_t id_ = 0;
  bool holds_place_ = false;
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

// An image upscale, however a front end received it (an HTTP body, an MCP call naming files).
struct ImageJobOptions {
  ImageRequest request;
  std::optional<ImageFormat> format;  // of the result; none: the input's (or the output file's)
  ImageWriteOptions write;
};

struct ImageJobResult {
  std::vector<uint8_t> encoded;  // the result's bytes (run_image_job; empty for run_image_file)
  ImageFormat format = ImageFormat::png;
  int width = 0, height = 0;
  double seconds = 0;  // decoding, upscaling and encoding, not the wait for a place
  std::string model;   // the model's name
};

// An image file under the root to upscale into another, checked by JobManager::prepare_image_file.
struct ImageFileJob {
  std::filesystem::path input, output;  // resolved under the root
  std::string input_name;               // as the request named it, for messages
  std::string output_name;              // relative to the root, for the client
  ImageJobOptions options;              // format set (from the output's extension)
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

  // A place at once when one is free, else a position in the wait queue; throws Error(busy)
  // naming --max-jobs and --queue when the queue is full too.
  JobTicket reserve();
  // reserve(), then wait up to queue_wait_seconds (Error(busy) after that).
  JobSlot acquire_slot(const CancelToken* cancel = nullptr);
  int running() const;            // places taken
  int queued() const;             // tickets waiting
  size_t warm_upscalers() const;  // idle Upscalers kept for the next request

  // A message from a failure as a client should read it: paths under the root shown relative
  // to it, the work folder's not at all.
  std::string client_message(const std::string& message) const;

  // A fresh path in the work folder for an upload named `client_name` (extension kept).
  std::filesystem::path upload_path(const std::string& client_name);

  // Starts a video job from JSON options (the CLI's long names, see video_options_from_json).
  // With `uploaded` set, that file is the input (removed when the job is forgotten, or at once
  // when the job does not start) and `upload_name` its name for display. The job is validated
  // here, so bad options, missing inputs and outputs over the size cap throw upres::Error before
  // anything runs; then it runs on its own thread, first waiting as "queued" when `ticket` (or,
  // when empty, one reserved here) is not yet a place.
  JobStatus start_video(const std::string& options_json, const std::filesystem::path& uploaded = {},
                        const std::string& upload_name = {}, JobTicket ticket = {});

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

  // Image jobs, the same for every front end. The caller holds a place (`slot`), taken as its
  // front end waits for one. Pictures are checked by their header against max_input_pixels and
  // the output cap before any pixel is decoded (see decode_for).

  // Encoded image bytes in, encoded bytes out (in options.format, or the input's format).
  ImageJobResult run_image_job(const std::vector<uint8_t>& encoded, const std::string& name_for_errors,
                               const ImageJobOptions& options, const JobSlot& slot);
  // Checks an image file job before any wait or work: both paths under the root (no `output`:
  // "<name>-upres-x<scale>.png" beside the input), a format the output's extension names, not the
  // input itself, and not an existing file unless `overwrite`. Throws upres::Error.
  ImageFileJob prepare_image_file(const std::string& input, const std::optional<std::string>& output,
                                  bool overwrite, const ImageJobOptions& options) const;
  // Reads the input (at most max_image_file_bytes), upscales it and writes the output atomically.
  ImageJobResult run_image_file(const ImageFileJob& job, const JobSlot& slot);
  // One encoded picture decoded for `upscaler`: its header checked against max_input_pixels and the
  // upscaler's output cap first. Image jobs and stream frames both come through here.
  Image decode_for(const Upscaler& upscaler, const std::vector<uint8_t>& encoded,
                   const std::string& name_for_errors) const;

 private:
  struct Job;
  struct State;
  void run_job(std::shared_ptr<Job> job, std::shared_ptr<VideoJob> video, JobTicket ticket);
  void prune_finished();
  void claim_work_dir();
  void release_idle_loop();

  ServiceOptions options_;
  std::filesystem::path root_, work_dir_;
  std::vector<std::filesystem::path> model_folders_;  // hidden from client messages
  bool owns_work_dir_ = false;
  int work_dir_lock_ = -1;  // a shared --work-dir's lock file, held while this manager lives
  std::shared_ptr<SlotQueue> slots_;
  std::shared_ptr<UpscalerPool> pool_;
  std::shared_ptr<struct ModelCache> models_;
  std::unique_ptr<State> state_;
  std::thread releaser_;  // releases idle upscalers and models after keep_warm_seconds
};

}  // namespace upres
