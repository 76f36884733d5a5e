#include "server/stream_messages.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/json_input.hpp"
#include "upres/error.hpp"
#include "upres/policy.hpp"
#include "upres/upscaler.hpp"

namespace upres::server {
using nlohmann::json;

namespace {

constexpr char kRawMagic[4] = {'R', 'G', 'B', '8'};
constexpr size_t kRawHeader = 12;

uint32_t read_le32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
void write_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}

}  // namespace

bool is_raw_frame(const uint8_t* bytes, size_t size) {
  return size >= 4 && std::memcmp(bytes, kRawMagic, 4) == 0;
}

RawFrame parse_raw_frame(const uint8_t* bytes, size_t size, int64_t max_pixels) {
  if (size < kRawHeader)
    throw Error(ErrorCode::invalid_media, "a raw frame is shorter than its 12-byte header");
  RawFrame frame{read_le32(bytes + 4), read_le32(bytes + 8), bytes + kRawHeader};
  if (frame.width == 0 || frame.height == 0 || uint64_t(frame.width) * frame.height > uint64_t(max_pixels))
    throw Error(ErrorCode::limit_exceeded,
                fmt::format("a raw frame of {}x{} is empty or over the server's pixel limit", frame.width,
                            frame.height));
  if (size - kRawHeader != size_t(frame.width) * frame.height * 3)
    throw Error(ErrorCode::invalid_media,
                fmt::format("a raw {}x{} frame needs {} bytes after its header, got {}", frame.width,
                            frame.height, size_t(frame.width) * frame.height * 3, size - kRawHeader));
  return frame;
}

void raw_to_image(const RawFrame& frame, Image& image) {
  const int width = int(frame.width), height = int(frame.height);
  const uint8_t* pixels = frame.pixels;
  if (image.width != width || image.height != height || image.channels != 3) {
    image.width = width;
    image.height = height;
    image.channels = 3;
    image.data.resize(size_t(width) * height * 3);
  }
  image.bit_depth = 8;
  const size_t n = size_t(width) * height;
  float* r = image.plane(0);
  float* g = image.plane(1);
  float* b = image.plane(2);
  for (size_t i = 0; i < n; ++i) {
    r[i] = pixels[3 * i] * (1.0f / 255);
    g[i] = pixels[3 * i + 1] * (1.0f / 255);
    b[i] = pixels[3 * i + 2] * (1.0f / 255);
  }
}

void image_to_raw(const Image& image, std::vector<uint8_t>& out) {
  const size_t n = size_t(image.width) * image.height;
  out.resize(kRawHeader + 3 * n);
  std::memcpy(out.data(), kRawMagic, 4);
  write_le32(out.data() + 4, uint32_t(image.width));
  write_le32(out.data() + 8, uint32_t(image.height));
  uint8_t* px = out.data() + kRawHeader;
  for (int c = 0; c < 3; ++c) {
    const float* plane = image.plane(image.channels >= 3 ? c : 0);
    for (size_t i = 0; i < n; ++i) {
      float v = std::lround(std::clamp(plane[i], 0.0f, 1.0f) * 255.0f);
      px[3 * i + c] = uint8_t(v);
    }
  }
}

SessionSettings settings_from(const json& j, SessionSettings s) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    auto bad = [&](const char* what) {
      return Error(ErrorCode::invalid_argument, fmt::format("setting '{}' must be {} (got {})",
                                                            json_brief(key, 40), what, json_brief(*it)));
    };
    if (key == "model") {
      if (!it->is_string()) throw bad("a model name");
      s.request.model = it->get<std::string>();
    } else if (key == "scale") {
      if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > kMaxScale)
        throw bad("a whole number 1..16 (0: the model's own)");
      s.request.scale = it->get<int>();
    } else if (key == "format") {
      try {
        s.format = image_format_from_name(it->is_string() ? it->get<std::string>() : "");
      } catch (const Error&) {
        throw bad("png, jpeg or webp");
      }
    } else if (key != "access_token") {
      throw Error(
          ErrorCode::invalid_argument,
          fmt::format("unknown setting '{}'; a stream takes model, scale and format", json_brief(key, 40)));
    }
  }
  return s;
}

}  // namespace upres::server
