// The job service: admission (slots), video jobs on their own threads, status and waiting.
#include <fmt/format.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <random>
#include <thread>

#include "service/service_internal.hpp"
#include "upres/error.hpp"
#include "upres/service.hpp"

namespace fs = std::filesystem;

namespace upres {

const char* job_state_name(JobState state) {
  switch (state) {
    case JobState::running: return "running";
    case JobState::succeeded: return "succeeded";
    case JobState::failed: return "failed";
    case JobState::cancelled: return "cancelled";
  }
  return "unknown";
}

// ---- slots -----------------------------------------------------------------------------------

struct SlotCounter {
  std::mutex mutex;
  int used = 0;
  int limit = 1;
};

JobSlot::JobSlot(std::shared_ptr<SlotCounter> counter) : counter_(std::move(counter)) {}
JobSlot::JobSlot(JobSlot&& other) noexcept : counter_(std::move(other.counter_)) {}
JobSlot& JobSlot::operator=(JobSlot&& other) noexcept {
  if (this != &other) {
    JobSlot released(std::move(*this));
    counter_ = std::move(other.counter_);
  }
  return *this;
}
JobSlot::~JobSlot() {
  if (!counter_) return;
  std::lock_guard lock(counter_->mutex);
  --counter_->used;
}

JobSlot JobManager::acquire_slot() {
  std::lock_guard lock(slots_->mutex);
  if (slots_->used >= slots_->limit)
    throw Error(ErrorCode::busy,
                fmt::format("the server is already running {} job{} (its --max-jobs); retry shortly",
                            slots_->limit, slots_->limit == 1 ? "" : "s"));
  ++slots_->used;
  return JobSlot(slots_);
}

int JobManager::running() const {
  std::lock_guard lock(slots_->mutex);
  return slots_->used;
}

// ---- models ----------------------------------------------------------------------------------

std::shared_ptr<const Model> load_shared_model(ModelCache& cache, const std::string& name_or_path) {
  std::lock_guard lock(cache.mutex);
  for (auto it = cache.loaded.begin(); it != cache.loaded.end(); ++it) {
    if (it->first != name_or_path) continue;
    cache.loaded.splice(cache.loaded.end(), cache.loaded, it);  // most recently used last
    return cache.loaded.back().second;
  }
  auto model = Model::load(name_or_path);
  cache.loaded.emplace_back(name_or_path, model);
  for (auto it = cache.loaded.begin(); cache.loaded.size() > cache.capacity && it != cache.loaded.end();) {
    // Only the cache holds it: nothing is running with it, so it can go.
    if (it->second.use_count() == 1)
      it = cache.loaded.erase(it);
    else
      ++it;
  }
  return model;
}

// ---- jobs ------------------------------------------------------------------------------------

struct JobManager::Job {
  JobStatus status;  // guarded by State::mutex
  CancelToken cancel;
  fs::path owned_dir;  // made for this job in the work folder; removed when it is forgotten
  std::thread thread;

