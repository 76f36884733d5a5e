// multipart/form-data (RFC 7578) bodies: the web page and curl -F send uploads this way.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace upres::server {

struct FormPart {
  std::string name;      // the form field
  std::string filename;  // set for file parts
  std::string content_type;
  std::string_view data;  // points into the body given to parse_multipart
};

// The boundary parameter of a multipart/form-data Content-Type; "" when it is another type.
std::string multipart_boundary(std::string_view content_type);

// Splits a whole body into its parts. Throws Error(invalid_argument) naming what is malformed
// (no opening boundary, a part without headers, no closing boundary).
std::vector<FormPart> parse_multipart(std::string_view body, const std::string& boundary);

}  // namespace upres::server
