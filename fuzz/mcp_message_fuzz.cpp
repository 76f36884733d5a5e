// libFuzzer target for `upres mcp`: each input is the text an agent writes on stdin (any number
// of JSON-RPC lines), run through the real MCP server to the end of the input. Anything but a
// JSON-RPC answer (a crash, an abort on a JSON type error, a sanitizer report) is a bug.
#include <cstdint>
#include <sstream>
#include <string>

#include "fuzz_support.hpp"
#include "upres/server.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  upres::ServiceOptions o;
  o.root = upres::fuzz::scratch_root().string();
  upres::fuzz::limit_service(o);
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  std::ostringstream out, log;
  upres::run_mcp_server(in, out, log, o);
  return 0;
}
