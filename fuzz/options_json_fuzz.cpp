// libFuzzer target for job options as JSON (HTTP bodies, form fields, presets): the input is the
// text of an options object, also read as one form field. Anything but upres::Error is a bug.
#include <cstdint>
#include <string>

#include "core/json_input.hpp"
#include "server/http_util.hpp"
#include "upres/error.hpp"
#include "upres/video.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    upres::VideoOptions o = upres::video_options_from_json(text);
    (void)upres::video_model_name(o);
  } catch (const upres::Error&) {
  }
  try {
    (void)upres::json_text(upres::server::form_value("crf", text));
  } catch (const upres::Error&) {
  }
  return 0;
}
