// upres: upscale videos.
//
//   upres::VideoOptions options;
//   options.input = "in.mp4";
//   options.output = "out.mp4";
//   upres::VideoJob job(options);
//   upres::VideoPlan plan = job.validate();     // opens everything, throws on any problem
//   upres::VideoStats stats = job.run([](const upres::VideoProgress& p) { ... });
//
// A job decodes, filters (crop, rotate, flip, trim, frame rate), converts to float RGB, runs the
// model, converts back and encodes, each stage on its own thread over a fixed pool of frame
// buffers. Audio, subtitles and metadata are copied unless asked otherwise. The output is
// written to a temporary file beside the destination and renamed when complete.
#pragma once

#include <atomic>
#include <climits>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "upres/model.hpp"
#include "upres/policy.hpp"
#include "upres/upscaler.hpp"

namespace upres {

// A half-open span [begin, end) of the source's timeline, in its video stream's time base (pts
// values). A frame belongs to it when begin <= pts < end; a packet of another stream when its
// presentation time does, so consecutive ranges hold every frame and every packet exactly once.
struct VideoRange {
  int64_t begin = INT64_MIN;
  int64_t end = INT64_MAX;
  bool whole() const { return begin == INT64_MIN && end == INT64_MAX; }
  bool contains(int64_t pts) const { return pts >= begin && pts < end; }
  bool operator==(const VideoRange& o) const { return begin == o.begin && end == o.end; }
};

// Where a job's output goes: a whole file (the video, with audio, subtitles and metadata copied,
// timestamps from zero), or a video-only segment that keeps the source's timestamps, to be joined
// with its neighbours (the audio is then copied once from the source).
enum class VideoSinkKind { file, video_segment };
const char* video_sink_name(VideoSinkKind kind);

struct VideoOptions {
  std::string input, output;
  bool overwrite = false;

  // Model: a zoo name or .param path; "" picks default_model_for_scale (upres-compact-x2 for 2x).
  std::string model;
  // Frame's modes: "none" (no upscaling, filters and re-encode only), "esrgan-2x", "esrgan-4x";
  // "" when model/scale say what to do.
  std::string mode;
  UpscaleOptions engine;  // backend, threads, tiles, memory budget, requested scale
  // An output size instead of a whole scale (--resolution, -w/-h, -s 1.5): the model runs at the
  // zoo scale that reaches it and a Lanczos resample gives the exact size (even sides).
  OutputSizeRequest size;
  int max_output_side = 4096;  // refuse larger outputs before any work

  // Filters, applied before upscaling.
  std::string crop;  // WxH+X+Y
  int rotate = 0;    // clockwise: 0, 90, 180, 270
  bool hflip = false, vflip = false;
  double start = 0;        // seconds (--ss)
  double duration = 0;     // seconds (-t); 0: to the end
  VideoRange range;        // exact span of the source; when set, start and duration must be 0
  int64_t max_frames = 0;  // stop after this many frames; 0: all
  double fps = 0;          // constant output frame rate; 0: keep source timing
  bool cfr = false;        // constant frame rate at the source's average rate
  std::string hwaccel;     // "", none, auto, cuda, vaapi

  // Video encoder; "": libx264, or libvpx-vp9 for webm.
  std::string video_codec;
  int crf = -1;
  int64_t video_bitrate = 0;
  std::string preset;
  std::string pix_fmt;
  int gop = 0;

  // Audio and subtitles.
  std::string audio_codec = "copy";
  int64_t audio_bitrate = 0;
  double volume = 100;  // percent
  bool normalize = false;
  std::vector<int> audio_tracks;  // audio stream ordinals to keep (0 = first audio); empty: all
  bool no_audio = false;
  bool no_subtitles = false;

  int queue_depth = 4;  // frame buffers in flight (>= 2); fewer when they would pass 1 GiB

