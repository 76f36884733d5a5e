// The messages of a /v1/stream WebSocket session (docs/API.md): settings as JSON text, and frames
// as encoded pictures or raw 8-bit RGB behind a 12-byte header ("RGB8", then width and height as
// little-endian 32-bit integers). Parsed here, apart from the session, so they can be fuzzed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "upres/image.hpp"
#include "upres/service.hpp"

namespace upres::server {

struct SessionSettings {
  ImageRequest request;
  ImageFormat format = ImageFormat::png;
};

// `s` with the settings in `j` (model, scale, format) applied; throws Error(invalid_argument)
// naming an unknown key or a value of the wrong type or range.
SessionSettings settings_from(const nlohmann::json& j, SessionSettings s);

struct RawFrame {
  uint32_t width = 0, height = 0;
  const uint8_t* pixels = nullptr;  // width * height * 3 bytes, row by row
};

// True when a binary message starts like a raw frame ("RGB8").
bool is_raw_frame(const uint8_t* bytes, size_t size);
// The header of a raw frame, checked: a size of zero or over `max_pixels` is Error(limit_exceeded),
// a message shorter or longer than its header says is Error(invalid_media).
RawFrame parse_raw_frame(const uint8_t* bytes, size_t size, int64_t max_pixels);

// A raw frame into a planar float image, reusing the image's buffer when the size matches.
void raw_to_image(const RawFrame& frame, Image& image);
// An image as a raw frame message (header and pixels), reusing `out`'s buffer.
void image_to_raw(const Image& image, std::vector<uint8_t>& out);

}  // namespace upres::server