  // An error message as the client should read it: the work folder is the server's business, so
  // the uploaded input is named by the client's file name and files in the work folder by theirs.
  std::string client_message(std::string message) const {
    if (owned_dir.empty()) return message;
    auto replace_all = [&](const std::string& from, const std::string& to) {
      for (size_t at = message.find(from); at != std::string::npos; at = message.find(from, at + to.size()))
        message.replace(at, from.size(), to);
    };
    if (!uploaded_input.empty()) replace_all(uploaded_input, status.input_name);
    replace_all((owned_dir / "").string(), "");
    return message;
  }
  std::string uploaded_input;  // where an upload is kept in the work folder
};

struct JobManager::State {
  mutable std::mutex mutex;
  mutable std::condition_variable changed;
  std::map<std::string, std::shared_ptr<Job>> jobs;
  std::deque<std::string> finished;  // oldest first
  bool closed = false;               // after cancel_all_and_wait: no new jobs start
  int starting = 0;                  // start_video calls in progress (validating, files open)
  std::mt19937_64 random{std::random_device{}()};
};

namespace {

int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string lowercase_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

}  // namespace

JobManager::JobManager(ServiceOptions options)
    : options_(std::move(options)),
      slots_(std::make_shared<SlotCounter>()),
      pool_(make_upscaler_pool(size_t(std::max(2, options_.max_jobs * 2)))),
      models_(std::make_shared<ModelCache>()),
      state_(std::make_unique<State>()) {
  if (options_.max_jobs < 1) throw Error(ErrorCode::invalid_argument, "--max-jobs must be at least 1");
  slots_->limit = options_.max_jobs;
  std::error_code ec;
  root_ = fs::canonical(options_.root, ec);
  if (ec || !fs::is_directory(root_))
    throw Error(ErrorCode::not_found, fmt::format("root folder '{}' does not exist", options_.root));
  if (options_.work_dir.empty()) {
    work_dir_ = fs::temp_directory_path() /
                fmt::format("upres-serve-{}-{:08x}", ::getpid(), uint32_t(state_->random()));
    owns_work_dir_ = true;
  } else {
    work_dir_ = fs::absolute(options_.work_dir).lexically_normal();
  }
  fs::create_directories(work_dir_, ec);
  if (ec)
    throw Error(ErrorCode::io_failure,
                fmt::format("cannot create work folder '{}': {}", work_dir_.string(), ec.message()));
}

JobManager::~JobManager() {
  cancel_all_and_wait();
  std::error_code ec;
  if (owns_work_dir_) fs::remove_all(work_dir_, ec);
}

fs::path JobManager::upload_path(const std::string& client_name) {
  std::string ext = lowercase_extension(fs::path(client_name).filename());
  // Only the extension survives from the client's name; it tells the demuxer and encoder a hint.
  if (ext.size() > 8 || ext.find_first_not_of(".abcdefghijklmnopqrstuvwxyz0123456789") != std::string::npos)
    ext = "";
  std::lock_guard lock(state_->mutex);
  return work_dir_ / fmt::format("upload-{:016x}{}", state_->random(), ext);
}

JobStatus JobManager::start_video(const std::string& options_json, const fs::path& uploaded,
                                  const std::string& upload_name, JobSlot slot) {
  // Counted while it runs, so shutdown can wait for a start in progress (it may hold a
  // temporary output file open) instead of racing it.
  struct Starting {
    State& state;
    explicit Starting(State& s) : state(s) {
      std::lock_guard lock(state.mutex);
      if (state.closed) throw Error(ErrorCode::cancelled, "the service is shutting down");
      ++state.starting;
    }
    ~Starting() {
      std::lock_guard lock(state.mutex);
      --state.starting;
      state.changed.notify_all();
    }
  } starting(*state_);
  auto job = std::make_shared<Job>();
  // Files made for a job that never starts are not kept.
  struct RemoveUnlessStarted {
    std::vector<fs::path> paths;
    bool started = false;
    ~RemoveUnlessStarted() {
      std::error_code ec;
      if (!started)
        for (const auto& p : paths) fs::remove_all(p, ec);
    }
  } cleanup;
  if (!uploaded.empty()) cleanup.paths.push_back(uploaded);

  VideoOptions base;
  base.engine = options_.engine;
  base.max_output_side = options_.max_output_side;
  VideoOptions o = video_options_from_json(options_json.empty() ? "{}" : options_json, base);
  // A request may lower the size cap, never raise it past the server's.
  o.max_output_side = std::min(o.max_output_side, options_.max_output_side);
  o.engine.max_output_side = std::min(o.engine.max_output_side, options_.max_output_side);

  JobStatus& st = job->status;
  {
    std::lock_guard lock(state_->mutex);
    st.id = fmt::format("{:016x}{:016x}", state_->random(), state_->random());
  }
  if (!uploaded.empty()) {
    if (!o.input.empty())
      throw Error(ErrorCode::invalid_argument, "give either an uploaded file or an \"input\" path, not both");
    st.input_name = upload_name.empty() ? "upload" : fs::path(upload_name).filename().string();
    job->owned_dir = work_dir_ / st.id;
    cleanup.paths.push_back(job->owned_dir);
    fs::create_directories(job->owned_dir);
    fs::path kept = job->owned_dir / ("input" + lowercase_extension(uploaded));
    fs::rename(uploaded, kept);
    o.input = kept.string();
    job->uploaded_input = o.input;
  } else {
    if (o.input.empty())
      throw Error(ErrorCode::invalid_argument,
                  "the request names no input: give \"input\" (a path under the root) or upload a file");
    st.input_name = o.input;
    o.input = resolve_input(o.input).string();
  }

  std::string stem = fs::path(st.input_name).stem().string();
  if (stem.empty()) stem = "video";
  std::string ext = lowercase_extension(o.output.empty() ? fs::path(st.input_name) : fs::path(o.output));
  if (ext != ".mp4" && ext != ".mkv" && ext != ".webm" && ext != ".mov") ext = ".mp4";
  if (o.output.empty()) {
    if (job->owned_dir.empty()) {
      job->owned_dir = work_dir_ / st.id;
      cleanup.paths.push_back(job->owned_dir);
      fs::create_directories(job->owned_dir);
    }
    o.output = (job->owned_dir / ("output" + ext)).string();
  } else {
    o.output = resolve_output(o.output).string();
    st.output_name = fs::relative(o.output, root_).string();
  }
  st.output_path = o.output;

  std::string model_name = video_model_name(o);
  std::shared_ptr<const Model> shared_model;
  if (!model_name.empty()) shared_model = model(model_name, o.engine.scale > 0 ? o.engine.scale : 2);
  int scale = o.engine.scale > 0 ? o.engine.scale : shared_model ? shared_model->geometry().scale : 1;
  st.download_name = fmt::format("{}-upres-x{}{}", stem, scale, ext);

  if (!slot) slot = acquire_slot();
  auto video = std::make_shared<VideoJob>(o, shared_model);
  try {
    st.plan = video->validate();
  } catch (const Error& e) {
    throw Error(e.code(), job->client_message(e.what()));
  }
  st.created_unix_ms = now_unix_ms();
  st.version = 1;

  JobStatus snapshot;
  {
    std::lock_guard lock(state_->mutex);
    if (state_->closed) throw Error(ErrorCode::cancelled, "the service is shutting down");
    state_->jobs[st.id] = job;
    snapshot = st;
    job->thread = std::thread(&JobManager::run_job, this, job, std::move(video), std::move(slot));
  }
  cleanup.started = true;
  prune_finished();
  return snapshot;
}

void JobManager::run_job(std::shared_ptr<Job> job, std::shared_ptr<VideoJob> video, JobSlot slot) {
  JobState state = JobState::succeeded;
  std::string code, message;
  VideoStats stats;
  // Every failure stays inside this job: it is reported in the job's status, never rethrown.
  try {
    stats = video->run(
        [&](const VideoProgress& p) {
          std::lock_guard lock(state_->mutex);
          job->status.progress = p;
          ++job->status.version;
          state_->changed.notify_all();
        },
        &job->cancel);
  } catch (const Error& e) {
    state = e.code() == ErrorCode::cancelled ? JobState::cancelled : JobState::failed;
    code = e.code() == ErrorCode::cancelled ? "cancelled" : error_code_name(e.code());
    message = job->client_message(e.what());
  } catch (const std::bad_alloc&) {
    state = JobState::failed;
    code = "limit exceeded";
    message = "the job ran out of memory; try a smaller --tile or --max-memory, or a smaller scale";
  } catch (const std::exception& e) {
    state = JobState::failed;
    code = "internal";
    message = e.what();
  } catch (...) {
    state = JobState::failed;
    code = "internal";
    message = "unknown failure";
  }
  video.reset();
  slot = JobSlot{};  // free the place before anyone can see the job finished
  std::lock_guard lock(state_->mutex);
  JobStatus& st = job->status;
  st.state = state;
  st.error_code = code;
  st.error_message = message;
  if (state == JobState::succeeded) {
    st.stats = stats;
    st.progress.phase = VideoPhase::done;
    st.progress.fraction = 1;
  }
  st.finished_unix_ms = now_unix_ms();
  ++st.version;
  state_->finished.push_back(st.id);
  state_->changed.notify_all();
}

// A job's thread is joined by whoever takes it out of the Job under the lock: shutdown, forget
// and pruning can race for the same job, and a std::thread must be joined exactly once.
void JobManager::prune_finished() {
  std::vector<std::shared_ptr<Job>> dropped;
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(state_->mutex);
    while (state_->finished.size() > options_.keep_finished) {
      auto it = state_->jobs.find(state_->finished.front());
      state_->finished.pop_front();
      if (it == state_->jobs.end()) continue;
      dropped.push_back(it->second);
      threads.push_back(std::move(it->second->thread));
      state_->jobs.erase(it);
    }
  }
  for (auto& t : threads)
    if (t.joinable()) t.join();
  for (auto& job : dropped) {
    std::error_code ec;
    if (!job->owned_dir.empty()) fs::remove_all(job->owned_dir, ec);
  }
}

