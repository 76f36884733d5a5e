// libFuzzer target for multipart/form-data bodies: the input's first line is the Content-Type
// header value, the rest the body. Anything but upres::Error is a bug.
#include <cstdint>
#include <string_view>

#include "server/multipart.hpp"
#include "upres/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t eol = input.find('\n');
  const std::string_view content_type = input.substr(0, eol);
  const std::string_view body = eol == std::string_view::npos ? std::string_view{} : input.substr(eol + 1);
  try {
    for (const auto& part :
         upres::server::parse_multipart(body, upres::server::multipart_boundary(content_type)))
      if (part.data.data() < body.data() || part.data.data() + part.data.size() > body.data() + body.size())
        __builtin_trap();  // a part must lie inside the body
  } catch (const upres::Error&) {
  }
  return 0;
}
