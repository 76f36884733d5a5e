// Small HTTP helpers the server needs and Beast leaves to its users: request targets, query
// strings, form fields as option JSON, bearer tokens.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace upres::server {

struct Target {
  std::string path;                          // percent-decoded
  std::map<std::string, std::string> query;  // percent-decoded; the last value wins
};
Target parse_target(std::string_view target);
std::string percent_decode(std::string_view text, bool plus_is_space);

// Form and query values are text; an option that wants a number or a boolean gets one when the
// text is valid JSON ("18", "true", "[0,2]"), and the text itself otherwise ("libx264").
nlohmann::json form_value(const std::string& text);

// Compares in time independent of where the strings differ, so a token cannot be guessed a
// character at a time from response times.
bool equal_constant_time(std::string_view a, std::string_view b);

// The token in "Authorization: Bearer T"; "" when the header has another form.
std::string bearer_token(std::string_view authorization);

}  // namespace upres::server