std::optional<JobStatus> JobManager::status(const std::string& id) const {
  std::lock_guard lock(state_->mutex);
  auto it = state_->jobs.find(id);
  if (it == state_->jobs.end()) return std::nullopt;
  JobStatus st = it->second->status;
  st.cancel_requested = it->second->cancel.cancelled();
  return st;
}

std::vector<JobStatus> JobManager::list() const {
  std::lock_guard lock(state_->mutex);
  std::vector<JobStatus> all;
  for (const auto& [id, job] : state_->jobs) all.push_back(job->status);
  std::sort(all.begin(), all.end(),
            [](const JobStatus& a, const JobStatus& b) { return a.created_unix_ms < b.created_unix_ms; });
  return all;
}

std::optional<JobStatus> JobManager::wait_for_update(const std::string& id, uint64_t seen_version,
                                                     std::chrono::steady_clock::time_point deadline,
                                                     bool only_finish) const {
  std::unique_lock lock(state_->mutex);
  std::shared_ptr<Job> job;
  state_->changed.wait_until(lock, deadline, [&] {
    auto it = state_->jobs.find(id);
    if (it == state_->jobs.end()) return true;
    job = it->second;
    return job->status.finished() || (!only_finish && job->status.version > seen_version);
  });
  auto it = state_->jobs.find(id);
  if (it == state_->jobs.end()) return std::nullopt;
  JobStatus st = it->second->status;
  st.cancel_requested = it->second->cancel.cancelled();
  return st;
}

