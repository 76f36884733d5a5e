#include "upres/error.hpp"

namespace upres {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::not_found: return "not_found";
    case ErrorCode::invalid_model: return "invalid_model";
    case ErrorCode::invalid_media: return "invalid_media";
    case ErrorCode::unsupported: return "unsupported";
    case ErrorCode::limit_exceeded: return "limit_exceeded";
    case ErrorCode::io_failure: return "io_failure";
    case ErrorCode::backend_failure: return "backend_failure";
    case ErrorCode::cancelled: return "cancelled";
    case ErrorCode::busy: return "busy";
  }
  return "error";
}

}  // namespace upres
