// libFuzzer target for saved video plans (`upres probe --json`, the work folder of a segmented
// job): the input is the text of a plan. Anything but upres::Error is a bug, and a plan that reads
// must print back to the same text after one round trip.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "upres/error.hpp"
#include "upres/video.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const upres::VideoPlan plan = upres::video_plan_from_json(text);
    const std::string once = upres::video_plan_json(plan);
    if (upres::video_plan_json(upres::video_plan_from_json(once)) != once) std::abort();
  } catch (const upres::Error&) {
  }
  return 0;
}