bool JobManager::cancel(const std::string& id) {
  std::lock_guard lock(state_->mutex);
  auto it = state_->jobs.find(id);
  if (it == state_->jobs.end()) return false;
  if (!it->second->status.finished()) {
    it->second->cancel.cancel();
    ++it->second->status.version;
    state_->changed.notify_all();
  }
  return true;
}

bool JobManager::forget(const std::string& id) {
  std::shared_ptr<Job> job;
  std::thread thread;
  {
    std::lock_guard lock(state_->mutex);
    auto it = state_->jobs.find(id);
    if (it == state_->jobs.end() || !it->second->status.finished()) return false;
    job = it->second;
    thread = std::move(job->thread);
    state_->jobs.erase(it);
    std::erase(state_->finished, id);
    state_->changed.notify_all();
  }
  if (thread.joinable()) thread.join();
  std::error_code ec;
  if (!job->owned_dir.empty()) fs::remove_all(job->owned_dir, ec);
  return true;
}

void JobManager::cancel_all_and_wait() {
  std::vector<std::thread> threads;
  {
    std::unique_lock lock(state_->mutex);
    state_->closed = true;
    state_->changed.wait(lock, [&] { return state_->starting == 0; });
    for (auto& [id, job] : state_->jobs) {
      job->cancel.cancel();
      threads.push_back(std::move(job->thread));
    }
  }
  for (auto& t : threads)
    if (t.joinable()) t.join();
}

}  // namespace upres
