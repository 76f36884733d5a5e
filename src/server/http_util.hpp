// Small HTTP helpers the server needs and Beast leaves to its users: request targets, query
// strings, form fields as option JSON, bearer tokens.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace upres::server {

struct Target {
  std::string path;                          // percent-decoded
  std::map<std::string, std::string> query;  // percent-decoded; the last value wins
};
Target parse_target(std::string_view target);
std::string percent_decode(std::string_view text, bool plus_is_space);

// Form and query values are text; an option that wants a number or a boolean gets one when the
// text is valid JSON ("18", "true", "[0,2]"), and the text itself otherwise ("libx264"). Throws
// Error(invalid_argument) naming `key` for text that is not UTF-8 or nests too deep.
nlohmann::json form_value(const std::string& key, const std::string& text);

// Checks that the request target's path and query are UTF-8; throws Error(invalid_argument).
void check_target_text(const Target& target);

// The host part of a Host header or an origin's authority: "[::1]:8080" -> "::1",
// "Example.COM:80" -> "example.com".
std::string host_name_of(std::string_view authority);

// Whether a Host header may reach this server: IP literals, "localhost" and names under
// ".localhost" always; other names only when listed in `allowed` (what a DNS-rebinding page
// would send is a name it controls, never one of these).
bool host_is_allowed(std::string_view host, const std::vector<std::string>& allowed);

// Whether a browser's Origin header may change state here: its own page (the origin's
// authority equals the request's Host) or one listed in `allowed` ("http://app.example:3000").
bool origin_is_allowed(std::string_view origin, std::string_view host,
                       const std::vector<std::string>& allowed);

// Compares in time independent of where the strings differ, so a token cannot be guessed a
// character at a time from response times.
bool equal_constant_time(std::string_view a, std::string_view b);

// The token in "Authorization: Bearer T"; "" when the header has another form.
std::string bearer_token(std::string_view authorization);

}  // namespace upres::server
