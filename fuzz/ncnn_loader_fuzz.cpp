// libFuzzer target for the ncnn loader. The input is split at the first NUL byte into .param
// text and .bin bytes; a loaded graph also runs shape inference. Anything but upres::Error is
// a bug. Build and run: make fuzz (scripts/fuzz.sh).
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "model/ncnn_loader.hpp"
#include "upres/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint8_t* split = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  const size_t text_size = split ? size_t(split - data) : size;
  std::string param(reinterpret_cast<const char*>(data), text_size);
  std::vector<uint8_t> bin;
  if (split) bin.assign(split + 1, data + size);
  try {
    auto graph = upres::load_ncnn_from_memory(param, bin, "fuzz.param", "fuzz.bin");
    graph->infer_shapes({3, 9, 7});
  } catch (const upres::Error&) {
  }
  return 0;
}
