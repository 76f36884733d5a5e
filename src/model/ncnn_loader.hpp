// Reads ncnn models (.param text + .bin weights) into the graph IR.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ops/graph.hpp"
#include "upres/files.hpp"  // read_file_bytes

namespace upres {

// Throws Error(invalid_model) naming the file, line and layer for anything malformed, and
// Error(not_found) / Error(io_failure) when a file cannot be read.
std::unique_ptr<Graph> load_ncnn(const std::string& param_path, const std::string& bin_path);

// The same from memory; the names are used in error messages. This is what the fuzz target drives.
std::unique_ptr<Graph> load_ncnn_from_memory(const std::string& param_text,
                                             const std::vector<uint8_t>& bin_bytes,
                                             const std::string& param_name, const std::string& bin_name);

}  // namespace upres
