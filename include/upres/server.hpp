// upres: the local HTTP service (`upres serve`) and the MCP tool server (`upres mcp`).
//
//   upres::ServerOptions options;
//   options.port = 0;                      // any free port
//   upres::Server server(options);         // binds now; throws Error(io_failure) when it cannot
//   std::thread t([&] { server.run(); });  // serves until stop()
//   ... server.port() ...
//   server.stop(); t.join();
//
// REST, server-sent events, WebSocket frame streaming and the web page; docs/API.md describes
// every endpoint. Connections each get a thread; upscales are admitted through the JobManager's
// places and queue, so the number of connections never decides how much compute runs at once.
// Connections are capped and timed (docs/API.md, "Limits"), so clients that misbehave cannot
// hold the server: others keep being answered.
#pragma once

#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "upres/service.hpp"

namespace upres {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;    // 0: any free port (see Server::port)
  std::string token;  // when set, requests need "Authorization: Bearer <token>"
  // Browsers: a Host header must be an IP address, localhost, or a name listed here (a page
  // that rebinds its own name to 127.0.0.1 is refused); state-changing requests and WebSocket
  // upgrades that carry an Origin must come from this server's own page or an origin listed here.
  std::vector<std::string> allowed_hosts;
  std::vector<std::string> allowed_origins;
  ServiceOptions service;
  int64_t max_upload_bytes = int64_t(4) << 30;  // video uploads, streamed to disk
  int64_t max_image_bytes = int64_t(64) << 20;  // image requests and stream frames
  int64_t max_json_bytes = int64_t(1) << 20;    // JSON and form request bodies
  int max_connections = 256;                    // open connections at once
  int max_client_connections = 32;              // open connections from one client address
  double header_timeout_seconds = 10;           // a request header must arrive whole within this
  double keep_alive_seconds = 15;               // a kept-alive connection may idle this long between requests
  double stall_timeout_seconds = 30;            // a body, either way, may pause this long
  bool quiet = false;                           // no request log on stderr
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const;
  std::string url() const;  // http://host:port
  JobManager& jobs();

  // Accepts and serves connections until stop(); then cancels running jobs, closes every
  // connection and returns once all of them are gone.
  void run();
  // Safe from any thread (a signal-waiting thread, a test).
  void stop();

  // Serves one already connected stream socket (one end of a socket pair) on the calling thread
  // until it closes, as if it had been accepted; takes the descriptor. For the fuzz target, which
  // feeds request bytes through the real router without a network.
  void serve_socket(int fd);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A way to stop an MCP server from outside its reading thread (the CLI's signal handler):
// request it, then wait for jobs_stopped before exiting the process.
struct McpStop {
  CancelToken requested;
  std::atomic<bool> jobs_stopped{false};
};

// Speaks the Model Context Protocol (JSON-RPC 2.0, one message a line) on `in`/`out` until `in`
// ends, then lets running calls finish; tools video_upscale, image_upscale and list_models.
// Diagnostics go to `log`.
int run_mcp_server(std::istream& in, std::ostream& out, std::ostream& log, const ServiceOptions& options,
                   McpStop* stop = nullptr);

// The MCP protocol revisions this server speaks, newest first.
const char* const* mcp_protocol_versions();

}  // namespace upres
