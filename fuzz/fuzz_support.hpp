// What the fuzz targets share: a scratch root folder with a small picture and a small clip in
// it (so requests that name files can reach real work), removed when the fuzzer exits, and
// service limits small enough that one input costs milliseconds.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "image/test_pattern.hpp"
#include "media/test_video.hpp"
#include "upres/image.hpp"
#include "upres/service.hpp"
#include "upres/video.hpp"

namespace upres::fuzz {

inline const std::filesystem::path& scratch_root() {
  static const std::filesystem::path root = [] {
    char pattern[] = "/tmp/upres-fuzz-XXXXXX";
    std::filesystem::path made = ::mkdtemp(pattern);
    write_image(make_test_pattern(16, 12), (made / "pic.png").string());
    TestVideoSpec spec;
    spec.width = 32;
    spec.height = 24;
    spec.frames = 2;
    write_test_video((made / "clip.mp4").string(), spec);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_root(), ec);
    });
    return made;
  }();
  return root;
}

inline void limit_service(ServiceOptions& o) {
  o.max_input_pixels = 64 * 64;
  o.max_output_side = 128;
  o.max_image_file_bytes = 1 << 20;
  o.engine.threads = 1;
}

}  // namespace upres::fuzz
