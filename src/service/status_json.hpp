// The JSON every service front end speaks: job status, progress, errors and the model list. HTTP,
// its server-sent events and WebSocket sessions, and the MCP server build these shapes only here,
// so a field or an error code means the same wherever a client reads it (docs/API.md).
#pragma once

#include <exception>
#include <string>

#include <nlohmann/json.hpp>

#include "upres/error.hpp"
#include "upres/service.hpp"

namespace upres {

// ---- the error vocabulary ---------------------------------------------------------------------

// The code of a failure no upres::Error describes: a bug.
constexpr const char* kInternalErrorCode = "internal";

// The code a client reads for a failure: error_code_name() for an upres::Error, limit_exceeded for
// running out of memory, kInternalErrorCode for anything else. Job statuses, HTTP errors,
// WebSocket errors and MCP tool errors all take their codes from here (HTTP adds codes of its own
// for refusals no job reaches: unauthorized, forbidden, not_ready, ...).
const char* error_code_for(const std::exception& failure);

// {"code", "message"}: an error as every shape below carries it.
nlohmann::json error_object(const std::string& code, const std::string& message);
// {"error": {"code": "invalid_argument", "message": "..."}}: an HTTP error body.
nlohmann::json error_json(const std::string& code, const std::string& message);
// {"type": "error", "code", "message"}: a WebSocket session's error message.
nlohmann::json stream_error_json(const std::string& code, const std::string& message);

// ---- jobs ---------------------------------------------------------------------------------------

// {"id", "kind", "state", "progress": {...}, "input", "output", "plan": {...}, "result": {...},
//  "error": {"code", "message"}, ...}; documented in docs/API.md.
nlohmann::json job_status_json(const JobStatus& status);
// Progress alone: {"phase", "frame", "frames_total", "fps", "eta_seconds", "elapsed_seconds", "fraction"}.
nlohmann::json progress_json(const VideoProgress& progress);
// A job's progress event (server-sent events): progress_json() with the status's "id", "state",
// "cancel_requested" and, while queued, "queue_position", as job_status_json() names them.
nlohmann::json job_progress_json(const JobStatus& status);

// Every zoo model: name, family, scale, description, license, installed, default_for_scale.
nlohmann::json models_json();

}  // namespace upres
