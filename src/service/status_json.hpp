// JSON shapes the server and the MCP tool share: job status, model list, errors.
#pragma once

#include <nlohmann/json.hpp>

#include "upres/error.hpp"
#include "upres/service.hpp"

namespace upres {

// {"id", "state", "phase", "progress": {...}, "input", "output", "plan": {...}, "result": {...},
//  "error": {"code", "message"}, ...}; documented in docs/API.md.
nlohmann::json job_status_json(const JobStatus& status);
// Progress alone: {"phase", "frame", "frames_total", "fps", "eta_seconds", "elapsed_seconds", "fraction"}.
nlohmann::json progress_json(const VideoProgress& progress);
// Every zoo model: name, family, scale, description, license, installed, default_for_scale.
nlohmann::json models_json();
// {"error": {"code": "invalid_argument", "message": "..."}}
nlohmann::json error_json(const std::string& code, const std::string& message);

}  // namespace upres
