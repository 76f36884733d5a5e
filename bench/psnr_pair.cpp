// psnr_pair A B: the PSNR of picture A against picture B in 8-bit steps over all channels (the
// benchmarks' fidelity column). Prints the number, or "inf" for identical pictures.
#include <cmath>
#include <cstdio>
#include <exception>

#include "upres/image.hpp"
#include "upres/quality.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: psnr_pair A B\n");
    return 2;
  }
  try {
    const upres::Image a = upres::read_image(argv[1]), b = upres::read_image(argv[2]);
    if (a.width != b.width || a.height != b.height || a.channels != b.channels) {
      std::fprintf(stderr, "psnr_pair: %s and %s differ in size\n", argv[1], argv[2]);
      return 1;
    }
    const double db = upres::psnr_8bit(a, b);
    if (std::isinf(db))
      std::printf("inf\n");
    else
      std::printf("%.2f\n", db);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "psnr_pair: %s\n", e.what());
    return 1;
  }
  return 0;
}
