// The job service: admission (slots), video jobs on their own threads, status and waiting.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <random>
#include <thread>

#include "core/assert.hpp"
#include "core/check_range.hpp"
#include "service/service_internal.hpp"
#include "service/status_json.hpp"
#include "upres/error.hpp"
#include "upres/policy.hpp"
#include "upres/service.hpp"

namespace fs = std::filesystem;

namespace upres {

const char* job_state_name(JobState state) {
  switch (state) {
    case JobState::queued: return "queued";
    case JobState::running: return "running";
    case JobState::succeeded: return "succeeded";
    case JobState::failed: return "failed";
    case JobState::cancelled: return "cancelled";
  }
  return "unknown";
}

// ---- places and the wait queue ------------------------------------------------------------------

// Places among max_jobs, and the tickets waiting for one, first come first served.
struct SlotQueue {
  std::mutex mutex;
  std::condition_variable changed;
  int used = 0;
  int limit = 1;
  int queue_limit = 0;  // -1: no limit
  bool closed = false;  // the manager is shutting down: nobody waits any more
  // Tickets in the order they came. A free place goes to the first one whose holder is waiting
  // for it (in JobTicket::wait): a request still receiving its upload does not hold up those
  // behind it.
  struct Waiter {
    uint64_t id;
    bool ready;
  };
  std::deque<Waiter> waiting;
  uint64_t next_id = 1;

  std::deque<Waiter>::iterator find(uint64_t id) {
    return std::find_if(waiting.begin(), waiting.end(), [&](const Waiter& w) { return w.id == id; });
  }
  bool first_ready(uint64_t id) const {
    for (const Waiter& w : waiting)
      if (w.ready) return w.id == id;
    return false;
  }
};

JobSlot::JobSlot(std::shared_ptr<SlotQueue> queue) : queue_(std::move(queue)) {}
JobSlot::JobSlot(JobSlot&& other) noexcept : queue_(std::move(other.queue_)) {}
JobSlot& JobSlot::operator=(JobSlot&& other) noexcept {
  if (this != &other) {
    JobSlot released(std::move(*this));
    queue_ = std::move(other.queue_);
  }
  return *this;
}
JobSlot::~JobSlot() {
  if (!queue_) return;
  std::lock_guard lock(queue_->mutex);
  --queue_->used;
  queue_->changed.notify_all();
}

JobTicket::JobTicket(JobTicket&& other) noexcept
    : queue_(std::move(other.queue_)), id_(other.id_), holds_place_(other.holds_place_) {}
JobTicket& JobTicket::operator=(JobTicket&& other) noexcept {
  if (this != &other) {
    leave();
    queue_ = std::move(other.queue_);
    id_ = other.id_;
    holds_place_ = other.holds_place_;
  }
  return *this;
}
JobTicket::~JobTicket() {
  leave();
}

void JobTicket::leave() {
  if (!queue_) return;
  {
    std::lock_guard lock(queue_->mutex);
    if (holds_place_)
      --queue_->used;
    else if (auto it = queue_->find(id_); it != queue_->waiting.end())
      queue_->waiting.erase(it);
    queue_->changed.notify_all();
  }
  queue_.reset();
}

int JobTicket::position() const {
  if (!queue_ || holds_place_) return 0;
  std::lock_guard lock(queue_->mutex);
  return int(queue_->find(id_) - queue_->waiting.begin()) + 1;
}

JobSlot JobTicket::wait(std::chrono::steady_clock::time_point deadline, const CancelToken* cancel,
                        const std::function<void(int)>& on_position) {
  UPRES_ASSERT(queue_);
  std::shared_ptr<SlotQueue> q = queue_;
  std::unique_lock lock(q->mutex);
  if (!holds_place_) q->find(id_)->ready = true;
  int told = -1;
  for (;;) {
    if (!holds_place_ && q->used < q->limit && q->first_ready(id_)) {
      q->waiting.erase(q->find(id_));
      ++q->used;
      holds_place_ = true;
      q->changed.notify_all();  // the next in line has a new position
    }
    if (holds_place_) {
      queue_.reset();  // the place now belongs to the slot
      return JobSlot(q);
    }
    const bool cancelled = (cancel && cancel->cancelled()) || q->closed;
    const auto now = std::chrono::steady_clock::now();
    if (cancelled || now >= deadline) {
      lock.unlock();
      leave();
      if (cancelled)
        throw Error(ErrorCode::cancelled,
                    q->closed ? "the service is shutting down" : "cancelled while waiting for a free place");
      throw Error(ErrorCode::busy,
                  fmt::format("no place became free in time: {} upscale{} ran the whole time (the server's "
                              "--max-jobs); retry shortly",
                              q->limit, q->limit == 1 ? "" : "s"));
    }
    const int position = int(q->find(id_) - q->waiting.begin()) + 1;
    if (position != told && on_position) {
      told = position;
      lock.unlock();
      on_position(position);
      lock.lock();
      continue;
    }
    // Cancel tokens do not notify: look at them a few times a second.
    q->changed.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(100)));
  }
}

