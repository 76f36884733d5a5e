// What the server's source files share: Beast types, responses, and the handlers that take over a
// connection (event streams, WebSocket sessions).
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "server/connections.hpp"
#include "upres/error.hpp"
#include "upres/server.hpp"
#include "upres/service.hpp"

namespace upres::server {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

using StringResponse = http::response<http::string_body>;

// The HTTP status an upres::Error maps to (busy: 429, limit_exceeded: 422, not_found: 404, ...).
http::status status_for(ErrorCode code);
// A JSON response; `keep_alive` false adds Connection: close.
StringResponse json_response(http::status status, const nlohmann::json& body, bool keep_alive);
// {"error": {"code", "message"}} with Retry-After on 429.
StringResponse error_response(http::status status, const std::string& code, const std::string& message,
                              bool keep_alive);
StringResponse error_response(const Error& error, bool keep_alive);

// Writes job events to the socket as server-sent events until the job finishes or the client
// goes: a "progress" event at most every 500 ms, then one "done" event with the final status.
// A write that cannot go out for `stall_seconds` (a client that stopped reading) ends it.
void serve_job_events(tcp::socket& socket, Connections::Entry& connection, double stall_seconds,
                      JobManager& jobs, const std::string& id, const std::atomic<bool>& stopping);

// Takes over a WebSocket upgrade request for /v1/stream (see docs/API.md for the frame format).
// The socket stays the caller's; it is closed when this returns.
void serve_frame_stream(tcp::socket& socket, Connections::Entry& connection,
                        const http::request<http::empty_body>& request,
                        const std::map<std::string, std::string>& query, JobManager& jobs,
                        const ServerOptions& options);

// The web page (src/server/web/index.html, compiled in).
extern const char* const web_page_html;

}  // namespace upres::server
