// upres: the library's version.
#pragma once

namespace upres {

// "MAJOR.MINOR.PATCH", from project(upres VERSION ...) in CMakeLists.txt (compiled into a
// generated source, so the number is written in one place). `upres --version`, the HTTP
// service's /healthz and the MCP server's serverInfo all report it.
const char* upres_version();

}  // namespace upres
