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
// slots, so the number of connections never decides how much compute runs at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>

#include "upres/service.hpp"

namespace upres {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;    // 0: any free port (see Server::port)
  std::string token;  // when set, requests need "Authorization: Bearer <token>"
  ServiceOptions service;
  int64_t max_upload_bytes = int64_t(4) << 30;  // video uploads
  int64_t max_image_bytes = int64_t(64) << 20;  // image requests and stream frames
  int64_t max_json_bytes = int64_t(1) << 20;    // JSON request bodies
  int max_connections = 64;
  int idle_timeout_seconds = 60;  // a connection that sends nothing for this long is closed
  bool quiet = false;             // no request log on stderr
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
