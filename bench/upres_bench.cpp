// Times one model on one frame: ms per frame (median of N runs after a warm-up), full frame.
//   upres_bench MODEL [--width 640] [--height 360] [--runs 3] [--threads 2] [--backend cpu] [--device 0]
//               [--precision f32|int8] [--input frame.f32 | --image picture.png] [--dump out.f32]
//               [--fidelity 1]
// --input reads a planar float32 RGB frame of width x height (so a peer can run the same
// pixels); --image takes the frame from a picture (its centre, or all of it when smaller);
// --dump writes the upscaled frame as planar float32, for parity checks; --fidelity also runs
// float32 and prints the PSNR of this precision's 8-bit output against float32's.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "image/test_pattern.hpp"
#include "upres/error.hpp"
#include "upres/quality.hpp"
#include "upres/upscaler.hpp"

using namespace upres;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: upres_bench MODEL [--width W] [--height H] [--runs N] [--threads T] "
                 "[--backend cpu|vulkan|reference] [--device N] [--input f32] [--dump f32]\n");
    return 2;
  }
  std::string model_name = argv[1], input_path, image_path, dump_path, backend = "cpu", precision = "f32";
  int width = 640, height = 360, runs = 3, threads = 2, device = 0;
  bool fidelity = false;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--width")
      width = std::stoi(value);
    else if (flag == "--height")
      height = std::stoi(value);
    else if (flag == "--runs")
      runs = std::stoi(value);
    else if (flag == "--threads")
      threads = std::stoi(value);
    else if (flag == "--backend")
      backend = value;
    else if (flag == "--device")
      device = std::stoi(value);
    else if (flag == "--precision")
      precision = value;
    else if (flag == "--image")
      image_path = value;
    else if (flag == "--fidelity")
      fidelity = value != "0";
    else if (flag == "--input")
      input_path = value;
    else if (flag == "--dump")
      dump_path = value;
    else {
      std::fprintf(stderr, "unknown option %s\n", flag.c_str());
      return 2;
    }
  }
  try {
    Image frame = make_test_pattern(width, height, 1);
    if (!input_path.empty()) {
      std::ifstream f(input_path, std::ios::binary);
      f.read(reinterpret_cast<char*>(frame.data.data()), std::streamsize(frame.data.size() * sizeof(float)));
      if (!f)
        throw Error(ErrorCode::invalid_argument, input_path + ": not a planar float32 frame of that size");
    }
    if (!image_path.empty()) {
      Image picture = read_image(image_path);
      width = std::min(width, picture.width);
      height = std::min(height, picture.height);
      frame = Image(width, height, 3);
      const int x0 = (picture.width - width) / 2, y0 = (picture.height - height) / 2;
      for (int c = 0; c < 3; ++c)
        for (int y = 0; y < height; ++y)
          for (int x = 0; x < width; ++x) frame.at(c, y, x) = picture.at(c, y0 + y, x0 + x);
    }
    auto model = Model::load(model_name);
    UpscaleOptions o;
    o.backend = backend;
    o.precision = precision_from_name(precision);
    o.threads = threads;
    o.device = device;
    o.max_memory = int64_t(16) << 30;  // full frame
    Upscaler up(model, o);
    Image out = up.upscale(frame);  // warm-up: compiles primitives, reorders weights
    std::vector<double> ms;
    for (int r = 0; r < runs; ++r) {
      out = up.upscale(frame);
      ms.push_back(up.last_stats().seconds * 1000);
    }
    std::sort(ms.begin(), ms.end());
    std::printf(
        "%s %dx%d backend=%s precision=%s threads=%d runs=%d median_ms=%.3f min_ms=%.3f macs_per_px=%.0f "
        "border=%d align=%d,%d\n",
        model_name.c_str(), width, height, backend.c_str(), precision.c_str(), threads, runs,
        ms[ms.size() / 2], ms[0], model->macs_per_input_pixel(), model->geometry().border,
        model->geometry().alignment, model->geometry().alignment_remainder);
    if (fidelity) {
      UpscaleOptions exact = o;
      exact.precision = Precision::f32;
      Image reference = Upscaler(model, exact).upscale(frame);
      std::printf("fidelity: %.2f dB PSNR (8-bit RGB) against float32\n", psnr_8bit(out, reference));
    }
    if (!dump_path.empty()) {
      std::ofstream f(dump_path, std::ios::binary);
      f.write(reinterpret_cast<const char*>(out.data.data()),
              std::streamsize(out.data.size() * sizeof(float)));
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "upres_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
