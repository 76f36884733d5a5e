// libFuzzer target for the image decoders (PNG, JPEG, WebP and the EXIF orientation inside them):
// the header probe, then a full decode under a small pixel cap. Anything but upres::Error is a
// bug; so is a decoded image whose size disagrees with its header.
#include <cstdint>
#include <utility>
#include <vector>

#include "upres/error.hpp"
#include "upres/image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  try {
    const upres::ImageInfo info = upres::probe_image(bytes, "fuzz");
    const upres::Image image = upres::decode_image(bytes, "fuzz", 1 << 18);
    const bool same = image.width == info.width && image.height == info.height;
    const bool turned = image.width == info.height && image.height == info.width;  // EXIF orientation
    if (!same && !turned) __builtin_trap();
  } catch (const upres::Error&) {
  }
  return 0;
}
