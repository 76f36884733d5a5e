// Video options from JSON (presets, server requests) and the built-in presets.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/json_input.hpp"
#include "media/av_common.hpp"
#include "upres/error.hpp"
#include "upres/policy.hpp"
#include "upres/video.hpp"

namespace upres {
namespace {

using json = nlohmann::json;

// Named option sets; users add their own as JSON files with the same keys. Anime presets use
// Real-ESRGAN's anime video models; live-action ones our own model (trained on photographs) or
// Real-ESRGAN's general model.
struct BuiltinPreset {
  const char* name;
  const char* description;
  const char* options;
};

const std::vector<BuiltinPreset>& builtin_presets() {
  static const std::vector<BuiltinPreset> presets = {
      {"anime-2x", "anime and cartoons at 2x (Real-ESRGAN anime video model), H.264 slow",
       R"({"model": "realesr-animevideov3-x2", "c:v": "libx264", "crf": 18, "preset": "slow"})"},
      {"anime-4x", "anime at 4x, 10-bit HEVC",
       R"({"model": "realesr-animevideov3-x4", "scale": 4, "c:v": "libx265", "crf": 20, "preset": "medium",
           "pix_fmt": "yuv420p10le"})"},
      {"anime-4k",
       "anime to 4K (2160p) from any size: the anime model at the scale that reaches it, 10-bit HEVC",
       R"({"model": "realesr-animevideov3", "resolution": "2160p", "c:v": "libx265", "crf": 20,
           "preset": "medium", "pix_fmt": "yuv420p10le"})"},
      {"live-2x", "live action at 2x, most faithful: our model in float32, H.264 slow",
       R"({"model": "upres-compact-x2", "precision": "f32", "c:v": "libx264", "crf": 18, "preset": "slow"})"},
      {"general-4x", "live action at 4x (Real-ESRGAN general model), H.264",
       R"({"model": "realesr-general-x4v3", "scale": 4, "c:v": "libx264", "crf": 18})"},
      {"fast-2x", "the quickest 2x: our compact model in int8, H.264 veryfast",
       R"({"model": "upres-compact-x2", "precision": "auto", "c:v": "libx264", "crf": 20,
           "preset": "veryfast"})"},
      {"archive-10bit", "live-action archive copy at 2x: our model in float32, 10-bit HEVC at high quality",
       R"({"model": "upres-compact-x2", "precision": "f32", "c:v": "libx265", "crf": 16, "preset": "slow",
           "pix_fmt": "yuv420p10le"})"},
      {"web", "live action at 2x for the web: H.264 with AAC audio, index first (plays while it loads)",
       R"({"model": "upres-compact-x2", "c:v": "libx264", "crf": 20, "preset": "medium", "c:a": "aac",
           "b:a": "160k"})"},
  };
  return presets;
}

