#include "upres/error.hpp"

#include <fmt/format.h>

#include "core/tensor.hpp"

namespace upres {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid_argument: return "invalid argument";
    case ErrorCode::not_found: return "not found";
    case ErrorCode::invalid_model: return "invalid model";
    case ErrorCode::invalid_media: return "invalid media";
    case ErrorCode::unsupported: return "unsupported";
    case ErrorCode::limit_exceeded: return "limit exceeded";
    case ErrorCode::io_failure: return "i/o failure";
    case ErrorCode::backend_failure: return "backend failure";
    case ErrorCode::cancelled: return "cancelled";
    case ErrorCode::busy: return "busy";
  }
  return "error";
}

std::string Shape::str() const {
  return fmt::format("{}x{}x{}", c, h, w);
}

}  // namespace upres
