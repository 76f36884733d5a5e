// A fixed-capacity blocking queue between two pipeline stages. Storage is allocated once, so
// pushing and popping never touch the heap; close() wakes every waiter (a stage failed or the
// job was cancelled) and makes pop return false once the queue is empty.
#pragma once

#include <condition_variable>
#include <mutex>
#include <vector>

namespace upres {

template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : items_(capacity) {}

  // Blocks while full. Returns false (and drops the item) when the queue was closed.
  bool push(T item) {
    std::unique_lock<std::mutex> lock(mutex_);
    not_full_.wait(lock, [&] { return closed_ || count_ < items_.size(); });
    if (closed_) return false;
    items_[(head_ + count_) % items_.size()] = std::move(item);
    ++count_;
    not_empty_.notify_one();
    return true;
  }

  // Blocks while empty. Returns false when closed and drained.
  bool pop(T& item) {
    std::unique_lock<std::mutex> lock(mutex_);
    not_empty_.wait(lock, [&] { return closed_ || count_ > 0; });
    if (count_ == 0) return false;
    item = std::move(items_[head_]);
    head_ = (head_ + 1) % items_.size();
    --count_;
    not_full_.notify_one();
    return true;
  }

  void close() {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    not_full_.notify_all();
    not_empty_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable not_full_, not_empty_;
  std::vector<T> items_;
  size_t head_ = 0, count_ = 0;
  bool closed_ = false;
};

}  // namespace upres