JobTicket JobManager::reserve() {
  JobTicket ticket;
  std::lock_guard lock(slots_->mutex);
  if (slots_->closed) throw Error(ErrorCode::cancelled, "the service is shutting down");
  if (slots_->waiting.empty() && slots_->used < slots_->limit) {
    ++slots_->used;
    ticket.holds_place_ = true;
  } else if (slots_->queue_limit < 0 || int(slots_->waiting.size()) < slots_->queue_limit) {
    ticket.id_ = slots_->next_id++;
    slots_->waiting.push_back({ticket.id_, false});
  } else {
    throw Error(ErrorCode::busy,
                slots_->queue_limit == 0
                    ? fmt::format("the server is already running {} job{} (its --max-jobs); retry shortly",
                                  slots_->limit, slots_->limit == 1 ? "" : "s")
                    : fmt::format("the server is running {} job{} and {} more wait (its --max-jobs and "
                                  "--queue); retry shortly",
                                  slots_->limit, slots_->limit == 1 ? "" : "s", slots_->waiting.size()));
  }
  ticket.queue_ = slots_;
  return ticket;
}

JobSlot JobManager::acquire_slot(const CancelToken* cancel) {
  const auto wait = std::chrono::duration<double>(options_.queue_wait_seconds);
  return reserve().wait(std::chrono::steady_clock::now() +
                            std::chrono::duration_cast<std::chrono::steady_clock::duration>(wait),
                        cancel);
}

int JobManager::running() const {
  std::lock_guard lock(slots_->mutex);
  return slots_->used;
}

int JobManager::queued() const {
  std::lock_guard lock(slots_->mutex);
  return int(slots_->waiting.size());
}

// ---- models ----------------------------------------------------------------------------------

std::shared_ptr<const Model> load_shared_model(ModelCache& cache, const std::string& name_or_path) {
  std::lock_guard lock(cache.mutex);
  const auto now = std::chrono::steady_clock::now();
  for (auto it = cache.loaded.begin(); it != cache.loaded.end(); ++it) {
    if (it->key != name_or_path) continue;
    it->used = now;
    cache.loaded.splice(cache.loaded.end(), cache.loaded, it);  // most recently used last
    return cache.loaded.back().model;
  }
  auto model = Model::load(name_or_path);
  cache.loaded.push_back({name_or_path, model, now});
  for (auto it = cache.loaded.begin(); cache.loaded.size() > cache.capacity && it != cache.loaded.end();) {
    // Only the cache holds it: nothing is running with it, so it can go.
    if (it->model.use_count() == 1)
      it = cache.loaded.erase(it);
    else
      ++it;
  }
  return model;
}

