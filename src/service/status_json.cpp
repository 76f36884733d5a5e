#include "service/status_json.hpp"

#include <cmath>
#include <filesystem>
#include <new>

#include <fmt/format.h>

namespace upres {

using nlohmann::json;

const char* error_code_for(const std::exception& failure) {
  if (const auto* error = dynamic_cast<const Error*>(&failure)) return error_code_name(error->code());
  if (dynamic_cast<const std::bad_alloc*>(&failure)) return error_code_name(ErrorCode::limit_exceeded);
  return kInternalErrorCode;
}

json error_object(const std::string& code, const std::string& message) {
  return {{"code", code}, {"message", message}};
}

json error_json(const std::string& code, const std::string& message) {
  return {{"error", error_object(code, message)}};
}

json stream_error_json(const std::string& code, const std::string& message) {
  json j = error_object(code, message);
  j["type"] = "error";
  return j;
}

json progress_json(const VideoProgress& p) {
  return {{"phase", video_phase_name(p.phase)},
          {"frame", p.frames_done},
          {"frames_total", p.frames_total},
          {"fps", std::round(p.fps * 100) / 100},
          {"eta_seconds", p.eta_seconds < 0 ? json(nullptr) : json(std::round(p.eta_seconds * 10) / 10)},
          {"elapsed_seconds", std::round(p.elapsed_seconds * 10) / 10},
          {"fraction", std::round(p.fraction * 1000) / 1000}};
}

json job_status_json(const JobStatus& st) {
  json j = {{"id", st.id},
            {"kind", "video"},
            {"state", job_state_name(st.state)},
            {"cancel_requested", st.cancel_requested},
            {"queue_position", st.state == JobState::queued ? json(st.queue_position) : json(nullptr)},
            {"progress", progress_json(st.progress)},
            {"input", st.input_name},
            {"output", st.output_name.empty() ? json(nullptr) : json(st.output_name)},
            {"download", "/v1/jobs/" + st.id + "/output"},
            {"download_name", st.download_name},
            {"created_unix_ms", st.created_unix_ms},
            {"finished_unix_ms", st.finished_unix_ms ? json(st.finished_unix_ms) : json(nullptr)}};
  // The one schema (src/pipeline/video_plan_json.cpp), less the options: they name this
  // machine's folders, which clients do not see.
  j["plan"] = json::parse(video_plan_json(st.plan));
  j["plan"].erase("options");
  if (st.state == JobState::succeeded) {
    const VideoStats& s = st.stats;
    j["result"] = {{"frames", s.frames},
                   {"width", s.output_width},
                   {"height", s.output_height},
                   {"seconds", s.seconds},
                   {"fps", s.fps},
                   {"bytes", s.output_bytes},
                   {"damaged_packets", s.damaged_packets},
                   {"warnings", s.warnings}};
  }
  if (st.state == JobState::failed || st.state == JobState::cancelled)
    j["error"] = error_object(st.error_code, st.error_message);
  return j;
}

json job_progress_json(const JobStatus& st) {
  json j = progress_json(st.progress);
  j["id"] = st.id;
  j["state"] = job_state_name(st.state);
  if (st.state == JobState::queued) j["queue_position"] = st.queue_position;
  j["cancel_requested"] = st.cancel_requested;
  return j;
}

json models_json() {
  json list = json::array();
  for (const ModelInfo& m : model_zoo()) {
    json defaults = json::array();
    for (int scale : {2, 3, 4})
      if (m.name == default_model_for_scale(scale)) defaults.push_back(scale);
    list.push_back({{"name", m.name},
                    {"family", m.family},
                    {"scale", m.scale},
                    {"description", m.description},
                    {"license", m.license},
                    {"size_bytes", m.size_bytes},
                    {"installed", model_installed(m)},
                    {"default_for_scale", defaults}});
  }
  // Models added with `upres models add`: jobs take their names like zoo names.
  for (const UserModel& m : user_models()) {
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(m.source.weights_file(), ec);
    list.push_back({{"name", m.name},
                    {"family", m.name},
                    {"scale", m.scale},
                    {"description", fmt::format("added by you ({} model)", m.source.format)},
                    {"license", "yours"},
                    {"size_bytes", ec ? 0 : int64_t(bytes)},
                    {"installed", true},
                    {"user", true},
                    {"default_for_scale", json::array()}});
  }
  return list;
}

}  // namespace upres
