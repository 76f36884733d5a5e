#include "serve_cli.hpp"
#include "engine_help.hpp"

#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "upres/error.hpp"
#include "upres/policy.hpp"
#include "upres/server.hpp"
#include "upres/video.hpp"

namespace upres::cli {
namespace {

struct ServiceFlags {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string root = ".";
  std::string token;
  std::string work_dir;
  int max_jobs = 2;
  int queue = 16;
  double queue_wait = 60;
  double keep_warm = 60;
  std::vector<std::string> allowed_hosts, allowed_origins;
  int max_connections = 256;
  int max_client_connections = 32;
  int max_size = 4096;
  std::string max_upload = "4G";
  std::string backend = "auto";
  int device = 0;
  std::string precision = "auto";
  int threads = 0;
  std::string max_memory = "2G";
  bool quiet = false;
};

ServiceFlags flags;

void add_common(CLI::App* cmd, ServiceFlags& f) {
  cmd->add_option("--root", f.root, "folder that request paths are confined to")->capture_default_str();
  cmd->add_option("--max-jobs", f.max_jobs, "upscales that may run at once (more wait in the queue)")
      ->capture_default_str()
      ->check(CLI::Range(1, kMaxJobs));
  cmd->add_option("--keep-warm", f.keep_warm,
                  "seconds an idle upscaler (its kernels and scratch memory) is kept for the next request")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  cmd->add_option("--max-size", f.max_size, "refuse outputs larger than this many pixels a side")
      ->capture_default_str()
      ->check(CLI::Range(16, 16384));
  cmd->add_option("--backend", f.backend, cli::kBackendHelp)->capture_default_str();
  cmd->add_option("--device", f.device, cli::kDeviceHelp)->check(CLI::Range(0, 255));
  cmd->add_option("--precision", f.precision,
                  std::string(cli::kPrecisionHelp) + "; video jobs may choose their own")
      ->capture_default_str();
  cmd->add_option("--threads", f.threads, "worker threads per upscale (0: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-memory", f.max_memory, "activation memory budget per upscale, e.g. 1G")
      ->capture_default_str();
}

[[maybe_unused]] ServiceOptions service_options(const ServiceFlags& f) {
  ServiceOptions o;
  o.root = f.root;
  o.work_dir = f.work_dir;
  o.max_jobs = f.max_jobs;
  o.queue = f.queue;
  o.queue_wait_seconds = f.queue_wait;
  o.keep_warm_seconds = f.keep_warm;
  o.max_output_side = f.max_size;
  check_backend_name(f.backend);
  o.engine.backend = f.backend;
  o.engine.device = f.device;
  o.engine.precision = precision_from_name(f.precision);
  o.engine.threads = f.threads;
  o.engine.max_memory = parse_quantity(f.max_memory, "--max-memory", 1024);
  o.engine.max_output_side = f.max_size;
  return o;
}

[[maybe_unused]] bool is_loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "::1" || host == "localhost" || host.rfind("127.", 0) == 0;
}

int run_serve() {
#if !UPRES_WITH_SERVER
  throw Error(ErrorCode::unsupported,
              "this upres was built without the HTTP service; configure with -DUPRES_BUILD_SERVER=ON");
#else
  ServerOptions o;
  o.host = flags.host == "localhost" ? "127.0.0.1" : flags.host;
  o.port = flags.port;
  o.token = flags.token;
  if (o.token.empty())
    if (const char* env = std::getenv("UPRES_TOKEN")) o.token = env;
  o.service = service_options(flags);
  o.max_upload_bytes = parse_quantity(flags.max_upload, "--max-upload", 1024);
  o.allowed_hosts = flags.allowed_hosts;
  o.allowed_origins = flags.allowed_origins;
  o.max_connections = flags.max_connections;
  o.max_client_connections = flags.max_client_connections;
  o.quiet = flags.quiet;

  // SIGINT and SIGTERM are taken by one thread with sigwait; every other thread blocks them, so
  // no handler runs in the middle of a job.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client that hangs up is an error code, not a dead server

  Server server(o);
  std::printf("upres serve: listening on %s (root %s, at most %d job%s at once%s)\n", server.url().c_str(),
              server.jobs().root().c_str(), o.service.max_jobs, o.service.max_jobs == 1 ? "" : "s",
              o.token.empty() ? "" : ", token required");
  std::fflush(stdout);
  if (!is_loopback(o.host) && o.token.empty())
    std::fprintf(stderr,
                 "upres serve: warning: listening on %s without --token: anyone who can reach this "
                 "machine can use it\n",
                 o.host.c_str());

  std::atomic<bool> done{false};
  std::thread signal_waiter([&] {
    timespec tick{0, 200'000'000};
    while (!done) {
      int sig = sigtimedwait(&stop_signals, nullptr, &tick);
      if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
        std::fprintf(stderr, "upres serve: %s: cancelling running jobs and closing connections\n",
                     sig == SIGINT   ? "interrupted"
                     : sig == SIGHUP ? "hung up"
                                     : "terminated");
        server.stop();
        return;
      }
    }
  });
  server.run();
  done = true;
  signal_waiter.join();
  std::fprintf(stderr, "upres serve: stopped\n");
  return 0;
#endif
}

