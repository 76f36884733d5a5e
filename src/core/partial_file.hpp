// A partial output file: created locked beside its destination, renamed over it by commit(),
// removed when destroyed uncommitted (see upres/files.hpp for the naming and the lock).
#pragma once

#include <string>

namespace upres {

class PartialFile {
 public:
  // Removes stale partial files of `destination`, then creates a fresh one, locked. Throws
  // Error(io_failure) naming the destination when its folder is missing or not writable.
  explicit PartialFile(const std::string& destination);
  ~PartialFile();  // removes the file unless committed
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;

  const std::string& path() const { return path_; }
  int fd() const { return fd_; }  // open for writing

  // Makes the file readable as a finished output (0644), flushes it to disk and renames it onto
  // the destination. Throws Error(io_failure) naming the destination.
  void commit();

 private:
  std::string destination_, path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace upres
