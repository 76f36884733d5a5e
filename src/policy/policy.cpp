#include "upres/policy.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "core/parse_fields.hpp"
#include "upres/error.hpp"
#include "upres/files.hpp"

namespace fs = std::filesystem;

namespace upres {
namespace {

// The containers upres writes. An extension not listed here is refused as an output.
struct VideoContainer {
  const char* extension;  // lower case, without the dot
  const char* muxer;      // FFmpeg's name for it
  const char* content_type;
  bool offered;  // a --format choice (.m4v is MP4 under another name)
};
constexpr VideoContainer kVideoContainers[] = {
    {"mp4", "mp4", "video/mp4", true},
    {"m4v", "mp4", "video/mp4", false},
    {"mkv", "matroska", "video/x-matroska", true},
    {"webm", "webm", "video/webm", true},
    {"mov", "mov", "video/quicktime", true},
};

// Containers read but not written: a folder run picks them up and writes .mp4.
constexpr const char* kReadOnlyVideoExtensions[] = {"avi", "ts",  "m2ts", "mts", "flv",
                                                    "wmv", "mpg", "mpeg", "ogv", "3gp"};

constexpr const char* kAudioOnlyExtensions[] = {"mp3", "m4a", "aac", "wav", "flac", "ogg", "opus", "wma"};

const VideoContainer* find_container(const std::string& path) {
  const std::string ext = lower_extension(path);
  for (const VideoContainer& c : kVideoContainers)
    if (ext == c.extension) return &c;
  return nullptr;
}

}  // namespace

std::string lower_extension(const std::string& path) {
  const auto slash = path.find_last_of('/');
  const auto dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot + 1);
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

bool is_video_output_path(const std::string& path) {
  return find_container(path) != nullptr;
}

const std::vector<std::string>& video_format_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> list;
    for (const VideoContainer& c : kVideoContainers)
      if (c.offered) list.push_back(c.extension);
    return list;
  }();
  return names;
}

std::string video_muxer_for_path(const std::string& path) {
  if (const VideoContainer* c = find_container(path)) return c->muxer;
  const std::string ext = lower_extension(path);
  if (ext == "gif")
    throw Error(
        ErrorCode::invalid_argument,
        fmt::format(
            "{}: GIF output is not supported (256 colours would undo the upscale); write .mp4 or .webm",
            path));
  for (const char* audio : kAudioOnlyExtensions)
    if (ext == audio)
      throw Error(
          ErrorCode::invalid_argument,
          fmt::format("{}: .{} is an audio-only format; an upscaled video needs .mp4, .mkv, .webm or .mov",
                      path, ext));
  throw Error(ErrorCode::invalid_argument,
              fmt::format("{}: unknown output container '.{}': use .mp4, .mkv, .webm or .mov", path, ext));
}

std::string video_output_extension(const std::string& path) {
  const VideoContainer* c = find_container(path);
  return std::string(".") + (c ? c->extension : "mp4");
}

bool is_video_input_path(const std::string& path) {
  if (is_video_output_path(path)) return true;
  const std::string ext = lower_extension(path);
  for (const char* e : kReadOnlyVideoExtensions)
    if (ext == e) return true;
  return false;
}

const char* video_content_type(const std::string& path) {
  const VideoContainer* c = find_container(path);
  return c ? c->content_type : "application/octet-stream";
}

const char* image_format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::png: return "png";
    case ImageFormat::jpeg: return "jpeg";
    case ImageFormat::webp: return "webp";
  }
  return "png";
}

ImageFormat image_format_from_name(const std::string& name) {
  if (name == "png") return ImageFormat::png;
  if (name == "jpeg" || name == "jpg") return ImageFormat::jpeg;
  if (name == "webp") return ImageFormat::webp;
  throw Error(ErrorCode::invalid_argument, fmt::format("format '{}' is not png, jpeg or webp", name));
}

const char* image_content_type(ImageFormat format) {
  switch (format) {
    case ImageFormat::png: return "image/png";
    case ImageFormat::jpeg: return "image/jpeg";
    case ImageFormat::webp: return "image/webp";
  }
  return "application/octet-stream";
}

std::string upscaled_file_name(const std::string& input, int scale, const std::string& extension,
                               const std::string& unnamed) {
  std::string stem = fs::path(input).stem().string();
  if (stem.empty()) stem = unnamed;
  return fmt::format("{}-upres-x{}{}", stem, scale, extension);
}

std::string upscaled_path_beside(const std::string& input, int scale, const std::string& extension) {
  return (fs::path(input).parent_path() / upscaled_file_name(input, scale, extension)).string();
}

std::string folder_output_path(const std::string& input, const std::string& output_dir,
                               const std::string& format) {
  fs::path out = fs::path(output_dir) / fs::path(input).filename();
  if (!format.empty()) out.replace_extension("." + format);
  return out.string();
}

std::string video_folder_output_path(const std::string& input, const std::string& output_dir,
                                     const std::string& format) {
  if (format.empty() && !is_video_output_path(input)) return folder_output_path(input, output_dir, "mp4");
  return folder_output_path(input, output_dir, format);
}

std::string output_exists_message(const std::string& shown, OverwriteSwitch how) {
  if (how == OverwriteSwitch::request_field)
    return fmt::format("output '{}' exists; pass \"overwrite\": true to replace it", shown);
  return fmt::format("{} exists; pass --overwrite to replace it", shown);
}

