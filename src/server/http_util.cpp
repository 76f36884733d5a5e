#include "server/http_util.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <cctype>

#include "core/json_input.hpp"
#include "upres/error.hpp"

namespace upres::server {

std::string percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 && hex(text[i + 2]) >= 0) {
      out.push_back(char(hex(text[i + 1]) * 16 + hex(text[i + 2])));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Target parse_target(std::string_view target) {
  Target t;
  size_t q = target.find('?');
  t.path = percent_decode(target.substr(0, q), false);
  if (q == std::string_view::npos) return t;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string key = percent_decode(pair.substr(0, eq), true);
    std::string value = eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1), true);
    t.query[key] = value;
  }
  return t;
}

nlohmann::json form_value(const std::string& key, const std::string& text) {
  if (!is_valid_utf8(key) || !is_valid_utf8(text))
    throw Error(ErrorCode::invalid_argument, "a form field or query parameter is not valid UTF-8 text");
  if (json_nesting_depth(text) > kMaxJsonDepth)
    throw Error(ErrorCode::invalid_argument,
                fmt::format("the value of '{}' nests deeper than {} levels, the limit", key, kMaxJsonDepth));
  nlohmann::json parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || parsed.is_string()) return text;
  return parsed;
}

void check_target_text(const Target& target) {
  bool ok = is_valid_utf8(target.path);
  for (const auto& [key, value] : target.query) ok = ok && is_valid_utf8(key) && is_valid_utf8(value);
  if (!ok)
    throw Error(ErrorCode::invalid_argument,
                "the request's path or query is not valid UTF-8 once percent-decoded; encode text as UTF-8");
}

std::string host_name_of(std::string_view authority) {
  std::string_view host = authority;
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    host = close == std::string_view::npos ? host.substr(1) : host.substr(1, close - 1);
  } else if (const size_t colon = host.find(':');
             colon != std::string_view::npos && host.find(':', colon + 1) == std::string_view::npos) {
    host = host.substr(0, colon);
  }
  std::string lowered(host);
  for (char& c : lowered) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (!lowered.empty() && lowered.back() == '.') lowered.pop_back();  // "localhost." is localhost
  return lowered;
}

bool host_is_allowed(std::string_view host_header, const std::vector<std::string>& allowed) {
  const std::string host = host_name_of(host_header);
  unsigned char address[16];
  if (::inet_pton(AF_INET, host.c_str(), address) == 1 || ::inet_pton(AF_INET6, host.c_str(), address) == 1)
    return true;
  if (host == "localhost" || (host.size() > 10 && host.compare(host.size() - 10, 10, ".localhost") == 0))
    return true;
  for (const std::string& name : allowed)
    if (host_name_of(name) == host) return true;
  return false;
}

bool origin_is_allowed(std::string_view origin, std::string_view host,
                       const std::vector<std::string>& allowed) {
  for (const std::string& o : allowed)
    if (o == origin) return true;
  // "http://127.0.0.1:8080": the page this server sent, when its authority is the Host asked for.
  constexpr std::string_view scheme = "http://";
  if (origin.substr(0, scheme.size()) != scheme) return false;
  std::string_view authority = origin.substr(scheme.size());
  if (authority.empty() || authority.find('/') != std::string_view::npos) return false;
  auto lower = [](std::string_view text) {
    std::string out(text);
    for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  return !host.empty() && lower(authority) == lower(host);
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

std::string bearer_token(std::string_view authorization) {
  constexpr std::string_view scheme = "Bearer ";
  if (authorization.size() <= scheme.size()) return "";
  for (size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) !=
        std::tolower(static_cast<unsigned char>(scheme[i])))
      return "";
  std::string_view token = authorization.substr(scheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return std::string(token);
}

}  // namespace upres::server
