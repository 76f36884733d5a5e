// Segmented jobs (upres/segments.hpp): the plan in the work folder, each segment's run and
// record, and the whole job in one process. The join is segment_join.cpp.
#include "upres/segments.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <initializer_list>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/json_input.hpp"
#include "core/partial_file.hpp"
#include "core/shell_quote.hpp"
#include "media/video_input.hpp"
#include "media/video_output.hpp"
#include "pipeline/segments_internal.hpp"
#include "upres/error.hpp"
#include "upres/files.hpp"
#include "upres/model.hpp"

namespace upres {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr int kManifestVersion = 1;

constexpr const char* kPlanLock = "plan.lock";  // held while the plan is read or made
constexpr const char* kRunLock = "run.lock";    // held by a local run of the whole job

json bound(int64_t v, int64_t open) {
  return v == open ? json(nullptr) : json(v);
}

int64_t read_bound(const json& j, int64_t open) {
  return j.is_null() ? open : j.get<int64_t>();
}

// The options that change what the job makes. The rest say where (output), how fast or on what
// (backend, device, threads, memory, tiles, queue, hardware decoding): a rerun may change them.
json result_options(const VideoOptions& o) {
  json j = json::parse(video_options_json(o));
  for (const char* key : {"output", "overwrite", "backend", "device", "threads", "max_memory", "tile",
                          "tile_overlap", "queue_depth", "hwaccel", "sink"})
    j.erase(key);
  return j;
}

struct FileStamp {
  int64_t bytes = -1, mtime_ns = 0;
};

FileStamp stamp_of(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return {};
  return {int64_t(st.st_size), int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

// Writes `text` to `path` through a partial file: readers see the old file or the new one.
void write_atomically(const std::string& path, const std::string& text) {
  PartialFile partial(path);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(partial.fd(), text.data() + done, text.size() - done);
    if (n <= 0) throw Error(ErrorCode::io_failure, fmt::format("cannot write {}: disk full?", path));
    done += size_t(n);
  }
  partial.commit();
}

json read_json_file(const std::string& path, const std::string& what) {
  const std::vector<uint8_t> bytes = read_file_bytes(path, 256 << 20);
  return parse_outside_json(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                            what);
}

// An exclusive flock on a file of the work folder, held while the object lives. `wait`: block
// until it is free; otherwise held() says whether another process has it. A filesystem without
// locks (ENOSYS, ENOLCK, EOPNOTSUPP) counts as held: the work goes on unlocked.
class FolderLock {
 public:
  FolderLock(const std::string& path, bool wait) {
    // A lock file removed while this waited (a refused plan cleans its new folder up) locks
    // nothing: lock the file now at that path instead.
    for (int attempt = 0;; ++attempt) {
      fd_ = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
      if (fd_ < 0)
        throw Error(ErrorCode::io_failure, fmt::format("cannot write {}: {}", path, std::strerror(errno)));
      int rc;
      do rc = ::flock(fd_, LOCK_EX | (wait ? 0 : LOCK_NB));
      while (rc != 0 && errno == EINTR);
      held_ = rc == 0 || errno != EWOULDBLOCK;
      struct stat locked {
      }, named{};
      const bool same = ::fstat(fd_, &locked) == 0 && ::stat(path.c_str(), &named) == 0 &&
                        locked.st_dev == named.st_dev && locked.st_ino == named.st_ino;
      if (!held_ || same || attempt == 100) return;
      ::close(fd_);
    }
  }
  ~FolderLock() { ::close(fd_); }
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;
  bool held() const { return held_; }

 private:
  int fd_ = -1;
  bool held_ = false;
};

// Makes the work folder when it is missing; true when this call made it.
bool make_work_folder(const std::string& dir) {
  std::error_code ec;
  const bool created = !fs::exists(dir, ec);
  fs::create_directories(dir, ec);
  if (ec)
    throw Error(ErrorCode::io_failure,
                fmt::format("cannot create the work folder {}: {}", dir, ec.message()));
  return created;
}

// Undoes make_work_folder for a job that was refused: the lock files it made, then the folder
// when empty.
void remove_refused_work_folder(const std::string& dir, std::initializer_list<const char*> locks) {
  std::error_code ec;
  for (const char* lock : locks) fs::remove(fs::path(dir) / lock, ec);
  fs::remove(dir, ec);  // only when empty
}

std::string manifest_path(const std::string& dir) {
  return (fs::path(dir) / "manifest.json").string();
}

// Where the source's keyframes cut it into ranges of at least `seconds` within `whole` (the
// plan's range: --frames N already ends it at output frame N+1's time).
std::vector<Segment> cut_at_keyframes(const std::string& source, const VideoRange& whole, double seconds) {
  VideoInput input(source, "", 1);
  AVFormatContext* ic = input.format();
  const int vi = input.video_index();
  for (unsigned i = 0; i < ic->nb_streams; ++i)
    if (int(i) != vi) ic->streams[i]->discard = AVDISCARD_ALL;
  std::vector<int64_t> keys;
  int64_t first = INT64_MAX;  // the range's first frame
  PacketPtr packet = make_packet();
  while (av_read_frame(ic, packet.get()) >= 0) {
    const int64_t pts = packet->pts;
    // Packets an edit list leaves out (a file cut with `-c copy` starts mid-group) are decoded
    // as references but never shown: neither frames of the range nor places to cut.
    const bool shown = !(packet->flags & AV_PKT_FLAG_DISCARD);
    if (packet->stream_index == vi && shown && pts != AV_NOPTS_VALUE && pts >= whole.begin &&
        pts < whole.end) {
      first = std::min(first, pts);
      if ((packet->flags & AV_PKT_FLAG_KEY) && pts > whole.begin) keys.push_back(pts);
    }
    av_packet_unref(packet.get());
  }
  if (first == INT64_MAX)
    throw Error(ErrorCode::invalid_media, fmt::format("{} has no video frame with a time to cut at", source));
  // Segment files (NUT) hold no negative times, and a segment keeps the source's.
  if (first < 0)
    throw Error(
        ErrorCode::unsupported,
        fmt::format("{} starts its video before time 0, which segments cannot keep; run it without "
                    "--work-dir (or remux it first: ffmpeg -i IN -c copy -avoid_negative_ts make_zero OUT)",
                    source));
  const AVRational tb = input.video_stream()->time_base;
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  keys.erase(std::lower_bound(keys.begin(), keys.end(), whole.end), keys.end());
  std::vector<Segment> segments;
  Segment current;
  current.range.begin = whole.begin;
  // Counted from the first frame, so that the first segment holds frames even when the video
  // starts long after the file does.
  current.start_seconds = std::max(0.0, input.seconds_of(first, tb));
  for (int64_t k : keys) {
    if (k <= first) continue;
    const double at = input.seconds_of(k, tb);
    if (at - current.start_seconds < seconds) continue;
    current.range.end = k;
    current.end_seconds = at;
    segments.push_back(current);
    current = Segment{int(segments.size()), {k, INT64_MAX}, at, 0};
  }
  current.range.end = whole.end;
  current.end_seconds = whole.end == INT64_MAX ? input.duration_seconds() : input.seconds_of(whole.end);
  segments.push_back(current);
  return segments;
}

// Error(invalid_argument) unless the source is the one the plan was made from. Its size and
// time are compared first; only when they differ is it read again for its checksum.
void check_source(const SegmentManifest& m) {
  const FileStamp now = stamp_of(m.source);
  if (now.bytes < 0)
    throw Error(ErrorCode::not_found, fmt::format("{} (the source of {}) is gone", m.source, m.work_dir));
  if (now.bytes == m.source_bytes && now.mtime_ns == m.source_mtime_ns) return;
  if (now.bytes != m.source_bytes || file_sha256(m.source) != m.source_sha256)
    throw Error(ErrorCode::invalid_argument,
                fmt::format("{} has changed since the segments in {} were planned; remove that folder or "
                            "use another --work-dir",
                            m.source, m.work_dir));
}

}  // namespace

std::string segment_manifest_json(const SegmentManifest& m) {
  json segments = json::array();
  for (const Segment& s : m.segments)
    segments.push_back({{"index", s.index},
                        {"begin", bound(s.range.begin, INT64_MIN)},
                        {"end", bound(s.range.end, INT64_MAX)},
                        {"start_seconds", s.start_seconds},
                        {"end_seconds", s.end_seconds}});
  const json j{{"format", "upres-segments"},
               {"version", kManifestVersion},
               {"source",
                {{"path", m.source},
                 {"bytes", m.source_bytes},
                 {"mtime_ns", m.source_mtime_ns},
                 {"sha256", m.source_sha256}}},
               {"segment_seconds", m.segment_seconds},
               {"plan", json::parse(video_plan_json(m.plan))},
               {"segments", segments}};
  return json_text(j, 1) + "\n";
}

std::string segment_file(const SegmentManifest& m, int index) {
  return (fs::path(m.work_dir) / "segments" / fmt::format("{:05}.nut", index)).string();
}

std::string segment_record_file(const SegmentManifest& m, int index) {
  return (fs::path(m.work_dir) / "segments" / fmt::format("{:05}.json", index)).string();
}

const char* segment_state_name(SegmentState state) {
  switch (state) {
    case SegmentState::pending: return "pending";
    case SegmentState::done: return "done";
    case SegmentState::broken: return "broken";
  }
  return "?";
}

SegmentManifest segment_manifest_from_json(const std::string& text, const std::string& work_dir) {
  const std::string path = manifest_path(work_dir);
  const json j = parse_outside_json(text, path);
  try {
    if (!j.is_object() || j.value("format", "") != "upres-segments" ||
        j.value("version", 0) != kManifestVersion)
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("{} is not a segment plan of this version of upres", path));
    SegmentManifest m;
    m.work_dir = fs::absolute(work_dir).lexically_normal().string();
    const json& src = j.at("source");
    m.source = src.at("path").get<std::string>();
    m.source_bytes = src.at("bytes").get<int64_t>();
    m.source_mtime_ns = src.at("mtime_ns").get<int64_t>();
    m.source_sha256 = src.at("sha256").get<std::string>();
    m.segment_seconds = j.at("segment_seconds").get<double>();
    if (!(m.segment_seconds >= 1 && m.segment_seconds <= kMaxSeconds))
      throw Error(ErrorCode::invalid_argument, fmt::format("{}: segment_seconds is out of range", path));
    m.plan = video_plan_from_json(json_text(j.at("plan")));
    for (const json& s : j.at("segments")) {
      Segment seg;
      seg.index = s.at("index").get<int>();
      seg.range = {read_bound(s.at("begin"), INT64_MIN), read_bound(s.at("end"), INT64_MAX)};
      seg.start_seconds = s.at("start_seconds").get<double>();
      seg.end_seconds = s.at("end_seconds").get<double>();
      if (seg.index != int(m.segments.size()) || seg.range.begin >= seg.range.end ||
          (!m.segments.empty() && m.segments.back().range.end != seg.range.begin))
        throw Error(ErrorCode::invalid_argument,
                    fmt::format("{}: segment {} does not follow the one before", path, seg.index));
      m.segments.push_back(seg);
    }
    if (m.segments.empty()) throw Error(ErrorCode::invalid_argument, fmt::format("{} has no segments", path));
    return m;
  } catch (const json::exception& e) {
    throw Error(ErrorCode::invalid_argument, fmt::format("{} is damaged: {}", path, e.what()));
  }
}

