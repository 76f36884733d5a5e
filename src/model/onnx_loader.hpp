// Reads ONNX models (.onnx) into the graph IR; see onnx_loader.cpp for how.
#pragma once

#include <memory>
#include <string>

#include "ops/graph.hpp"

namespace upres {

// Throws Error(invalid_model) naming the file, node and op for anything malformed or not
// supported, and Error(not_found) / Error(io_failure) when the file cannot be read.
std::unique_ptr<Graph> load_onnx(const std::string& path);

// The same from memory; `name` is used in messages. This is what the fuzz target drives.
std::unique_ptr<Graph> load_onnx_from_memory(const std::string& bytes, const std::string& name);

}  // namespace upres