  VideoSinkKind sink = VideoSinkKind::file;
};

// The options as JSON, in the keys video_options_from_json reads (a round trip gives them back).
std::string video_options_json(const VideoOptions& options);

// Limits of the numbers in VideoOptions, checked by VideoJob::validate and run (with those of
// UpscaleOptions, see check_upscale_options). crf's range depends on the encoder.
constexpr int kMaxAudioTrack = 1023;
constexpr int64_t kMaxFrames = 1'000'000'000;
constexpr double kMaxFps = 1000;
constexpr double kMaxSeconds = 1e8;  // --ss and -t
constexpr int kMaxGop = 100'000;
constexpr int64_t kMinBitrate = 1000, kMaxVideoBitrate = 2'000'000'000, kMaxAudioBitrate = 4'000'000;
constexpr double kMaxVolumePercent = 1000;

// Reads options from a JSON object (a preset file, a server request) on top of `base`. Keys
// are the CLI's long names (model, scale, crf, preset, "c:v", "b:a", audio_tracks, ...);
// unknown keys, wrong types and text that is not JSON (or nests deeper than 64 levels) throw
// Error(invalid_argument) naming the key or `source`.
VideoOptions video_options_from_json(const std::string& json_text, const VideoOptions& base = {},
                                     const std::string& source = "the options");

// Named option sets: built-in ones (see video_preset_names) and *.json files in
// $UPRES_PRESET_DIR or ~/.config/upres/presets. A name ending in .json is read as a file.
std::string video_preset_json(const std::string& name);
std::vector<std::string> video_preset_names();
// What a preset is for, in a line ("" for an unknown name).
std::string video_preset_description(const std::string& name);

enum class VideoPhase { starting, upscaling, finishing, done };
const char* video_phase_name(VideoPhase phase);

struct VideoProgress {
  VideoPhase phase = VideoPhase::starting;
  int64_t frames_done = 0;
  int64_t frames_total = 0;  // an estimate from the container; 0 when unknown
  double fps = 0;
  double eta_seconds = -1;  // -1: unknown
  double elapsed_seconds = 0;
  double fraction = 0;  // 0..1 across the three phases (starting 0-5 %, upscaling 5-90 %, finishing)
  // A segmented job (upres/segments.hpp): segments in all, finished, and found finished by an
  // earlier run and reused; 0 for a single run.
  int segments_total = 0, segments_done = 0, segments_reused = 0;
};

struct StreamPlan {
  int index = 0;     // in the input
  std::string type;  // video, audio, subtitle, data, attachment
  std::string codec;
  std::string action;  // upscale, copy, encode <codec>, drop
  std::string note;    // why, for drops and conversions
};

// What a job will do, decided once by plan_video (or VideoJob::validate) and carried out by run:
// the options it was made from, the source's range and every choice made for them.
struct VideoPlan {
  VideoOptions options;
  VideoRange range;                       // the span of the source that is upscaled, in its video time base
  int input_width = 0, input_height = 0;  // as decoded
  int filtered_width = 0, filtered_height = 0;  // after rotation and crop
  int output_width = 0, output_height = 0;
  std::string model;      // "" for mode none
  std::string precision;  // f32, f16 or int8 (--precision auto resolved); "" for mode none
  std::string backend;    // the backend that runs the model (--backend auto resolved); "" for mode none
  int scale = 1;
  std::string container, encoder, pixel_format, filters, hwaccel;
  double duration_seconds = 0;
  int64_t frames = 0;  // estimate
  double frame_rate = 0;
  // From timed runs of the model on a strip of the frame's width: the median, and the fastest
  // and slowest runs' (the machine's own spread); 0 unknown.
  double estimated_seconds = 0;
  double estimated_seconds_low = 0, estimated_seconds_high = 0;
  std::vector<StreamPlan> streams;
  std::vector<std::string> warnings;
};

struct VideoStats {
  int64_t frames = 0;
  int output_width = 0, output_height = 0;
  double seconds = 0;  // wall time of run()
  double fps = 0;
  double inference_seconds = 0;  // time inside the model, summed over frames
  int64_t output_bytes = 0;
  int damaged_packets = 0;
  // The input was damaged or ended before the time it declares (a warning says where): the
  // output holds what could be read. Folder runs list such files.
  bool input_incomplete = false;
  std::vector<std::string> warnings;
};

class CancelToken {
 public:
  void cancel() { flag_.store(true); }
  bool cancelled() const { return flag_.load(); }

 private:
  std::atomic<bool> flag_{false};
};

using VideoProgressCallback = std::function<void(const VideoProgress&)>;

class VideoJob {
 public:
  // `model`, when given, is shared (a server keeps one loaded); otherwise the job loads its own.
  explicit VideoJob(VideoOptions options, std::shared_ptr<const Model> model = nullptr);
  // A job that carries out a plan made earlier: run() opens what the plan names and follows its
  // choices; it refuses a source that no longer matches the plan.
  explicit VideoJob(const VideoPlan& plan, std::shared_ptr<const Model> model = nullptr);
  ~VideoJob();
  VideoJob(const VideoJob&) = delete;
  VideoJob& operator=(const VideoJob&) = delete;

  // Checks everything that can be checked before work starts: the input opens and decodes,
  // the options make sense, the model exists, the encoder and container take the streams, the
  // output is writable and within the size cap. Writes nothing. Throws upres::Error. A later run()
  // follows this plan.
  VideoPlan validate();

  // Runs the job. The callback is called from the pipeline's threads, one call at a time. On
  // cancel or failure the partial output is removed and Error(cancelled) or the cause thrown.
  VideoStats run(const VideoProgressCallback& progress = {}, const CancelToken* cancel = nullptr);

  const VideoOptions& options() const { return options_; }

 private:
  struct Impl;
  VideoOptions options_;
  std::shared_ptr<const Model> model_;
  std::unique_ptr<VideoPlan> plan_;  // once validated, or when made from a plan
  std::unique_ptr<Impl> impl_;
};

// Checks everything that can be checked before work starts and decides what the job will do
// (see VideoJob::validate). The plan can be kept as JSON and run later by VideoJob(plan).
VideoPlan plan_video(const VideoOptions& options, std::shared_ptr<const Model> model = nullptr);

// The plan as JSON (one schema for the CLI's probe, the server and MCP), and back. Reading
// throws Error(invalid_argument) naming a missing or mistyped key.
std::string video_plan_json(const VideoPlan& plan);
VideoPlan video_plan_from_json(const std::string& json_text);

// The streams of a file as they are (action empty; the note describes each), for a plan that
// was refused. Throws Error(invalid_media) when it cannot be opened.
std::vector<StreamPlan> list_streams(const std::string& input);

// The model a job will use for these options ("" for mode none); throws on a bad mode.
std::string video_model_name(const VideoOptions& options);

}  // namespace upres
