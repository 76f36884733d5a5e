// upres: the rules every front end applies the same way.
//
// The CLI, the HTTP service and the MCP server each take requests in their own form, but what a
// request means is decided here, once: which files are videos and which containers upres writes,
// what an output is called when the user names none, when an existing file may be replaced, how
// often progress is reported, and the version they all report.
//
//   std::string out = upscaled_path_beside("clips/Show.MKV", 2, video_output_extension("clips/Show.MKV"));
//   // "clips/Show-upres-x2.mkv"
//   check_output_path(input, out, overwrite, out, OverwriteSwitch::cli_flag);  // before any work
//
//   ProgressThrottle throttle;  // kProgressInterval, 500 ms
//   job.run([&](const VideoProgress& p) {
//     if (throttle.pass(p.phase == VideoPhase::done)) report(p);  // the end always goes out
//   });
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "upres/image.hpp"
#include "upres/version.hpp"

namespace upres {

// ---- video containers ---------------------------------------------------------------------------

// The last extension of the file name, lower case, without its dot; "" when it has none. A name
// that is all extension (".mp4") counts as one, as FFmpeg sees it.
std::string lower_extension(const std::string& path);

// True when upres writes this file name's container (the extension, in any case): .mp4 and .m4v
// (MP4), .mkv (Matroska), .webm and .mov.
bool is_video_output_path(const std::string& path);

// The container names a user may pick for outputs (`--format`): mp4, mkv, webm, mov.
const std::vector<std::string>& video_format_names();

// The FFmpeg muxer for an output's file name: "mp4", "mov", "matroska" or "webm". Throws
// Error(invalid_argument) naming `path` and what to write instead for GIF, audio-only formats and
// unknown extensions.
std::string video_muxer_for_path(const std::string& path);

// The extension, lower case with its dot, that an upscaled copy of `path` gets: the path's own when
// upres writes that container, else ".mp4" (an .avi or a .ts input becomes MP4).
std::string video_output_extension(const std::string& path);

// True for the extensions taken as videos when a folder is upscaled: every container upres writes
// and common ones it only reads (.avi, .ts, .m2ts, .mts, .flv, .wmv, .mpg, .mpeg, .ogv, .3gp).
bool is_video_input_path(const std::string& path);

// The Content-Type of a video download ("video/mp4", "video/x-matroska", "video/webm",
// "video/quicktime"); "application/octet-stream" for a name upres does not write.
const char* video_content_type(const std::string& path);

// ---- image formats as requests name them ------------------------------------------------------

// "png", "jpeg" or "webp".
const char* image_format_name(ImageFormat format);
// "png", "jpeg" (or "jpg") or "webp"; throws Error(invalid_argument) "format 'NAME' is not png,
// jpeg or webp" for anything else.
ImageFormat image_format_from_name(const std::string& name);
// "image/png", "image/jpeg" or "image/webp".
const char* image_content_type(ImageFormat format);

// ---- output names -------------------------------------------------------------------------------

// "<stem>-upres-x<scale><extension>": the file name of an upscaled copy of `input`, its folder
// dropped ("clips/show.mkv", 2, ".mkv" -> "show-upres-x2.mkv"). The stem is the input's file name
// without its last extension, kept byte for byte ("a.b.mp4" -> "a.b", ".hidden" -> ".hidden");
// an input with no file name ("", "clips/") takes `unnamed` instead.
std::string upscaled_file_name(const std::string& input, int scale, const std::string& extension,
                               const std::string& unnamed = "output");

// upscaled_file_name() in the input's own folder: where a result goes when the user names no
// output ("clips/show.mkv", 2, ".mkv" -> "clips/show-upres-x2.mkv").
std::string upscaled_path_beside(const std::string& input, int scale, const std::string& extension);

// Where a folder run writes `input`: the same file name inside `output_dir`, with the extension
// replaced by ".<format>" when a format is given.
std::string folder_output_path(const std::string& input, const std::string& output_dir,
                               const std::string& format);
// folder_output_path() for videos: without a format, an input in a container upres does not
// write (.avi, .ts, ...) becomes .mp4.
std::string video_folder_output_path(const std::string& input, const std::string& output_dir,
                                     const std::string& format);

// ---- output size --------------------------------------------------------------------------------

// An output size asked for instead of a whole scale. At most one form: a resolution, a width
// and/or height, or a fractional scale.
struct OutputSizeRequest {
  // "480p", "720p", "1080p", "1440p", "2160p" (any Np), "4k", "8k": the short side, the long one
  // keeping the aspect (so a portrait phone video at 1080p is 1080 wide); or "WxH" exactly.
  std::string resolution;
  int width = 0, height = 0;  // one alone keeps the aspect
  double scale = 0;           // a scale that is not whole (1.5); whole ones pick a model instead
  bool empty() const { return resolution.empty() && width == 0 && height == 0 && scale == 0; }
};

// The exact output size for a w x h picture; with `even`, sides rounded to even numbers (4:2:0
// video needs them). Throws Error(invalid_argument) naming the option for a malformed, mixed or
// out-of-range request (sides 16..65536).
std::pair<int, int> requested_output_size(const OutputSizeRequest& request, int w, int h, bool even);

// The zoo scale (2, 3 or 4) that takes a w x h picture to at least target_w x target_h: the
// smallest one that reaches it, or 4 beyond that (a resample does the rest).
int model_scale_for(int w, int h, int target_w, int target_h);

// ---- replacing files ----------------------------------------------------------------------------

// How a front end's user asks to replace an existing output, for the message that says so.
enum class OverwriteSwitch {
  cli_flag,       // "OUT exists; pass --overwrite to replace it"
  request_field,  // "output 'OUT' exists; pass "overwrite": true to replace it" (MCP arguments)
};

// The message for an output that exists and may not be replaced; `shown` is the output as the
// user should read it.
std::string output_exists_message(const std::string& shown, OverwriteSwitch how);

// Throws Error(invalid_argument) with output_exists_message() when `output` exists and
// `overwrite` is false.
void refuse_existing_output(const std::string& output, bool overwrite, const std::string& shown,
                            OverwriteSwitch how);

// Every check on a destination, done before any work: never the input itself, with or without
// `overwrite` (see refuse_overwriting_input), and never an existing file unless `overwrite`.
void check_output_path(const std::string& input, const std::string& output, bool overwrite,
                       const std::string& shown, OverwriteSwitch how);

// ---- progress -----------------------------------------------------------------------------------

// Progress reports (server-sent events, MCP notifications, `--progress json`) go out at most this
// often.
constexpr std::chrono::milliseconds kProgressInterval{500};

// Decides which progress reports go out. The first report always passes, and so does every final
// one (the end of a job, or whatever else the caller must not hold back), at once; others pass
// only when `interval` has gone by since the last report that passed. Not thread-safe: one
// throttle per stream of reports.
class ProgressThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  // `now` is the clock (tests pass their own).
  explicit ProgressThrottle(Clock::duration interval = kProgressInterval,
                            std::function<Clock::time_point()> now = &Clock::now);

  // True when this report should go out; it then counts as sent.
  bool pass(bool final = false);
  // When a report that is not final may pass next (the past when one may pass now).
  Clock::time_point next_due() const;
  Clock::duration interval() const { return interval_; }

 private:
  Clock::duration interval_;
  std::function<Clock::time_point()> now_;
  bool sent_ = false;
  Clock::time_point last_{};
};

// "192k", "4M", "2500000" -> a count; K/M/G are powers of `base` (1000 for bit rates, 1024 for
// memory). Throws Error(invalid_argument) naming `option`.
int64_t parse_quantity(const std::string& text, const std::string& option, int64_t base);

}  // namespace upres
