// GET /v1/jobs/{id}/events: job progress as server-sent events.
//
// Progress can change hundreds of times a second on small frames; clients want a steady,
// cheap stream, so events go through the service's ProgressThrottle (one per 500 ms). The final
// state is never throttled: it is always sent, at once, as the last event.
#include <fmt/format.h>

#include <thread>

#include "core/json_input.hpp"
#include "server/server_internal.hpp"
#include "service/status_json.hpp"
#include "upres/policy.hpp"

namespace upres::server {

void serve_job_events(tcp::socket& socket, Connections::Entry& connection, double stall_seconds,
                      JobManager& jobs, const std::string& id, const std::atomic<bool>& stopping) {
  using clock = std::chrono::steady_clock;
  constexpr auto kKeepAlive = std::chrono::seconds(15);

  auto send = [&](const std::string& text) {
    beast::error_code ec;
    connection.serve(stall_seconds);
    net::write(socket, net::buffer(text), ec);
    connection.serve();
    return !ec;
  };
  auto event = [](const char* name, uint64_t version, const nlohmann::json& data) {
    return fmt::format("event: {}\nid: {}\ndata: {}\n\n", name, version, json_text(data));
  };

  ProgressThrottle throttle;
  uint64_t sent_version = 0;
  for (;;) {
    auto st = jobs.wait_for_update(id, sent_version, clock::now() + kKeepAlive);
    if (!st) return;  // forgotten while we watched
    if (st->finished()) {
      throttle.pass(/*final=*/true);
      send(event("done", st->version, job_status_json(*st)));
      return;
    }
    if (st->version > sent_version) {
      if (throttle.pass()) {
        if (!send(event("progress", st->version, job_progress_json(*st)))) return;
        sent_version = st->version;
      }
    } else if (!send(": keep-alive\n\n")) {
      return;  // the client went away
    }
    // Hold further progress back until the throttle lets it pass; an end still comes at once.
    jobs.wait_for_update(id, sent_version, throttle.next_due(), /*only_finish=*/true);
  }
}

}  // namespace upres::server