SegmentManifest read_segment_manifest(const std::string& work_dir) {
  const std::string path = manifest_path(work_dir);
  if (stamp_of(path).bytes < 0)
    throw Error(ErrorCode::not_found,
                fmt::format("{} holds no segment plan (manifest.json); start the job with `upres video IN -o "
                            "OUT --work-dir {}`",
                            work_dir, shell_quote(work_dir)));
  const std::vector<uint8_t> bytes = read_file_bytes(path, 256 << 20);
  return segment_manifest_from_json(std::string(bytes.begin(), bytes.end()), work_dir);
}

SegmentManifest prepare_segments(const VideoOptions& options, const std::string& work_dir,
                                 double segment_seconds) {
  if (segment_seconds != 0 && !(segment_seconds >= 1 && segment_seconds <= kMaxSeconds))
    throw Error(ErrorCode::invalid_argument,
                fmt::format("--segment-seconds {} is out of range (1 or more)", segment_seconds));
  VideoOptions o = options;
  o.input = fs::absolute(o.input).lexically_normal().string();
  o.output = fs::absolute(o.output).lexically_normal().string();
  o.sink = VideoSinkKind::file;
  // One process at a time reads or makes the plan: runs started together on a new folder would
  // each plan and overwrite the others' manifest, and their segments would mix their options.
  // The second finds the first's plan and is held to it (refused when its options differ).
  const bool created = make_work_folder(work_dir);
  FolderLock plan_lock((fs::path(work_dir) / kPlanLock).string(), true);
  if (stamp_of(manifest_path(work_dir)).bytes >= 0) {
    SegmentManifest m = read_segment_manifest(work_dir);
    if (m.source != o.input)
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("{} holds segments of {}, not {}; use another --work-dir", work_dir, m.source,
                              o.input));
    check_source(m);
    const json before = result_options(m.plan.options), now = result_options(o);
    for (const auto& [key, value] : now.items())
      if (!before.contains(key) || before.at(key) != value)
        throw Error(
            ErrorCode::invalid_argument,
            fmt::format("{} was planned with {} = {}, now it is {}: the segments there would not match. "
                        "Remove that folder or use another --work-dir",
                        work_dir, key, before.contains(key) ? json_brief(before.at(key)) : "(unset)",
                        json_brief(value)));
    if (segment_seconds != 0 && m.segment_seconds != segment_seconds)
      throw Error(
          ErrorCode::invalid_argument,
          fmt::format("{} was planned in segments of {} s, now {} s is asked; give --segment-seconds {} "
                      "or use another --work-dir",
                      work_dir, m.segment_seconds, segment_seconds, m.segment_seconds));
    // Where the join writes may change between runs, within the container the plan chose its
    // encoder for; the join jobs read it from the manifest.
    if (m.plan.options.output != o.output || m.plan.options.overwrite != o.overwrite) {
      if (container_for_path(o.output) != container_for_path(m.plan.options.output))
        throw Error(ErrorCode::invalid_argument,
                    fmt::format("{} was planned for a {} output, now {} is asked; keep the container or use "
                                "another --work-dir",
                                work_dir, container_for_path(m.plan.options.output), o.output));
      m.plan.options.output = o.output;
      m.plan.options.overwrite = o.overwrite;
      write_atomically(manifest_path(work_dir), segment_manifest_json(m));
    }
    return m;
  }
  // A new plan: the whole job is checked as a single run would be, then cut. A folder made here
  // for a job that is refused is not left behind.
  VideoPlan plan;
  try {
    plan = plan_video(o);
  } catch (...) {
    if (created) remove_refused_work_folder(work_dir, {kPlanLock});
    throw;
  }
  std::error_code ec;
  fs::create_directories(fs::path(work_dir) / "segments", ec);
  if (ec)
    throw Error(ErrorCode::io_failure,
                fmt::format("cannot create the work folder {}: {}", work_dir, ec.message()));
  SegmentManifest m;
  m.work_dir = fs::absolute(work_dir).lexically_normal().string();
  m.source = o.input;
  const FileStamp stamp = stamp_of(o.input);
  m.source_bytes = stamp.bytes;
  m.source_mtime_ns = stamp.mtime_ns;
  m.source_sha256 = file_sha256(o.input);
  m.segment_seconds = segment_seconds != 0 ? segment_seconds : kDefaultSegmentSeconds;
  m.plan = plan;
  // (--frames made the range end at output frame N+1's time: the join cuts audio there too.)
  m.segments = cut_at_keyframes(o.input, m.plan.range, m.segment_seconds);
  write_atomically(manifest_path(work_dir), segment_manifest_json(m));
  return m;
}