std::string preset_dir() {
  if (const char* d = std::getenv("UPRES_PRESET_DIR")) return d;
  if (const char* x = std::getenv("XDG_CONFIG_HOME")) return std::string(x) + "/upres/presets";
  if (const char* h = std::getenv("HOME")) return std::string(h) + "/.config/upres/presets";
  return "";
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(ErrorCode::not_found, fmt::format("{}: cannot read the preset file", path));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::vector<std::string> video_preset_names() {
  std::vector<std::string> names;
  for (const BuiltinPreset& p : builtin_presets()) names.push_back(p.name);
  std::error_code ec;
  const std::string dir = preset_dir();
  if (!dir.empty())
    for (const auto& e : std::filesystem::directory_iterator(dir, ec))
      if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  return names;
}

std::string video_preset_json(const std::string& name) {
  if (name.size() > 5 && name.substr(name.size() - 5) == ".json") return read_text(name);
  const std::string dir = preset_dir();
  std::error_code ec;
  if (!dir.empty() && std::filesystem::exists(dir + "/" + name + ".json", ec))
    return read_text(dir + "/" + name + ".json");
  for (const BuiltinPreset& p : builtin_presets())
    if (p.name == name) return p.options;
  std::string known;
  for (const auto& n : video_preset_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error(ErrorCode::not_found, fmt::format("no preset '{}'; known presets: {}", name, known));
}

std::string video_preset_description(const std::string& name) {
  const std::string dir = preset_dir();
  std::error_code ec;
  if (!dir.empty() && std::filesystem::exists(dir + "/" + name + ".json", ec))
    return "yours: " + dir + "/" + name + ".json";
  for (const BuiltinPreset& p : builtin_presets())
    if (p.name == name) return p.description;
  return "";
}

VideoOptions video_options_from_json(const std::string& json_text, const VideoOptions& base,
                                     const std::string& source) {
  const json j = parse_outside_json(json_text, source);
  if (!j.is_object())
    throw Error(ErrorCode::invalid_argument,
                fmt::format("{} must be a JSON object, not {}", source, json_type_words(j)));
  VideoOptions o = base;
  // A scale or size given here replaces any the base had (typed options over a preset's).
  for (const char* key : {"scale", "resolution", "width", "height"})
    if (j.contains(key)) {
      o.engine.scale = 0;
      o.size = {};
    }
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const json& v = it.value();
    auto bad = [&](const char* what) {
      return Error(ErrorCode::invalid_argument,
                   fmt::format("option '{}' must be {} (got {})", key, what, json_brief(v)));
    };
    auto str = [&]() -> std::string {
      if (!v.is_string()) throw bad("a string");
      return v.get<std::string>();
    };
    auto integer = [&]() -> int64_t {
      if (!v.is_number_integer()) throw bad("an integer");
      if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)) throw bad("a smaller integer");
      return v.get<int64_t>();
    };
    // Options held in an int: values past its range are refused here, before they could wrap
    // around into a valid-looking number; the real range is checked when the job is prepared.
    auto small_integer = [&]() -> int {
      const int64_t n = integer();
      if (n < INT32_MIN || n > INT32_MAX) throw bad("an integer of a sensible size");
      return int(n);
    };
    auto number = [&]() -> double {
      if (!v.is_number()) throw bad("a number");
      return v.get<double>();
    };
    auto boolean = [&]() -> bool {
      if (!v.is_boolean()) throw bad("true or false");
      return v.get<bool>();
    };
    auto seconds = [&]() -> double { return v.is_number() ? number() : parse_timestamp(str(), key); };
    auto quantity = [&](int64_t unit) -> int64_t {
      return v.is_number_integer() ? integer() : parse_quantity(str(), key, unit);
    };
    if (key == "input")
      o.input = str();
    else if (key == "output")
      o.output = str();
    else if (key == "overwrite")
      o.overwrite = boolean();
    else if (key == "model")
      o.model = str();
    else if (key == "mode")
      o.mode = str();
    else if (key == "scale") {
      // A whole scale picks a model; one that is not whole (1.5) is an output size.
      const double scale = v.is_number_integer() ? double(small_integer()) : number();
      if (scale == std::floor(scale) && std::abs(scale) < 1e6) {
        o.engine.scale = int(scale);
        o.size.scale = 0;
      } else {
        o.size.scale = scale;
        o.engine.scale = 0;
      }
    } else if (key == "resolution")
      o.size.resolution = str();
    else if (key == "width")
      o.size.width = small_integer();
    else if (key == "height")
      o.size.height = small_integer();
    else if (key == "backend") {
      o.engine.backend = str();
      check_backend_name(o.engine.backend);
    } else if (key == "device")
      o.engine.device = small_integer();
    else if (key == "precision")
      o.engine.precision = precision_from_name(str());
    else if (key == "threads")
      o.engine.threads = small_integer();
    else if (key == "tile")
      o.engine.tile = small_integer();
    else if (key == "tile_overlap")
      o.engine.tile_overlap = small_integer();
    else if (key == "max_memory")
      o.engine.max_memory = quantity(1024);
    else if (key == "max_size")
      o.max_output_side = small_integer();
    else if (key == "crop")
      o.crop = str();
    else if (key == "rotate")
      o.rotate = small_integer();
    else if (key == "hflip")
      o.hflip = boolean();
    else if (key == "vflip")
      o.vflip = boolean();
    else if (key == "ss")
      o.start = seconds();
    else if (key == "t")
      o.duration = seconds();
    else if (key == "frames")
      o.max_frames = integer();
    else if (key == "fps")
      o.fps = number();
    else if (key == "cfr")
      o.cfr = boolean();
    else if (key == "hwaccel")
      o.hwaccel = str();
    else if (key == "c:v" || key == "video_codec")
      o.video_codec = str();
    else if (key == "crf")
      o.crf = small_integer();
    else if (key == "b:v" || key == "video_bitrate")
      o.video_bitrate = quantity(1000);
    else if (key == "preset" || key == "encoder_preset")
      o.preset = str();
    else if (key == "pix_fmt")
      o.pix_fmt = str();
    else if (key == "g" || key == "gop")
      o.gop = small_integer();
    else if (key == "c:a" || key == "audio_codec")
      o.audio_codec = str();
    else if (key == "b:a" || key == "audio_bitrate")
      o.audio_bitrate = quantity(1000);
    else if (key == "volume")
      o.volume = number();
    else if (key == "tta")
      o.engine.tta = boolean();
    else if (key == "normalize")
      o.normalize = boolean();
    else if (key == "no_audio")
      o.no_audio = boolean();
    else if (key == "no_subtitles")
      o.no_subtitles = boolean();
    else if (key == "audio_tracks") {
      o.audio_tracks.clear();
      if (!v.is_array()) throw bad("an array of audio track numbers");
      for (const json& t : v) {
        if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > kMaxAudioTrack)
          throw bad(fmt::format("an array of audio track numbers 0..{}", kMaxAudioTrack).c_str());
        o.audio_tracks.push_back(t.get<int>());
      }
    } else if (key == "queue_depth") {
      o.queue_depth = small_integer();
    } else if (key == "range") {
      // {"begin": pts or null, "end": pts or null}, in the source's video time base.
      if (!v.is_object()) throw bad("an object with begin and end");
      o.range = {};
      for (auto e = v.begin(); e != v.end(); ++e) {
        if (e.key() != "begin" && e.key() != "end") throw bad("an object with begin and end");
        if (e.value().is_null()) continue;
        if (!e.value().is_number_integer()) throw bad("an object of integer timestamps (or null)");
        (e.key() == "begin" ? o.range.begin : o.range.end) = e.value().get<int64_t>();
      }
    } else if (key == "sink") {
      const std::string name = str();
      if (name == "file")
        o.sink = VideoSinkKind::file;
      else if (name == "video_segment")
        o.sink = VideoSinkKind::video_segment;
      else
        throw bad("file or video_segment");
    } else {
      throw Error(ErrorCode::invalid_argument, fmt::format("unknown option '{}'", key));
    }
  }
  return o;
}

}  // namespace upres
