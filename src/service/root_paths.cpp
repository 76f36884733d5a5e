// Confining request paths to the service root.
//
// A request names files relative to the root (absolute paths are accepted when they are inside
// it). Two checks keep it there: no ".." component at all (so the text alone cannot climb), and
// the canonical path, with every symlink resolved, must still be inside the canonical root (so
// a link placed inside the root cannot lead out of it).
#include <fmt/format.h>

#include <system_error>

#include "upres/error.hpp"
#include "upres/service.hpp"

namespace fs = std::filesystem;

namespace upres {
namespace {

bool inside(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // a trailing separator on the root
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

fs::path joined_under_root(const std::string& text, const fs::path& root) {
  if (text.empty()) throw Error(ErrorCode::invalid_argument, "a path in the request is empty");
  if (text.find('\0') != std::string::npos)
    throw Error(ErrorCode::invalid_argument, "a path in the request contains a NUL character");
  fs::path path(text);
  for (const fs::path& part : path)
    if (part == "..")
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("path '{}' contains '..'; name files inside the server's root folder", text));
  return path.is_absolute() ? path.lexically_normal() : (root / path).lexically_normal();
}

[[noreturn]] void escapes(const std::string& text) {
  throw Error(ErrorCode::invalid_argument,
              fmt::format("path '{}' leads outside the server's root folder (through its name or a symlink); "
                          "name files inside the root",
                          text));
}

}  // namespace

fs::path JobManager::resolve_input(const std::string& text) const {
  fs::path path = joined_under_root(text, root_);
  if (!inside(path, root_)) escapes(text);
  std::error_code ec;
  fs::path real = fs::canonical(path, ec);
  if (ec)
    throw Error(ErrorCode::not_found, fmt::format("input '{}' does not exist under the server's root", text));
  if (!inside(real, root_)) escapes(text);
  if (!fs::is_regular_file(real))
    throw Error(ErrorCode::invalid_argument, fmt::format("input '{}' is not a file", text));
  return real;
}

fs::path JobManager::resolve_output(const std::string& text) const {
  fs::path path = joined_under_root(text, root_);
  if (!inside(path, root_)) escapes(text);
  if (!path.has_filename() || path.filename() == ".")
    throw Error(ErrorCode::invalid_argument, fmt::format("output '{}' names a folder, not a file", text));
  std::error_code ec;
  fs::path folder = fs::canonical(path.parent_path(), ec);
  if (ec)
    throw Error(ErrorCode::not_found,
                fmt::format("the folder of output '{}' does not exist under the server's root", text));
  if (!inside(folder, root_)) escapes(text);
  if (fs::is_symlink(fs::symlink_status(path)))
    throw Error(ErrorCode::invalid_argument,
                fmt::format("output '{}' is a symlink; name a plain file", text));
  return folder / path.filename();
}

}  // namespace upres