void release_idle_models(ModelCache& cache, std::chrono::steady_clock::duration keep) {
  std::list<ModelCache::Entry> released;  // unloaded outside the lock
  {
    std::lock_guard lock(cache.mutex);
    const auto now = std::chrono::steady_clock::now();
    for (auto it = cache.loaded.begin(); it != cache.loaded.end();) {
      auto next = std::next(it);
      if (it->model.use_count() == 1 && now - it->used >= keep)
        released.splice(released.end(), cache.loaded, it);
      it = next;
    }
  }
}

// ---- jobs ------------------------------------------------------------------------------------

struct JobManager::Job {
  JobStatus status;  // guarded by State::mutex
  CancelToken cancel;
  fs::path owned_dir;          // made for this job in the work folder; removed when it is forgotten
  std::string uploaded_input;  // where an upload is kept in the work folder
  std::thread thread;
};

namespace {

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
}

bool is_path_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '/' ||
         c == '@';
}

// Replaces `folder` where it stands as a whole path or the start of one ("/srv/media/a.mp4" ->
// "a.mp4", "/srv/media" -> `name`), never inside a longer name ("/srv/media2" stays).
void hide_folder(std::string& text, const std::string& folder, const std::string& name) {
  if (folder.empty() || folder == "/") return;
  for (size_t at = text.find(folder); at != std::string::npos; at = text.find(folder, at + 1)) {
    if (at > 0 && is_path_char(text[at - 1])) continue;
    const size_t end = at + folder.size();
    if (end < text.size() && text[end] == '/') {
      text.erase(at, folder.size() + 1);
    } else if (end == text.size() || !is_path_char(text[end])) {
      text.replace(at, folder.size(), name);
    }
  }
}

}  // namespace

std::string JobManager::client_message(const std::string& message) const {
  std::string text = message;
  // Deepest first: the work folder may lie inside the root.
  hide_folder(text, work_dir_.string(), "the work folder");
  for (const fs::path& folder : model_folders_) hide_folder(text, folder.string(), "the model folder");
  hide_folder(text, root_.string(), "the root folder");
  return text;
}

