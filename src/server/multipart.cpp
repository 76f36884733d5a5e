#include "server/multipart.hpp"

#include <algorithm>
#include <cctype>
#include <functional>

#include "upres/error.hpp"

namespace upres::server {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// The value of `key` in a header like: form-data; name="file"; filename="a b.png"
std::string header_parameter(std::string_view header, std::string_view key) {
  std::string lowered = lower(header);
  size_t at = 0;
  while ((at = lowered.find(key, at)) != std::string::npos) {
    bool starts_word = at == 0 || lowered[at - 1] == ';' || lowered[at - 1] == ' ';
    size_t eq = at + key.size();
    if (!starts_word || eq >= header.size() || header[eq] != '=') {
      at = eq;
      continue;
    }
    std::string_view rest = header.substr(eq + 1);
    if (!rest.empty() && rest.front() == '"') {
      std::string value;
      for (size_t i = 1; i < rest.size() && rest[i] != '"'; ++i) {
        if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
        value.push_back(rest[i]);
      }
      return value;
    }
    return std::string(trim(rest.substr(0, rest.find(';'))));
  }
  return "";
}

[[noreturn]] void malformed(const std::string& what) {
  throw Error(ErrorCode::invalid_argument, "the multipart/form-data body is malformed: " + what);
}

}  // namespace

std::string multipart_boundary(std::string_view content_type) {
  std::string type = lower(trim(content_type.substr(0, content_type.find(';'))));
  if (type != "multipart/form-data") return "";
  return header_parameter(content_type, "boundary");
}

std::vector<FormPart> parse_multipart(std::string_view body, const std::string& boundary) {
  if (boundary.empty() || boundary.size() > 200) malformed("the boundary is missing or too long");
  const std::string delimiter = "\r\n--" + boundary;
  std::boyer_moore_horspool_searcher find_delimiter(delimiter.begin(), delimiter.end());
  auto next_delimiter = [&](size_t from) -> size_t {
    auto it = std::search(body.begin() + from, body.end(), find_delimiter);
    return it == body.end() ? std::string_view::npos : size_t(it - body.begin());
  };

  // The first boundary may come without the CRLF before it.
  size_t at = 0;
  if (body.substr(0, delimiter.size() - 2) == std::string_view(delimiter).substr(2)) {
    at = delimiter.size() - 2;
  } else {
    at = next_delimiter(0);
    if (at == std::string_view::npos) malformed("no opening boundary");
    at += delimiter.size();
  }
  std::vector<FormPart> parts;
  for (;;) {
    if (body.substr(at, 2) == "--") return parts;  // the closing boundary
    size_t line_end = body.find("\r\n", at);
    if (line_end == std::string_view::npos) malformed("a boundary line does not end");
    at = line_end + 2;
    size_t headers_end = body.find("\r\n\r\n", at);
    if (headers_end == std::string_view::npos) malformed("a part has no blank line after its headers");
    FormPart part;
    std::string_view headers = body.substr(at, headers_end - at);
    while (!headers.empty()) {
      size_t eol = headers.find("\r\n");
      std::string_view line = headers.substr(0, eol);
      headers = eol == std::string_view::npos ? std::string_view{} : headers.substr(eol + 2);
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string name = lower(trim(line.substr(0, colon)));
      std::string_view value = trim(line.substr(colon + 1));
      if (name == "content-disposition") {
        part.name = header_parameter(value, "name");
        part.filename = header_parameter(value, "filename");
      } else if (name == "content-type") {
        part.content_type = std::string(value);
      }
    }
    size_t data_start = headers_end + 4;
    size_t data_end = next_delimiter(data_start);
    if (data_end == std::string_view::npos) malformed("no closing boundary");
    part.data = body.substr(data_start, data_end - data_start);
    if (part.name.empty()) malformed("a part has no Content-Disposition name");
    parts.push_back(std::move(part));
    at = data_end + delimiter.size();
    if (at > body.size()) malformed("no closing boundary");
  }
}

}  // namespace upres::server
