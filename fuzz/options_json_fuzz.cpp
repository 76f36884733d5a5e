// libFuzzer target for job options as JSON (HTTP bodies, form fields, presets): the input is the
// text of an options object, also read as one form field. Anything but upres::Error is a bug.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>

#include "core/json_input.hpp"
#include "media/video_filter.hpp"
#include "server/http_util.hpp"
#include "upres/error.hpp"
#include "upres/video.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    upres::VideoOptions o = upres::video_options_from_json(text);
    (void)upres::video_model_name(o);
    // The output size it asks (--resolution text, -w/-h, a fractional scale) for a few pictures.
    for (const auto& [w, h] : {std::pair<int, int>{640, 360}, {1, 1}, {65536, 3}})
      for (const bool even : {false, true}) {
        try {
          const auto [tw, th] = upres::requested_output_size(o.size, w, h, even);
          if (!o.size.empty() && (tw < 16 || th < 16 || tw > 65536 || th > 65536)) std::abort();
          (void)upres::model_scale_for(w, h, tw, th);
        } catch (const upres::Error&) {
        }
      }
    // The crop it asks: parsed strictly, and inside 0..2^20 when it parses.
    if (!o.crop.empty()) {
      try {
        const upres::CropRect r = upres::parse_crop(o.crop);
        if (r.w <= 0 || r.h <= 0 || r.x < 0 || r.y < 0 || r.w > (1 << 20) || r.x > (1 << 20)) std::abort();
      } catch (const upres::Error&) {
      }
    }
  } catch (const upres::Error&) {
  }
  try {
    (void)upres::json_text(upres::server::form_value("crf", text));
  } catch (const upres::Error&) {
  }
  return 0;
}