std::vector<SegmentStatus> segment_status(const SegmentManifest& m, bool verify) {
  std::vector<SegmentStatus> all;
  for (const Segment& seg : m.segments) {
    SegmentStatus s;
    s.segment = seg;
    const std::string record = segment_record_file(m, seg.index), file = segment_file(m, seg.index);
    if (stamp_of(record).bytes < 0) {
      all.push_back(s);
      continue;
    }
    try {
      const json r = read_json_file(record, record);
      s.frames = r.at("frames").get<int64_t>();
      s.bytes = r.at("bytes").get<int64_t>();
      s.seconds = r.at("seconds").get<double>();
      const FileStamp f = stamp_of(file);
      if (f.bytes != s.bytes)
        s.note = f.bytes < 0 ? "its file is missing" : "its file has the wrong size";
      else if (verify && file_sha256(file) != r.at("sha256").get<std::string>())
        s.note = "its file's checksum does not match";
      s.state = s.note.empty() ? SegmentState::done : SegmentState::broken;
    } catch (const std::exception& e) {
      s.state = SegmentState::broken;
      s.note = std::string("its record is unreadable: ") + e.what();
    }
    all.push_back(s);
  }
  return all;
}

SegmentTotals segment_totals(const std::vector<SegmentStatus>& status) {
  SegmentTotals t;
  for (const SegmentStatus& s : status)
    if (s.state == SegmentState::done) {
      ++t.done;
      t.frames += s.frames;
      t.seconds += s.seconds;
    }
  return t;
}

