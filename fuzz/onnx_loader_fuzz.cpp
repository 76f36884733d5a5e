// libFuzzer target for the ONNX loader: the input is an .onnx file's bytes; a loaded graph also runs
// shape inference. Anything but upres::Error is a bug. Build and run: scripts/fuzz.sh 60 onnx_loader_fuzz.
#include <cstdint>
#include <string>

#include "model/onnx_loader.hpp"
#include "upres/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto graph =
        upres::load_onnx_from_memory(std::string(reinterpret_cast<const char*>(data), size), "fuzz.onnx");
    graph->infer_shapes({3, 16 * graph->input_alignment, 16 * graph->input_alignment});
  } catch (const upres::Error&) {
  }
  return 0;
}
