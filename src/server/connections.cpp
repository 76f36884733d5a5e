#include "server/connections.hpp"

#include <sys/socket.h>

#include <algorithm>

namespace upres::server {
namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void Connections::Entry::set(bool waiting, double seconds) {
  if (waiting && !waiting_) waiting_since_ns_ = now_ns();
  deadline_ns_ = seconds > 0 ? now_ns() + int64_t(seconds * 1e9) : 0;
  waiting_ = waiting;
}

void Connections::Entry::expect_request(double seconds) {
  set(true, seconds);
}

void Connections::Entry::serve(double seconds) {
  set(false, seconds);
}

Connections::Connections(Limits limits) : limits_(limits), watchdog_(&Connections::watch, this) {}

Connections::~Connections() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    changed_.notify_all();
  }
  watchdog_.join();
}

void Connections::close_locked(Entry& entry) {
  if (entry.closing_) return;
  entry.closing_ = true;
  // Shutting (not closing) the descriptor wakes the thread blocked on it; that thread closes it.
  ::shutdown(entry.fd_, SHUT_RDWR);
}

std::shared_ptr<Connections::Entry> Connections::admit(int fd, const std::string& client) {
  std::lock_guard lock(mutex_);
  if (stopping_) return nullptr;
  // Connections from this client and from all, and the longest idle of each.
  int from_client = 0, in_all = 0;
  Entry *client_idle = nullptr, *any_idle = nullptr;
  auto older = [](Entry* a, Entry* b) { return !b || a->waiting_since_ns_ < b->waiting_since_ns_; };
  for (const auto& e : entries_) {
    if (e->closing_) continue;
    ++in_all;
    const bool same = e->client_ == client;
    from_client += same;
    if (e->waiting_ && older(e.get(), any_idle)) any_idle = e.get();
    if (e->waiting_ && same && older(e.get(), client_idle)) client_idle = e.get();
  }
  // Room is made by closing one idle connection: this client's own when it is at its cap (which
  // also makes room in all), else the longest idle of anyone's when all are at the cap.
  if (from_client >= limits_.max_per_client) {
    if (!client_idle) return nullptr;
    close_locked(*client_idle);
  } else if (in_all >= limits_.max_total) {
    if (!any_idle) return nullptr;
    close_locked(*any_idle);
  }
  auto entry = std::shared_ptr<Entry>(new Entry(fd, client));
  entry->waiting_since_ns_ = now_ns();
  entries_.push_back(entry);
  return entry;
}

void Connections::retire(const std::shared_ptr<Entry>& entry) {
  std::lock_guard lock(mutex_);
  entry->closing_ = true;
}

void Connections::remove(const std::shared_ptr<Entry>& entry) {
  std::lock_guard lock(mutex_);
  entries_.remove(entry);
  changed_.notify_all();
}

void Connections::close_all_and_wait() {
  std::unique_lock lock(mutex_);
  for (const auto& e : entries_) close_locked(*e);
  changed_.wait(lock, [&] { return entries_.empty(); });
}

size_t Connections::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

void Connections::watch() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    changed_.wait_for(lock, std::chrono::milliseconds(100));
    const int64_t now = now_ns();
    for (const auto& e : entries_) {
      const int64_t deadline = e->deadline_ns_;
      if (deadline != 0 && now >= deadline && !e->closing_) {
        e->timed_out_ = true;
        close_locked(*e);
      }
    }
  }
}

}  // namespace upres::server