VideoStats run_segment(const SegmentManifest& m, int index, const SegmentMachine& machine,
                       const VideoProgressCallback& progress, const CancelToken* cancel) {
  if (index < 0 || index >= int(m.segments.size()))
    throw Error(ErrorCode::invalid_argument, fmt::format("segment {} does not exist: {} has segments 0..{}",
                                                         index, m.work_dir, m.segments.size() - 1));
  check_source(m);
  const Segment& seg = m.segments[size_t(index)];
  VideoOptions o = m.plan.options;
  o.output = segment_file(m, index);
  o.overwrite = true;
  o.sink = VideoSinkKind::video_segment;
  o.range = seg.range;
  o.start = o.duration = 0;
  o.max_frames = 0;  // in the range already
  // Every segment is encoded alike, whichever machine runs it, so that they join into one stream.
  o.video_codec = m.plan.encoder;
  o.pix_fmt = m.plan.pixel_format;
  if (machine.backend) o.engine.backend = *machine.backend;
  if (machine.device) o.engine.device = *machine.device;
  if (machine.threads) o.engine.threads = *machine.threads;
  // One run of a segment at a time (a task requeued while its first run lingers on a failed node,
  // a rerun beside a cluster job): the second is refused rather than racing the first's record.
  const FolderLock lock(segment_file(m, index) + ".lock", false);
  if (!lock.held())
    throw Error(
        ErrorCode::invalid_argument,
        fmt::format("segment {} of {} is being made by another process right now", index, m.work_dir));
  const std::string record = segment_record_file(m, index);
  std::error_code ec;
  fs::remove(record, ec);  // the old segment no longer counts, whatever happens next
  const VideoStats stats = VideoJob(o).run(progress, cancel);
  const std::string file = segment_file(m, index);
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  const json r{{"index", index},
               {"frames", stats.frames},
               {"bytes", stamp_of(file).bytes},
               {"sha256", file_sha256(file)},
               {"seconds", stats.seconds},
               {"host", host}};
  write_atomically(record, json_text(r) + "\n");
  return stats;
}

