// libFuzzer target for the HTTP server: each input is what a client sends on one connection (any
// number of requests, with or without bodies), fed through a socket pair to the real server's
// connection loop and router, the same code that serves TCP clients. A crash, a sanitizer report
// or a hang is a bug; every bad request must end in a response or a closed connection. The scratch
// root holds a small picture and clip, so requests can reach real work.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "fuzz_support.hpp"
#include "upres/server.hpp"

namespace {

upres::Server& server() {
  static upres::Server* instance = [] {
    upres::ServerOptions o;
    o.port = 0;
    o.quiet = true;
    o.service.root = upres::fuzz::scratch_root().string();
    upres::fuzz::limit_service(o.service);
    o.max_image_bytes = o.max_upload_bytes = o.max_json_bytes = 1 << 20;
    return new upres::Server(o);  // never run(): connections come through serve_socket
  }();
  return *instance;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
  // The client: sends everything, says it is done, and reads every answer to the end.
  std::thread client([&] {
    size_t sent = 0;
    while (sent < size) {
      const ssize_t n = ::send(fds[1], data + sent, size - sent, MSG_NOSIGNAL);
      if (n <= 0) break;  // the server closed the connection early (413, a malformed header)
      sent += size_t(n);
    }
    ::shutdown(fds[1], SHUT_WR);
    char reply[65536];
    while (::read(fds[1], reply, sizeof reply) > 0) {
    }
    ::close(fds[1]);
  });
  server().serve_socket(fds[0]);
  client.join();
  // Each input cleans up after itself: jobs it started are stopped and forgotten, so none runs on
  // into the next input or past the fuzzer's exit.
  upres::JobManager& jobs = server().jobs();
  for (const upres::JobStatus& job : jobs.list()) {
    jobs.cancel(job.id);
    jobs.wait_for_update(job.id, 0, std::chrono::steady_clock::now() + std::chrono::seconds(60), true);
    jobs.forget(job.id);
  }
  return 0;
}
