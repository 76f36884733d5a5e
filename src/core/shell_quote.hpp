// Words of commands upres prints for the user to run next (`upres segment join DIR`): a folder
// named "$(rm -rf ~)" must be pasted as a name, never run.
#pragma once

#include <cctype>
#include <string>

namespace upres {

// `s` as one /bin/sh word: unchanged when it holds only characters the shell takes literally,
// else in single quotes (a quote inside written as '\'').
inline std::string shell_quote(const std::string& s) {
  bool plain = !s.empty();
  for (unsigned char c : s)
    plain = plain && (std::isalnum(c) || std::string("_./:=@%+,-").find(char(c)) != std::string::npos);
  if (plain) return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace upres
