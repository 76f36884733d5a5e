// GET /v1/stream: a WebSocket session that upscales frames as they arrive.
//
// Each binary message is one frame: PNG, JPEG or WebP bytes, or raw 8-bit RGB behind a 12-byte
// header ("RGB8", width and height as little-endian uint32). The reply is the upscaled frame in
// the same form (encoded frames come back as PNG unless the session asks for another format),
// in order. The session holds one job slot and one Upscaler for its whole life, and reuses its
// buffers from frame to frame. It reads the next frame only after answering the last, so a
// client that sends faster than the server upscales is held back by TCP flow control rather
// than queued in server memory.
#include <fmt/format.h>
#include <sys/socket.h>

#include <boost/beast/websocket.hpp>

#include <cmath>
#include <cstring>
#include <optional>

#include "server/http_util.hpp"
#include "server/server_internal.hpp"
#include "service/status_json.hpp"

namespace upres::server {
namespace websocket = boost::beast::websocket;
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

// Raw interleaved RGB into the planar float image, reusing its buffer.
void raw_to_image(const uint8_t* pixels, int width, int height, Image& image) {
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

struct SessionSettings {
  ImageRequest request;
  ImageFormat format = ImageFormat::png;
};

SessionSettings settings_from(const json& j, SessionSettings s) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    auto bad = [&](const char* what) {
      return Error(ErrorCode::invalid_argument,
                   fmt::format("setting '{}' must be {} (got {})", key, what, it->dump()));
    };
    if (key == "model") {
      if (!it->is_string()) throw bad("a model name");
      s.request.model = it->get<std::string>();
    } else if (key == "scale") {
      if (!it->is_number_integer()) throw bad("a whole number");
      s.request.scale = it->get<int>();
    } else if (key == "format") {
      std::string f = it->is_string() ? it->get<std::string>() : "";
      if (f == "png")
        s.format = ImageFormat::png;
      else if (f == "jpeg" || f == "jpg")
        s.format = ImageFormat::jpeg;
      else if (f == "webp")
        s.format = ImageFormat::webp;
      else
        throw bad("png, jpeg or webp");
    } else if (key != "access_token") {
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("unknown setting '{}'; a stream takes model, scale and format", key));
    }
  }
  return s;
}

json ready_message(const SessionSettings& s, const Upscaler& upscaler, size_t max_bytes) {
  return {{"type", "ready"},
          {"model", upscaler.model().name()},
          {"scale", upscaler.output_scale()},
          {"format", s.format == ImageFormat::png    ? "png"
                     : s.format == ImageFormat::jpeg ? "jpeg"
                                                     : "webp"},
          {"max_message_bytes", max_bytes}};
}

}  // namespace

void serve_frame_stream(tcp::socket socket, const http::request<http::empty_body>& request,
                        const std::map<std::string, std::string>& query, JobManager& jobs,
                        const ServerOptions& options) {
  auto refuse = [&](const Error& e) {
    auto res = error_response(e, false);
    beast::error_code ec;
    http::write(socket, res, ec);
  };
  SessionSettings settings;
  std::optional<UpscalerLease> upscaler;
  JobSlot slot;
  try {
    json from_query = json::object();
    for (const auto& [k, v] : query) from_query[k] = k == "scale" ? form_value(v) : json(v);
    settings = settings_from(from_query, settings);
    slot = jobs.acquire_slot();
    upscaler.emplace(jobs.lease_upscaler(settings.request));
  } catch (const Error& e) {
    refuse(e);  // before the upgrade, so the client sees an HTTP status
    return;
  }

  const size_t max_bytes = size_t(options.max_image_bytes);
  websocket::stream<tcp::socket> ws(std::move(socket));
  ws.read_message_max(max_bytes);
  ws.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, "upres"); }));
  beast::error_code ec;
  ws.accept(request, ec);
  if (ec) return;
  // Streams idle longer than a plain request: allow five minutes between frames.
  timeval tv{300, 0};
  ::setsockopt(ws.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  auto send_text = [&](const json& j) {
    ws.text(true);
    ws.write(net::buffer(j.dump()), ec);
    return !ec;
  };
  if (!send_text(ready_message(settings, **upscaler, max_bytes))) return;

  beast::flat_buffer message;
  Image frame, upscaled;  // reused: after the first frame of a size, nothing is reallocated
  std::vector<uint8_t> reply, encoded;
  int64_t frames = 0;
  for (;;) {
    message.clear();
    ws.read(message, ec);
    if (ec) break;  // closed by the client, timed out, or the server is stopping
    const auto* bytes = static_cast<const uint8_t*>(message.cdata().data());
    const size_t size = message.size();
    try {
      if (ws.got_text()) {
        json j = json::parse(std::string_view(reinterpret_cast<const char*>(bytes), size), nullptr, false);
        if (!j.is_object())
          throw Error(ErrorCode::invalid_argument, "a text message must be a JSON object of settings");
        SessionSettings next = settings_from(j, settings);
        upscaler.reset();
        upscaler.emplace(jobs.lease_upscaler(next.request));
        settings = next;
        if (!send_text(ready_message(settings, **upscaler, max_bytes))) break;
        continue;
      }
      bool raw = size >= 4 && std::memcmp(bytes, kRawMagic, 4) == 0;
      if (raw) {
        if (size < kRawHeader)
          throw Error(ErrorCode::invalid_media, "a raw frame is shorter than its 12-byte header");
        uint32_t w = read_le32(bytes + 4), h = read_le32(bytes + 8);
        if (w == 0 || h == 0 || uint64_t(w) * h > uint64_t(options.service.max_input_pixels))
          throw Error(ErrorCode::limit_exceeded,
                      fmt::format("a raw frame of {}x{} is empty or over the server's pixel limit", w, h));
        if (size != kRawHeader + size_t(w) * h * 3)
          throw Error(ErrorCode::invalid_media,
                      fmt::format("a raw {}x{} frame needs {} bytes after its header, got {}", w, h,
                                  size_t(w) * h * 3, size - kRawHeader));
        raw_to_image(bytes + kRawHeader, int(w), int(h), frame);
      } else {
        frame = decode_image(std::vector<uint8_t>(bytes, bytes + size), fmt::format("frame {}", frames),
                             options.service.max_input_pixels);
      }
      (*upscaler)->upscale_into(frame, upscaled);
      const std::vector<uint8_t>* out = &reply;
      if (raw) {
        image_to_raw(upscaled, reply);
      } else {
        encoded = encode_image(upscaled, settings.format);
        out = &encoded;
      }
      ws.binary(true);
      ws.write(net::buffer(*out), ec);
      if (ec) break;
      ++frames;
    } catch (const Error& e) {
      // A bad frame ends only itself; the session goes on.
      if (!send_text({{"type", "error"}, {"code", error_code_key(e.code())}, {"message", e.what()}})) break;
    }
  }
  if (ws.is_open()) {
    ws.close(websocket::close_code::normal, ec);
  }
}

}  // namespace upres::server
