// libFuzzer target for int8 calibration tables (NAME.int8.json files beside a user's model).
// Anything but upres::Error is a bug.
#include <cstdint>
#include <string>

#include "upres/error.hpp"
#include "upres/int8.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)upres::calibration_from_json(std::string(reinterpret_cast<const char*>(data), size),
                                       "fuzz.int8.json");
  } catch (const upres::Error&) {
  }
  return 0;
}
