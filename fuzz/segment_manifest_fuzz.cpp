// libFuzzer target for a segmented job's manifest (DIR/manifest.json, on a shared filesystem that
// any task or user may have written): anything but upres::Error is a bug, and a manifest that
// reads must print back to the same text after one round trip.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "pipeline/segments_internal.hpp"
#include "upres/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const upres::SegmentManifest m = upres::segment_manifest_from_json(text, "work");
    const std::string once = upres::segment_manifest_json(m);
    if (upres::segment_manifest_json(upres::segment_manifest_from_json(once, "work")) != once) std::abort();
  } catch (const upres::Error&) {
  }
  return 0;
}
