#include "core/partial_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "upres/error.hpp"
#include "upres/files.hpp"

namespace fs = std::filesystem;

namespace upres {
namespace {

// A new file is made under the "creating" name and locked before it is renamed to its "partial"
// name, so a partial file without a lock is always a dead writer's, never a young one's.
constexpr const char* kPartialTag = ".upres-partial-";
constexpr const char* kCreatingTag = ".upres-creating-";

struct SplitPath {
  std::string dir, name;
};
SplitPath split(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

std::string cannot_write(const std::string& destination, int error) {
  return fmt::format("cannot write {}: {}{}", destination, std::strerror(error),
                     error == ENOSPC   ? " (the disk is full; free space and retry)"
                     : error == ENOENT ? " (does the folder exist?)"
                     : error == EACCES ? " (is the folder writable?)"
                                       : "");
}

}  // namespace

namespace {

// Why a file that is not a regular one is refused, in words.
std::string not_regular(const std::string& path, mode_t mode) {
  const char* what = S_ISDIR(mode)    ? "a folder"
                     : S_ISFIFO(mode) ? "a pipe (FIFO)"
                     : S_ISCHR(mode)  ? "a character device"
                     : S_ISBLK(mode)  ? "a block device"
                     : S_ISSOCK(mode) ? "a socket"
                                      : "not a regular file";
  return fmt::format("{} is {}, not a file; give the path of a regular file", path, what);
}

}  // namespace

void require_regular_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int error = errno;
    throw Error(error == ENOENT ? ErrorCode::not_found : ErrorCode::io_failure,
                fmt::format("{}: cannot open: {}", path, std::strerror(error)));
  }
  if (!S_ISREG(st.st_mode)) throw Error(ErrorCode::invalid_argument, not_regular(path, st.st_mode));
}

std::vector<uint8_t> read_file_bytes(const std::string& path, int64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; a regular file ignores the flag.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    throw Error(error == ENOENT ? ErrorCode::not_found : ErrorCode::io_failure,
                fmt::format("{}: cannot open: {}", path, std::strerror(error)));
  }
  // A device (/dev/zero), a pipe or a socket can block or never end: only regular files are read.
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(ErrorCode::invalid_argument, not_regular(path, st.st_mode));
  }
  if (st.st_size > max_bytes) {
    ::close(fd);
    throw Error(ErrorCode::limit_exceeded,
                fmt::format("{} is {} bytes, over the limit of {} bytes", path, st.st_size, max_bytes));
  }
  std::vector<uint8_t> bytes;
  bytes.reserve(size_t(st.st_size));
  uint8_t chunk[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      throw Error(ErrorCode::io_failure, fmt::format("{}: read failed: {}", path, std::strerror(error)));
    }
    if (n == 0) break;
    if (int64_t(bytes.size()) + n > max_bytes) {  // it grew while being read
      ::close(fd);
      throw Error(ErrorCode::limit_exceeded,
                  fmt::format("{} is over the limit of {} bytes", path, max_bytes));
    }
    bytes.insert(bytes.end(), chunk, chunk + n);
  }
  ::close(fd);
  return bytes;
}

bool is_partial_output(const std::string& path) {
  const std::string name = split(path).name;
  return name.size() > 1 && name[0] == '.' &&
         (name.find(kPartialTag) != std::string::npos || name.find(kCreatingTag) != std::string::npos);
}

int remove_stale_partials(const std::string& destination) {
  const SplitPath where = split(destination);
  const std::string prefix = "." + where.name + kPartialTag;
  DIR* dir = ::opendir(where.dir.c_str());
  if (!dir) return 0;
  int removed = 0;
  while (dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string path = where.dir + "/" + name;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;
    // The lock is free only when its writer is gone; holding it while unlinking keeps a writer
    // from appearing in between.
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && ::unlink(path.c_str()) == 0) ++removed;
    ::close(fd);
  }
  ::closedir(dir);
  return removed;
}

void refuse_overwriting_input(const std::string& input, const std::string& output) {
  std::error_code ec;
  if (fs::exists(output, ec) && fs::equivalent(input, output, ec))
    throw Error(ErrorCode::invalid_argument,
                fmt::format("{} is the input itself; write the upscaled result to another file", output));
}

PartialFile::PartialFile(const std::string& destination) : destination_(destination) {
  remove_stale_partials(destination);
  const SplitPath where = split(destination);
  std::string creating = fmt::format("{}/.{}{}XXXXXX", where.dir, where.name, kCreatingTag);
  fd_ = ::mkostemp(creating.data(), O_CLOEXEC);
  if (fd_ < 0) throw Error(ErrorCode::io_failure, cannot_write(destination, errno));
  path_ = fmt::format("{}/.{}{}{}", where.dir, where.name, kPartialTag, creating.substr(creating.size() - 6));
  // A filesystem without locks (Lustre mounted without flock) writes unlocked: its partial files
  // are then never taken for stale, only left for the user to see.
  const bool locked = ::flock(fd_, LOCK_EX) == 0 || errno == ENOSYS || errno == ENOLCK || errno == EOPNOTSUPP;
  if (!locked || ::rename(creating.c_str(), path_.c_str()) != 0) {
    const int error = errno;
    ::close(fd_);
    ::unlink(creating.c_str());
    throw Error(ErrorCode::io_failure, cannot_write(destination, error));
  }
}

PartialFile::~PartialFile() {
  if (!committed_) ::unlink(path_.c_str());
  if (fd_ >= 0) ::close(fd_);
}

void PartialFile::commit() {
  if (::fchmod(fd_, 0644) != 0 || ::fsync(fd_) != 0 || ::rename(path_.c_str(), destination_.c_str()) != 0)
    throw Error(ErrorCode::io_failure, cannot_write(destination_, errno));
  committed_ = true;
  ::close(fd_);  // the lock goes with it, after the rename
  fd_ = -1;
}

}  // namespace upres