int run_mcp() {
#if !UPRES_WITH_MCP
  throw Error(ErrorCode::unsupported,
              "this upres was built without the MCP server; configure with -DUPRES_BUILD_MCP=ON");
#else
  signal(SIGPIPE, SIG_IGN);
  // A signal cancels running calls (their partial outputs are removed) and ends the process;
  // the reading thread may be blocked on stdin, so the exit is made from the signal thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  McpStop stop;
  std::atomic<bool> done{false};
  std::thread signal_waiter([&] {
    timespec tick{0, 200'000'000};
    while (!done) {
      int sig = sigtimedwait(&stop_signals, nullptr, &tick);
      if (sig != SIGINT && sig != SIGTERM && sig != SIGHUP) continue;
      stop.requested.cancel();
      // Jobs stop between frames, and a job still being checked before its first frame stops
      // after that check: seconds on a loaded machine, so the wait is long, and ends at once.
      for (int i = 0; i < 2400 && !stop.jobs_stopped; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      std::fflush(stdout);
      std::_Exit(sig == SIGINT ? 130 : 0);
    }
  });
  int status = run_mcp_server(std::cin, std::cout, std::cerr, service_options(flags), &stop);
  done = true;
  signal_waiter.join();
  return status;
#endif
}

}  // namespace

ServiceCommand add_service_commands(CLI::App& app) {
  ServiceCommand c;
  c.serve = app.add_subcommand("serve",
                               "run the local HTTP service: REST API, progress events, WebSocket "
                               "streaming and a web page (see docs/API.md)");
  c.serve->add_option("--host", flags.host, "address to listen on")->capture_default_str();
  c.serve->add_option("--port", flags.port, "port (0: any free one)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  c.serve->add_option("--token", flags.token,
                      "require \"Authorization: Bearer TOKEN\" on every request (or set UPRES_TOKEN)");
  c.serve->add_option("--work-dir", flags.work_dir,
                      "folder for uploads and job outputs (default: a temporary one)");
  c.serve->add_option("--max-upload", flags.max_upload, "largest video upload, e.g. 500M or 8G")
      ->capture_default_str();
  c.serve
      ->add_option("--queue", flags.queue,
                   "requests that may wait for a place when --max-jobs run (more get 429 Too Many Requests)")
      ->capture_default_str()
      ->check(CLI::Range(0, kMaxQueue));
  c.serve
      ->add_option("--queue-wait", flags.queue_wait,
                   "seconds an image request or stream waits for a place before 429 (video jobs wait as "
                   "\"queued\")")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  c.serve->add_option(
      "--allow-host", flags.allowed_hosts,
      "a host name this server may be reached by, besides IP addresses and localhost (repeat)");
  c.serve->add_option("--allow-origin", flags.allowed_origins,
                      "a web origin (http://host:port) whose pages may start jobs here (repeat)");
  c.serve->add_option("--max-connections", flags.max_connections, "open connections at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  c.serve
      ->add_option("--max-client-connections", flags.max_client_connections,
                   "open connections from one client address")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  c.serve->add_flag("--quiet", flags.quiet, "no request log on stderr");
  add_common(c.serve, flags);

  c.mcp = app.add_subcommand("mcp",
                             "speak the Model Context Protocol on stdin/stdout (tools video_upscale, "
                             "image_upscale, list_models) for AI agents");
  add_common(c.mcp, flags);
  return c;
}

int ServiceCommand::run() {
  return serve->parsed() ? run_serve() : run_mcp();
}

}  // namespace upres::cli
