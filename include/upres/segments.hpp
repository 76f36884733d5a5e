// One video in segments, resumable and spreadable over machines. The source is cut at its own
// keyframes into half-open ranges; each segment is upscaled on its own (by this process, by a
// Slurm array task, by any scheduler's task) into a work folder, and the segments are joined
// into the output without re-encoding, with audio, subtitles, chapters and metadata copied once
// from the source. The work folder is the whole state:
//
//   DIR/manifest.json        the plan: source fingerprint, the job's options and plan, the ranges
//   DIR/segments/00003.nut   segment 3: the upscaled video alone, on the source's timestamps
//   DIR/segments/00003.json  its record (frames, bytes, sha256), written after the segment
//
// A segment file is renamed into place only when complete, and counts only with its record, so
// a process killed at any point leaves nothing that a rerun would take for finished.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "upres/video.hpp"

namespace upres {

constexpr double kDefaultSegmentSeconds = 60;

struct Segment {
  int index = 0;
  VideoRange range;                           // in the source's video time base
  double start_seconds = 0, end_seconds = 0;  // from the file's start, for people
};

struct SegmentManifest {
  std::string work_dir;
  std::string source;  // absolute path
  int64_t source_bytes = 0;
  int64_t source_mtime_ns = 0;
  std::string source_sha256;
  double segment_seconds = kDefaultSegmentSeconds;
  VideoPlan plan;  // of the whole job; its options name the final output
  std::vector<Segment> segments;
};

enum class SegmentState { pending, done, broken };
const char* segment_state_name(SegmentState state);

struct SegmentStatus {
  Segment segment;
  SegmentState state = SegmentState::pending;
  int64_t frames = 0, bytes = 0;
  double seconds = 0;  // time it took
  std::string note;    // why it is broken
};

// The finished part of a job: segments, their frames and the seconds their runs took.
struct SegmentTotals {
  int done = 0;
  int64_t frames = 0;
  double seconds = 0;
  double fps_per_task() const { return seconds > 0 ? double(frames) / seconds : 0; }
};
SegmentTotals segment_totals(const std::vector<SegmentStatus>& status);

// Machine settings a segment task may set for itself (its backend, device and threads); they do
// not change what the job makes, so they do not invalidate a plan.
struct SegmentMachine {
  std::optional<std::string> backend;
  std::optional<int> device, threads;
};

// Makes the plan in `work_dir` (created if missing) or checks the one there: a different source
// or an option that changes the output gives Error(invalid_argument) naming it and saying to
// use a new folder or remove the old one. A new output path (same container) is recorded.
// --frames N ends the plan's range at the time of output frame N+1 (the audio is cut there too).
// `segment_seconds` 0: the plan's, or kDefaultSegmentSeconds for a new plan. With --fps or --cfr
// each segment fills the new rate's frames up to the next segment's first source frame, so the
// joined video has the single run's frames.
SegmentManifest prepare_segments(const VideoOptions& options, const std::string& work_dir,
                                 double segment_seconds = kDefaultSegmentSeconds);
// Reads the plan in `work_dir`; Error(not_found) when there is none.
SegmentManifest read_segment_manifest(const std::string& work_dir);

// Each segment's state. `verify` reads finished segments and checks their sha256 (else only
// their size is checked).
std::vector<SegmentStatus> segment_status(const SegmentManifest& manifest, bool verify);

// Upscales segment `index` into the work folder and records it (replacing a broken one).
VideoStats run_segment(const SegmentManifest& manifest, int index, const SegmentMachine& machine = {},
                       const VideoProgressCallback& progress = {}, const CancelToken* cancel = nullptr);

// Joins the finished segments into the plan's output (atomically). Throws Error(invalid_argument)
// listing the segments that are missing or broken. `overwrite` replaces an existing output.
// `cancel` stops it between packets (Error(cancelled)); nothing is left at the destination.
VideoStats join_segments(const SegmentManifest& manifest, bool overwrite,
                         const CancelToken* cancel = nullptr);

struct SegmentedStats {
  VideoStats stats;  // of the whole job: frames, output size and bytes, wall time
  int segments = 0;  // in the plan
  int reused = 0;    // found finished and kept
};

// The whole job in one process: plan (or check the plan), upscale the segments that are not
// finished, join. Progress counts frames over the whole job; reused segments count as done.
SegmentedStats run_segmented(const VideoOptions& options, const std::string& work_dir,
                             double segment_seconds = kDefaultSegmentSeconds,
                             const SegmentMachine& machine = {}, const VideoProgressCallback& progress = {},
                             const CancelToken* cancel = nullptr);

}  // namespace upres
