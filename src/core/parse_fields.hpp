// Whole numbers typed as text ("1280x720", "640x360+0+16", "0,2"): digits only, checked against a
// limit before they are stored, so a value past 32 bits is refused rather than wrapped into a small
// valid-looking one (sscanf's %d would read 4294967328 as 32), and "1e3" or "+5" are not numbers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace upres {

// The decimal number that is all of `text`, when it is at most `max`; nullopt for an empty text,
// any character other than 0-9, or a value past `max`.
inline std::optional<int64_t> parse_whole_number(std::string_view text, int64_t max) {
  if (text.empty()) return std::nullopt;
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    if (c - '0' > max || v > (max - (c - '0')) / 10) return std::nullopt;  // v * 10 + digit > max
    v = v * 10 + (c - '0');
  }
  return v;
}

// Numbers separated by the characters of `separators` in that order: "x" reads "WxH", "x++" reads
// "WxH+X+Y". nullopt unless the text is exactly that shape with every number at most `max`.
inline std::optional<std::vector<int64_t>> parse_number_fields(std::string_view text,
                                                               std::string_view separators, int64_t max) {
  std::vector<int64_t> out;
  for (size_t i = 0; i <= separators.size(); ++i) {
    const size_t end = i < separators.size() ? text.find(separators[i]) : text.size();
    if (end == std::string_view::npos) return std::nullopt;
    const auto v = parse_whole_number(text.substr(0, end), max);
    if (!v) return std::nullopt;
    out.push_back(*v);
    text.remove_prefix(std::min(text.size(), end + 1));
  }
  return out;
}

}  // namespace upres
