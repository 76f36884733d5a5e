// upres: the one error type every library call reports through.
//
// Library functions throw upres::Error for anything a caller or a user can cause (a bad file,
// an unknown option, a limit exceeded). The message is written for a person: it names the
// file, option or limit involved and what to do about it. Broken internal invariants are not
// errors: they abort through UPRES_ASSERT.
#pragma once

#include <stdexcept>
#include <string>

namespace upres {

enum class ErrorCode {
  invalid_argument,  // an option or parameter a caller passed is wrong
  not_found,         // a file, model or stream that was asked for does not exist
  invalid_model,     // a model file is malformed, truncated or uses something unsupported
  invalid_media,     // an image or video cannot be decoded, or is corrupt
  unsupported,       // valid input that this build cannot handle
  limit_exceeded,    // a size or memory cap was hit
  io_failure,        // reading or writing a file failed (permissions, full disk)
  backend_failure,   // the inference library (oneDNN, CUDA) reported a failure
  cancelled,         // the caller cancelled the work
  busy,              // a service is running as many jobs as it may; retry later
};

// The code as clients read it: the enumerator's own name ("invalid_argument", "io_failure").
// The service's JSON errors, job statuses, MCP results and docs/API.md all use these words.
const char* error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace upres