void refuse_existing_output(const std::string& output, bool overwrite, const std::string& shown,
                            OverwriteSwitch how) {
  std::error_code ec;
  if (!overwrite && fs::exists(output, ec))
    throw Error(ErrorCode::invalid_argument, output_exists_message(shown, how));
}

void check_output_path(const std::string& input, const std::string& output, bool overwrite,
                       const std::string& shown, OverwriteSwitch how) {
  refuse_overwriting_input(input, output);
  refuse_existing_output(output, overwrite, shown, how);
}

ProgressThrottle::ProgressThrottle(Clock::duration interval, std::function<Clock::time_point()> now)
    : interval_(interval), now_(std::move(now)) {}

bool ProgressThrottle::pass(bool final) {
  const Clock::time_point now = now_();
  if (sent_ && !final && now - last_ < interval_) return false;
  sent_ = true;
  last_ = now;
  return true;
}

ProgressThrottle::Clock::time_point ProgressThrottle::next_due() const {
  return sent_ ? last_ + interval_ : Clock::time_point{};
}

int64_t parse_quantity(const std::string& text, const std::string& option, int64_t base) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  std::string unit = end ? std::string(end) : "";
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b') && unit.size() == 2) unit.pop_back();
  const double b = double(base);
  const double mul = unit.empty()                 ? 1
                     : unit == "k" || unit == "K" ? b
                     : unit == "m" || unit == "M" ? b * b
                     : unit == "g" || unit == "G" ? b * b * b
                                                  : -1;
  if (end == text.c_str() || mul < 0 || !(v > 0) || !std::isfinite(v))
    throw Error(ErrorCode::invalid_argument, fmt::format("{} '{}' is not a quantity like {}", option, text,
                                                         base == 1000 ? "192k or 4M" : "512M or 4G"));
  if (v * mul >= 9.2e18)  // past int64_t: refused, not wrapped
    throw Error(ErrorCode::invalid_argument, fmt::format("{} '{}' is too large", option, text));
  return int64_t(v * mul);
}

std::pair<int, int> requested_output_size(const OutputSizeRequest& r, int w, int h, bool even) {
  const int forms = !r.resolution.empty() + (r.width != 0 || r.height != 0) + (r.scale != 0);
  if (forms > 1)
    throw Error(ErrorCode::invalid_argument,
                "give one output size: --resolution, -w/-h, or a scale (-s), not several");
  auto side = [&](double v) {
    const double rounded = even ? 2 * std::round(v / 2) : std::round(v);
    return int(std::clamp(rounded, 0.0, 1e9));
  };
  auto check = [&](const std::string& option, int64_t v) -> int {
    if (v < 16 || v > 65536)
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("{} gives a side of {} pixels; sides must be 16..65536", option, v));
    return int(v);
  };
  int tw = 0, th = 0;
  std::string option;
  if (!r.resolution.empty()) {
    option = "--resolution " + r.resolution;
    std::string text;
    for (char c : r.resolution) text += char(std::tolower(static_cast<unsigned char>(c)));
    // Digits only, parsed to 64 bits and checked: 4294967424 is refused, not wrapped to 128.
    constexpr int64_t kMaxTyped = INT64_MAX;
    if (const auto wh = parse_number_fields(text, "x", kMaxTyped)) {
      check(option, (*wh)[0]);
      check(option, (*wh)[1]);
      return {check(option, side(double((*wh)[0]))), check(option, side(double((*wh)[1])))};  // as typed
    }
    int short_side = 0;
    if (text == "4k")
      short_side = 2160;
    else if (text == "8k")
      short_side = 4320;
    else if (const auto p =
                 text.size() > 1 && text.back() == 'p'
                     ? parse_whole_number(std::string_view(text).substr(0, text.size() - 1), kMaxTyped)
                     : std::nullopt)
      short_side = check(option, *p);
    else
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("--resolution '{}' is not a size: use 720p, 1080p, 1440p, 2160p, 4k or WxH "
                              "(whole numbers)",
                              r.resolution));
    check(option, short_side);
    const double k = double(short_side) / std::min(w, h);
    tw = side(w * k);
    th = side(h * k);
  } else if (r.width != 0 || r.height != 0) {
    option = r.width != 0 ? fmt::format("-w {}", r.width) : fmt::format("-h {}", r.height);
    if (r.width != 0) check("-w", r.width);
    if (r.height != 0) check("-h", r.height);
    tw = r.width != 0 ? r.width : side(double(w) * r.height / h);
    th = r.height != 0 ? r.height : side(double(h) * r.width / w);
    if (even && r.width != 0) tw = side(tw);
    if (even && r.height != 0) th = side(th);
  } else if (r.scale != 0) {
    option = fmt::format("-s {}", r.scale);
    if (!(r.scale > 0 && r.scale <= 16))
      throw Error(ErrorCode::invalid_argument, fmt::format("-s {} is outside 0..16", r.scale));
    tw = side(w * r.scale);
    th = side(h * r.scale);
  } else {
    return {w, h};
  }
  return {check(option, tw), check(option, th)};
}

int model_scale_for(int w, int h, int target_w, int target_h) {
  const double ratio = std::max(double(target_w) / w, double(target_h) / h);
  for (int s : {2, 3, 4})
    if (s >= ratio - 1e-9) return s;
  return 4;
}

}  // namespace upres