SegmentedStats run_segmented(const VideoOptions& options, const std::string& work_dir, double segment_seconds,
                             const SegmentMachine& machine, const VideoProgressCallback& progress,
                             const CancelToken* cancel) {
  const auto started = std::chrono::steady_clock::now();
  // One local run of a folder at a time, decided before anything is read or written there: a
  // second is refused at once rather than hashing the source, touching the plan, or failing later
  // on a segment the first is making (cluster tasks run single segments, under their own locks).
  const bool created = make_work_folder(work_dir);
  const FolderLock run_lock((fs::path(work_dir) / kRunLock).string(), false);
  if (!run_lock.held())
    throw Error(
        ErrorCode::invalid_argument,
        fmt::format("{} is in use by another `upres video --work-dir` run; wait for it to end, or use "
                    "another --work-dir",
                    work_dir));
  SegmentManifest m;
  try {
    m = prepare_segments(options, work_dir, segment_seconds);
  } catch (...) {
    if (created) remove_refused_work_folder(work_dir, {kRunLock, kPlanLock});  // nothing left behind
    throw;
  }
  const std::vector<SegmentStatus> status = segment_status(m, true);
  SegmentedStats result;
  result.segments = int(m.segments.size());
  int64_t frames_before = 0;  // in segments finished, this run or earlier
  for (const SegmentStatus& s : status)
    if (s.state == SegmentState::done) {
      ++result.reused;
      frames_before += s.frames;
    }
  int finished = result.reused;
  for (const SegmentStatus& s : status) {
    if (s.state == SegmentState::done) continue;
    if (cancel && cancel->cancelled()) throw Error(ErrorCode::cancelled, "cancelled");
    const VideoStats seg = run_segment(
        m, s.segment.index, machine,
        [&](const VideoProgress& p) {
          if (!progress) return;
          VideoProgress whole = p;
          whole.phase = VideoPhase::upscaling;
          whole.frames_done = frames_before + p.frames_done;
          whole.frames_total = std::max(m.plan.frames, whole.frames_done);
          whole.segments_total = result.segments;
          whole.segments_done = finished;
          whole.segments_reused = result.reused;
          const double share =
              whole.frames_total > 0 ? double(whole.frames_done) / double(whole.frames_total) : 0;
          whole.fraction = 0.05 + 0.85 * std::min(1.0, share);
          progress(whole);
        },
        cancel);
    frames_before += seg.frames;
    ++finished;
  }
  if (progress) {
    VideoProgress p;
    p.phase = VideoPhase::finishing;
    p.frames_done = p.frames_total = frames_before;
    p.segments_total = p.segments_done = result.segments;
    p.segments_reused = result.reused;
    p.fraction = 0.9;
    progress(p);
  }
  result.stats = join_segments(m, options.overwrite, cancel);
  result.stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  result.stats.fps = result.stats.seconds > 0 ? double(result.stats.frames) / result.stats.seconds : 0;
  return result;
}

}  // namespace upres
