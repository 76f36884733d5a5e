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

#include <boost/beast/websocket.hpp>

#include <optional>

#include "core/json_input.hpp"
#include "server/http_util.hpp"
#include "server/server_internal.hpp"
#include "server/stream_messages.hpp"
#include "service/status_json.hpp"
#include "upres/policy.hpp"

namespace upres::server {
namespace websocket = boost::beast::websocket;
using nlohmann::json;

namespace {

constexpr double kStreamIdleSeconds = 300;

json ready_message(const SessionSettings& s, const Upscaler& upscaler, size_t max_bytes) {
  return {{"type", "ready"},
          {"model", upscaler.model().name()},
          {"scale", upscaler.output_scale()},
          {"format", image_format_name(s.format)},
          {"max_message_bytes", max_bytes}};
}

}  // namespace

void serve_frame_stream(tcp::socket& socket, Connections::Entry& connection,
                        const http::request<http::empty_body>& request,
                        const std::map<std::string, std::string>& query, JobManager& jobs,
                        const ServerOptions& options) {
  const double stall = options.stall_timeout_seconds;
  auto refuse = [&](const Error& e) {
    auto res =
        error_response(status_for(e.code()), error_code_name(e.code()), jobs.client_message(e.what()), false);
    beast::error_code ec;
    connection.serve(stall);
    http::write(socket, res, ec);
  };
  SessionSettings settings;
  std::optional<UpscalerLease> upscaler;
  JobSlot slot;
  try {
    json from_query = json::object();
    for (const auto& [k, v] : query) from_query[k] = k == "scale" ? form_value(k, v) : json(v);
    settings = settings_from(from_query, settings);
    slot = jobs.acquire_slot();  // waits its turn, at most --queue-wait
    upscaler.emplace(jobs.lease_upscaler(settings.request));
  } catch (const Error& e) {
    refuse(e);  // before the upgrade, so the client sees an HTTP status
    return;
  }

  const size_t max_bytes = size_t(options.max_image_bytes);
  websocket::stream<tcp::socket&> ws(socket);
  ws.read_message_max(max_bytes);
  ws.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, "upres"); }));
  beast::error_code ec;
  connection.serve(stall);
  ws.accept(request, ec);
  if (ec) return;

  auto send = [&](const auto& buffer, bool text) {
    ws.text(text);
    connection.serve(stall);
    ws.write(buffer, ec);
    connection.serve();
    return !ec;
  };
  auto send_text = [&](const json& j) { return send(net::buffer(json_text(j)), true); };
  if (!send_text(ready_message(settings, **upscaler, max_bytes))) return;

  beast::flat_buffer message;
  Image frame, upscaled;  // reused: after the first frame of a size, nothing is reallocated
  std::vector<uint8_t> reply, encoded;
  int64_t frames = 0;
  for (;;) {
    message.clear();
    connection.serve(kStreamIdleSeconds);  // a session may idle between frames this long
    ws.read(message, ec);
    connection.serve();
    if (ec) break;  // closed by the client, timed out, or the server is stopping
    const auto* bytes = static_cast<const uint8_t*>(message.cdata().data());
    const size_t size = message.size();
    try {
      if (ws.got_text()) {
        const json j = parse_outside_json(std::string_view(reinterpret_cast<const char*>(bytes), size),
                                          "a text message");
        if (!j.is_object())
          throw Error(ErrorCode::invalid_argument, "a text message must be a JSON object of settings");
        SessionSettings next = settings_from(j, settings);
        upscaler.reset();
        upscaler.emplace(jobs.lease_upscaler(next.request));
        settings = next;
        if (!send_text(ready_message(settings, **upscaler, max_bytes))) break;
        continue;
      }
      const bool raw = is_raw_frame(bytes, size);
      if (raw) {
        const RawFrame header = parse_raw_frame(bytes, size, options.service.max_input_pixels);
        (*upscaler)->check_input_size(header.width, header.height);
        raw_to_image(header, frame);
      } else {
        const std::vector<uint8_t> encoded_frame(bytes, bytes + size);
        frame = jobs.decode_for(**upscaler, encoded_frame, fmt::format("frame {}", frames));
      }
      (*upscaler)->upscale_into(frame, upscaled);
      const std::vector<uint8_t>* out = &reply;
      if (raw) {
        image_to_raw(upscaled, reply);
      } else {
        encoded = encode_image(upscaled, settings.format);
        out = &encoded;
      }
      if (!send(net::buffer(*out), false)) break;
      ++frames;
    } catch (const Error& e) {
      // A bad frame ends only itself; the session goes on.
      if (!send_text(stream_error_json(error_code_for(e), jobs.client_message(e.what())))) break;
    }
  }
  if (ws.is_open()) {
    connection.serve(stall);
    ws.close(websocket::close_code::normal, ec);
  }
}

}  // namespace upres::server