struct JobManager::State {
  mutable std::mutex mutex;
  mutable std::condition_variable changed;
  std::map<std::string, std::shared_ptr<Job>> jobs;
  std::deque<std::string> finished;  // oldest first
  bool closed = false;               // after cancel_all_and_wait: no new jobs start
  bool released = false;             // the destructor runs: the releaser thread ends
  std::mutex validating;             // one start_video validates at a time
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
      slots_(std::make_shared<SlotQueue>()),
      pool_(make_upscaler_pool(size_t(std::max(2, options_.max_jobs * 2)))),
      models_(std::make_shared<ModelCache>()),
      state_(std::make_unique<State>()) {
  check_range("--max-jobs", options_.max_jobs, 1, kMaxJobs);
  check_range("--queue", options_.queue, -1, kMaxQueue, " (-1: no limit)");
  check_range("--queue-wait", options_.queue_wait_seconds, 0, 86400, " seconds");
  check_range("--keep-warm", options_.keep_warm_seconds, 0, 86400, " seconds");
  check_range("--max-size", options_.max_output_side, 16, kMaxImageSide, " pixels a side");
  check_upscale_options(options_.engine);
  slots_->limit = options_.max_jobs;
  slots_->queue_limit = options_.queue;
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
  // Where model files live is this machine's business too: messages name models, not folders.
  for (const ModelInfo& info : model_zoo()) {
    fs::path folder = fs::path(model_source(info).files.front()).parent_path();
    if (std::find(model_folders_.begin(), model_folders_.end(), folder) == model_folders_.end())
      model_folders_.push_back(std::move(folder));
  }
  if (!owns_work_dir_) claim_work_dir();
  releaser_ = std::thread(&JobManager::release_idle_loop, this);
}

JobManager::~JobManager() {
  cancel_all_and_wait();
  {
    std::lock_guard lock(state_->mutex);
    state_->released = true;
    state_->changed.notify_all();
  }
  releaser_.join();
  if (work_dir_lock_ >= 0) ::close(work_dir_lock_);
  std::error_code ec;
  if (owns_work_dir_) fs::remove_all(work_dir_, ec);
}

// A --work-dir the user names may be shared by servers one after another, or at once. Each holds a
// shared lock on its lock file while it lives; the one that can take it exclusively at start-up is
// alone, and removes what an earlier server left: uploads and job folders nobody can ask for any
// more (jobs live in memory). Only names this service makes are touched.
void JobManager::claim_work_dir() {
  work_dir_lock_ = ::open((work_dir_ / ".upres-serve.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (work_dir_lock_ < 0) return;  // a read-only folder: nothing to clean, and uploads will say why
  if (::flock(work_dir_lock_, LOCK_EX | LOCK_NB) == 0) {
    auto all_hex = [](const std::string& text) {
      return text.find_first_not_of("0123456789abcdef") == std::string::npos;
    };
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(work_dir_, ec)) {
      const std::string name = entry.path().filename().string();
      const std::string stem = entry.path().stem().string();
      const bool upload = stem.size() == 23 && stem.rfind("upload-", 0) == 0 && all_hex(stem.substr(7)) &&
                          entry.is_regular_file(ec);
      const bool job_folder = name.size() == 32 && all_hex(name) && entry.is_directory(ec);
      if (upload || job_folder) fs::remove_all(entry.path(), ec);
    }
  }
  ::flock(work_dir_lock_, LOCK_SH);  // from exclusive, or waiting out another's brief clean-up
}

void JobManager::release_idle_loop() {
  const auto keep = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(options_.keep_warm_seconds));
  const auto tick = std::clamp<std::chrono::steady_clock::duration>(keep / 4, std::chrono::milliseconds(50),
                                                                    std::chrono::seconds(5));
  std::unique_lock lock(state_->mutex);
  while (!state_->released) {
    state_->changed.wait_for(lock, tick);
    lock.unlock();
    release_idle_upscalers(*pool_, keep);
    release_idle_models(*models_, keep);
    lock.lock();
  }
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
                                  const std::string& upload_name, JobTicket ticket) {
  // Files made for a job that never starts are not kept, whatever stops it.
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
  auto make_folder = [&](const fs::path& folder) {
    std::error_code ec;
    cleanup.paths.push_back(folder);
    if (!fs::create_directories(folder, ec) && ec)
      throw Error(
          ErrorCode::io_failure,
          fmt::format("cannot make a folder in the work folder: {} (is the disk full?)", ec.message()));
  };

  VideoOptions base;
  base.engine = options_.engine;
  base.max_output_side = options_.max_output_side;
  VideoOptions o =
      video_options_from_json(options_json.empty() ? "{}" : options_json, base, "the request's options");
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
    make_folder(job->owned_dir);
    fs::path kept = job->owned_dir / ("input" + lowercase_extension(uploaded));
    std::error_code ec;
    fs::rename(uploaded, kept, ec);
    if (ec) throw Error(ErrorCode::io_failure, "cannot keep the upload in the work folder: " + ec.message());
    o.input = kept.string();
    job->uploaded_input = o.input;
  } else {
    if (o.input.empty())
      throw Error(ErrorCode::invalid_argument,
                  "the request names no input: give \"input\" (a path under the root) or upload a file");
    st.input_name = o.input;
    o.input = resolve_input(o.input).string();
  }

  const std::string ext = video_output_extension(o.output.empty() ? st.input_name : o.output);
  if (o.output.empty()) {
    if (job->owned_dir.empty()) {
      job->owned_dir = work_dir_ / st.id;
      make_folder(job->owned_dir);
    }
    o.output = (job->owned_dir / ("output" + ext)).string();
  } else {
    o.output = resolve_output(o.output).string();
    st.output_name = fs::relative(o.output, root_).string();
  }
  st.output_path = o.output;

