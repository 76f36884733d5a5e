// libFuzzer target for the messages of a /v1/stream WebSocket session: a text message of
// settings, or a binary raw-frame message (header and pixels). The first byte picks which.
// Anything but upres::Error is a bug.
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/json_input.hpp"
#include "server/stream_messages.hpp"
#include "upres/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t* message = data + 1;
  const size_t length = size - 1;
  try {
    if (data[0] & 1) {
      const upres::server::RawFrame frame = upres::server::parse_raw_frame(message, length, 1 << 16);
      upres::Image image;
      upres::server::raw_to_image(frame, image);
      std::vector<uint8_t> back;
      upres::server::image_to_raw(image, back);
      if (back.size() != length) __builtin_trap();  // a raw frame must round-trip
    } else {
      const auto j = upres::parse_outside_json(
          std::string_view(reinterpret_cast<const char*>(message), length), "a text message");
      if (j.is_object()) (void)upres::server::settings_from(j, {});
    }
  } catch (const upres::Error&) {
  }
  return 0;
}
