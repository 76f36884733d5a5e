// VideoPlan and VideoOptions as JSON: the one schema the CLI (`upres probe --json`), the HTTP
// service, MCP and saved plans share.
#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "core/json_input.hpp"
#include "upres/error.hpp"
#include "upres/video.hpp"

namespace upres {
namespace {

using json = nlohmann::json;

json range_json(const VideoRange& r) {
  return {{"begin", r.begin == INT64_MIN ? json(nullptr) : json(r.begin)},
          {"end", r.end == INT64_MAX ? json(nullptr) : json(r.end)}};
}

// Reads a plan's fields, naming the key that is missing or of the wrong type.
class Reader {
 public:
  Reader(const json& j, std::string where) : j_(j), where_(std::move(where)) {}
  const json& at(const char* key) const {
    if (!j_.is_object() || !j_.contains(key))
      throw Error(ErrorCode::invalid_argument, fmt::format("{} has no '{}'", where_, key));
    return j_.at(key);
  }
  template <class T>
  T get(const char* key) const {
    try {
      return at(key).get<T>();
    } catch (const json::exception&) {
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("'{}' in {} has the wrong type ({})", key, where_, json_brief(at(key))));
    }
  }
  int64_t bound(const char* key, int64_t open) const { return at(key).is_null() ? open : get<int64_t>(key); }
  // A key that plans written by older versions lack.
  template <class T>
  T get_or(const char* key, T missing) const {
    return j_.is_object() && j_.contains(key) ? get<T>(key) : missing;
  }

 private:
  const json& j_;
  std::string where_;
};

}  // namespace

std::string video_options_json(const VideoOptions& o) {
  const UpscaleOptions& e = o.engine;
  json j{{"input", o.input},
         {"output", o.output},
         {"overwrite", o.overwrite},
         {"model", o.model},
         {"mode", o.mode},
         {"scale", o.size.scale != 0 ? json(o.size.scale) : json(e.scale)},
         {"tta", e.tta},
         {"resolution", o.size.resolution},
         {"width", o.size.width},
         {"height", o.size.height},
         {"backend", e.backend},
         {"device", e.device},
         {"precision", precision_name(e.precision)},
         {"threads", e.threads},
         {"tile", e.tile},
         {"tile_overlap", e.tile_overlap},
         {"max_memory", e.max_memory},
         {"max_size", o.max_output_side},
         {"crop", o.crop},
         {"rotate", o.rotate},
         {"hflip", o.hflip},
         {"vflip", o.vflip},
         {"ss", o.start},
         {"t", o.duration},
         {"range", range_json(o.range)},
         {"frames", o.max_frames},
         {"fps", o.fps},
         {"cfr", o.cfr},
         {"hwaccel", o.hwaccel},
         {"c:v", o.video_codec},
         {"crf", o.crf},
         {"b:v", o.video_bitrate},
         {"preset", o.preset},
         {"pix_fmt", o.pix_fmt},
         {"g", o.gop},
         {"c:a", o.audio_codec},
         {"b:a", o.audio_bitrate},
         {"volume", o.volume},
         {"normalize", o.normalize},
         {"audio_tracks", o.audio_tracks},
         {"no_audio", o.no_audio},
         {"no_subtitles", o.no_subtitles},
         {"queue_depth", o.queue_depth},
         {"sink", video_sink_name(o.sink)}};
  return json_text(j);
}

std::string video_plan_json(const VideoPlan& p) {
  json streams = json::array();
  for (const StreamPlan& s : p.streams)
    streams.push_back(
        {{"index", s.index}, {"type", s.type}, {"codec", s.codec}, {"action", s.action}, {"note", s.note}});
  const json j{{"input_width", p.input_width},
               {"input_height", p.input_height},
               {"filtered_width", p.filtered_width},
               {"filtered_height", p.filtered_height},
               {"output_width", p.output_width},
               {"output_height", p.output_height},
               {"model", p.model},
               {"precision", p.precision},
               {"backend", p.backend},
               {"scale", p.scale},
               {"container", p.container},
               {"encoder", p.encoder},
               {"pixel_format", p.pixel_format},
               {"filters", p.filters},
               {"hwaccel", p.hwaccel},
               {"duration_seconds", p.duration_seconds},
               {"frames", p.frames},
               {"frame_rate", p.frame_rate},
               {"estimated_seconds", p.estimated_seconds},
               {"estimated_seconds_low", p.estimated_seconds_low},
               {"estimated_seconds_high", p.estimated_seconds_high},
               {"range", range_json(p.range)},
               {"streams", streams},
               {"warnings", p.warnings},
               {"options", json::parse(video_options_json(p.options))}};
  return json_text(j);
}

VideoPlan video_plan_from_json(const std::string& text) {
  const json j = parse_outside_json(text, "the plan");
  const Reader r(j, "the plan");
  VideoPlan p;
  p.input_width = r.get<int>("input_width");
  p.input_height = r.get<int>("input_height");
  p.filtered_width = r.get<int>("filtered_width");
  p.filtered_height = r.get<int>("filtered_height");
  p.output_width = r.get<int>("output_width");
  p.output_height = r.get<int>("output_height");
  p.model = r.get<std::string>("model");
  p.precision = r.get<std::string>("precision");
  p.backend = r.get<std::string>("backend");
  p.scale = r.get<int>("scale");
  p.container = r.get<std::string>("container");
  p.encoder = r.get<std::string>("encoder");
  p.pixel_format = r.get<std::string>("pixel_format");
  p.filters = r.get<std::string>("filters");
  p.hwaccel = r.get<std::string>("hwaccel");
  p.duration_seconds = r.get<double>("duration_seconds");
  p.frames = r.get<int64_t>("frames");
  p.frame_rate = r.get<double>("frame_rate");
  p.estimated_seconds = r.get<double>("estimated_seconds");
  p.estimated_seconds_low = r.get_or<double>("estimated_seconds_low", p.estimated_seconds);
  p.estimated_seconds_high = r.get_or<double>("estimated_seconds_high", p.estimated_seconds);
  const Reader range(r.at("range"), "the plan's range");
  p.range = {range.bound("begin", INT64_MIN), range.bound("end", INT64_MAX)};
  for (const json& s : r.at("streams")) {
    const Reader sr(s, "a stream of the plan");
    p.streams.push_back({sr.get<int>("index"), sr.get<std::string>("type"), sr.get<std::string>("codec"),
                         sr.get<std::string>("action"), sr.get<std::string>("note")});
  }
  p.warnings = r.get<std::vector<std::string>>("warnings");
  if (!r.at("options").is_object())
    throw Error(ErrorCode::invalid_argument, "'options' in the plan must be an object");
  p.options = video_options_from_json(json_text(r.at("options")), {}, "the plan's options");
  return p;
}

}  // namespace upres