  // Messages name the upload by the client's file name, and no folder of this machine.
  auto for_client = [&](const std::string& message) {
    std::string text = message;
    replace_all(text, job->uploaded_input, st.input_name);
    return client_message(text);
  };
  if (!ticket) ticket = reserve();
  std::shared_ptr<VideoJob> video;
  try {
    std::string model_name = video_model_name(o);
    std::shared_ptr<const Model> shared_model;
    if (!model_name.empty()) shared_model = model(model_name, o.engine.scale > 0 ? o.engine.scale : 2);
    int scale = o.engine.scale > 0 ? o.engine.scale : shared_model ? shared_model->geometry().scale : 1;
    st.download_name = upscaled_file_name(st.input_name, scale, ext, "video");
    video = std::make_shared<VideoJob>(o, shared_model);
    // Validation opens the files and times the model on a small tile: one request at a time, so
    // a burst of requests cannot run a burst of inferences before any of them has a place.
    std::lock_guard validating(state_->validating);
    st.plan = video->validate();
  } catch (const Error& e) {
    throw Error(e.code(), for_client(e.what()));
  }
  st.created_unix_ms = now_unix_ms();
  st.version = 1;
  st.queue_position = ticket.position();
  st.state = st.queue_position > 0 ? JobState::queued : JobState::running;

  JobStatus snapshot;
  {
    std::lock_guard lock(state_->mutex);
    if (state_->closed) throw Error(ErrorCode::cancelled, "the service is shutting down");
    try {
      job->thread = std::thread(&JobManager::run_job, this, job, std::move(video), std::move(ticket));
    } catch (const std::system_error&) {
      throw Error(ErrorCode::busy, "the service cannot start another thread now; retry shortly");
    }
    state_->jobs[st.id] = job;
    snapshot = st;
  }
  cleanup.started = true;
  prune_finished();
  return snapshot;
}

void JobManager::run_job(std::shared_ptr<Job> job, std::shared_ptr<VideoJob> video, JobTicket ticket) {
  JobState state = JobState::succeeded;
  std::string code, message;
  VideoStats stats;
  auto update = [&](const std::function<void(JobStatus&)>& change) {
    std::lock_guard lock(state_->mutex);
    change(job->status);
    ++job->status.version;
    state_->changed.notify_all();
  };
  JobSlot slot;
  // Every failure stays inside this job: it is reported in the job's status, never rethrown.
  try {
    slot = ticket.wait(std::chrono::steady_clock::time_point::max(), &job->cancel,
                       [&](int position) { update([&](JobStatus& st) { st.queue_position = position; }); });
    update([](JobStatus& st) {
      st.state = JobState::running;
      st.queue_position = 0;
    });
    stats = video->run([&](const VideoProgress& p) { update([&](JobStatus& st) { st.progress = p; }); },
                       &job->cancel);
  } catch (const Error& e) {
    state = e.code() == ErrorCode::cancelled ? JobState::cancelled : JobState::failed;
    code = error_code_for(e);
    std::string text = e.what();
    replace_all(text, job->uploaded_input, job->status.input_name);
    message = client_message(text);
  } catch (const std::bad_alloc& e) {
    state = JobState::failed;
    code = error_code_for(e);
    message = "the job ran out of memory; try a smaller --tile or --max-memory, or a smaller scale";
  } catch (const std::exception& e) {
    state = JobState::failed;
    code = error_code_for(e);
    message = client_message(e.what());
  } catch (...) {
    state = JobState::failed;
    code = kInternalErrorCode;
    message = "unknown failure";
  }
  video.reset();
  slot = JobSlot{};  // free the place before anyone can see the job finished
  std::lock_guard lock(state_->mutex);
  JobStatus& st = job->status;
  st.state = state;
  st.queue_position = 0;
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
  {
    std::lock_guard lock(slots_->mutex);
    slots_->closed = true;  // requests waiting for a place give up now
    slots_->changed.notify_all();
  }
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
