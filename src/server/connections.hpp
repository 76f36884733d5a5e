// The connections the HTTP server holds: admission under its caps, and the deadlines of each.
//
// Each connection has a thread that blocks on its socket (see server.cpp). Beast's timeouts
// (tcp_stream::expires_after) only govern asynchronous operations, so deadlines are kept here
// instead: a watchdog thread shuts a socket whose deadline has passed, which ends the blocking
// read or write it is in. A client that sends nothing, or a header a byte at a time, therefore
// holds its connection for a bounded time only; and when a cap is reached, the connection that
// has waited longest for a request is closed to make room rather than refusing the newcomer.
// Connections busy with a request (an upload, a running image, an event stream) are never
// closed for room: a new one is refused with 503 only when every connection is busy.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace upres::server {

class Connections {
 public:
  struct Limits {
    int max_total = 256;      // connections at once, from everyone
    int max_per_client = 32;  // from one client address
  };

  class Entry {
   public:
    // The connection waits for a request (its first, or the next on a kept-alive connection): it
    // may be closed for room, and is closed when `seconds` pass first.
    void expect_request(double seconds);
    // The connection serves a request: never closed for room; closed after `seconds` without
    // progress (0: no deadline), which a body reader renews with each piece it receives.
    void serve(double seconds = 0);
    bool timed_out() const { return timed_out_; }

   private:
    friend class Connections;
    Entry(int fd, std::string client) : fd_(fd), client_(std::move(client)) {}
    void set(bool waiting, double seconds);
    const int fd_;
    const std::string client_;
    std::atomic<bool> waiting_{true};
    std::atomic<int64_t> deadline_ns_{0};  // steady clock; 0: none
    std::atomic<bool> timed_out_{false};
    std::atomic<int64_t> waiting_since_ns_{0};  // when it began to wait for a request
    bool closing_ = false;  // shut for room or at its deadline; guarded by Connections::mutex_
  };

  explicit Connections(Limits limits);
  ~Connections();
  Connections(const Connections&) = delete;
  Connections& operator=(const Connections&) = delete;

  // Registers a new connection from `client` (its address), making room under the caps when it
  // must; nullptr when no room can be made (the caller answers 503 and closes the socket).
  std::shared_ptr<Entry> admit(int fd, const std::string& client);
  // A connection's thread is about to close its socket: from now on nothing else shuts it, so
  // its descriptor number cannot be shut after the system has given it to a new connection.
  void retire(const std::shared_ptr<Entry>& entry);
  // Forgets a connection, after its socket is gone (the server may be destroyed once all are).
  void remove(const std::shared_ptr<Entry>& entry);
  // Shuts every socket (server stop) and waits until every connection has been removed.
  void close_all_and_wait();
  size_t size() const;

 private:
  void watch();
  void close_locked(Entry& entry);

  const Limits limits_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::list<std::shared_ptr<Entry>> entries_;  // oldest first
  bool stopping_ = false;
  std::thread watchdog_;
};

}  // namespace upres::server
