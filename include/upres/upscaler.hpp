// upres: run a model over images.
//
//   auto model = upres::Model::load("realesr-animevideov3-x4");
//   upres::Upscaler upscaler(model, {});          // cpu backend, automatic tiling
//   upres::Image big = upscaler.upscale(upres::read_image("in.png"));
//   upres::write_image(big, "out.png");
//
// An Upscaler owns per-run scratch memory and compiled kernels (created once per input shape and
// reused), so it is not thread-safe; make one per thread. They can share one Model.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "upres/backend.hpp"
#include "upres/image.hpp"
#include "upres/model.hpp"

namespace upres {

struct Int8Calibration;

struct UpscaleOptions {
  // A registered backend (upres/backend.hpp): cpu, vulkan, reference, ..., or auto: a real GPU
  // when there is one (never a software driver), else cpu.
  std::string backend = "auto";
  int device = 0;  // index among the backend's devices (`upres devices` lists them)
  Precision precision = Precision::f32;
  // For int8: this table instead of the model's own (calibration uses it to try tables out).
  std::shared_ptr<const Int8Calibration> int8_table;
  int threads = 0;  // 0: all cores
  // Tile side in input pixels. 0: automatic from max_memory (full frame when it fits).
  int tile = 0;
  // Extra input pixels a side around each tile. -1: the model's receptive radius, capped so
  // that deep networks (RRDB) stay affordable.
  int tile_overlap = -1;
  int64_t max_memory = int64_t(2) << 30;  // bytes of activations the backend may hold at once
  int scale = 0;                          // requested output scale; 0: the model's native scale
  // An exact output size for every picture instead (both set): the model runs at its own scale
  // and the resample gives this size (video at a target resolution).
  int output_width = 0, output_height = 0;
  ResampleFilter resample = ResampleFilter::lanczos3;  // used when the output is not the model's size
  // The self-ensemble (realesrgan-ncnn-vulkan's -x): the picture is upscaled in its eight flips
  // and quarter turns, each turned back, and the eight averaged. Eight times the work.
  bool tta = false;
  int max_output_side = 16384;  // refuse outputs wider or taller than this before any work
};

// Limits of the numbers in UpscaleOptions (and of images a side), shared by every front end.
constexpr int kMaxScale = 16;
constexpr int kMaxThreads = 256;
constexpr int kMaxTileOverlap = 256;
constexpr int kMaxImageSide = 65536;
constexpr int64_t kMinMemoryBudget = int64_t(1) << 20;
constexpr int64_t kMaxMemoryBudget = int64_t(16) << 40;

// Throws Error(invalid_argument) naming the option and its range when a number is out of range, or
// the backend when it is not registered (threads 0..256, tile 0 or 16..65536, tile_overlap -1..256,
// max_memory 1M..16T, scale 0..16, max_output_side 16..65536). The Upscaler checks this itself; front ends
// call it to refuse bad settings before they start anything.
void check_upscale_options(const UpscaleOptions& options);

struct UpscaleStats {
  int tiles = 0;  // 1 for full-frame execution
  int tile_size = 0;
  double seconds = 0;  // wall time of the last upscale()
};

class FramePath;

class Upscaler {
 public:
  Upscaler(std::shared_ptr<const Model> model, const UpscaleOptions& options);
  ~Upscaler();
  Upscaler(const Upscaler&) = delete;
  Upscaler& operator=(const Upscaler&) = delete;

  // Upscales colour channels through the model; alpha is upscaled separately with the resample
  // filter. Throws Error(limit_exceeded) when the output would pass max_output_pixels.
  Image upscale(const Image& input);
  // The same into `output`, whose buffer is reused when its shape already matches: after the
  // first frame of a given size, this allocates nothing (the video pipeline relies on it).
  void upscale_into(const Image& input, Image& output);
  const UpscaleStats& last_stats() const { return stats_; }
  // Called after each tile of a picture is stitched (tiles done so far, tiles in the picture; a
  // picture of one tile gives (1, 1)): for progress lines. The self-ensemble counts each pass.
  void set_tile_progress(std::function<void(int done, int total)> callback) {
    tile_progress_ = std::move(callback);
  }
  const Model& model() const { return *model_; }
  // Throws Error(limit_exceeded) when an input of this size would give an output over
  // max_output_side: call it with the size from an image's header (probe_image) to refuse a huge
  // picture before decoding it.
  void check_input_size(int64_t width, int64_t height) const;
  // The backend it runs on (auto resolved).
  const std::string& backend() const { return options_.backend; }
  // The precision it runs at: f32, f16 or int8 (automatic resolved).
  Precision precision() const { return precision_; }
  int output_scale() const;
  // The output's size for a width x height input: output_width x output_height when set, else
  // the input times output_scale().
  std::pair<int64_t, int64_t> output_size(int64_t width, int64_t height) const;

 private:
  friend class FramePath;  // runs whole video frames on the same backend (runtime/frame_path.hpp)
  void upscale_once(const Image& input, Image& output);
  bool native_only_ = false;  // upscale_once at the model's scale (the ensemble resamples after)
  struct Impl;
  std::shared_ptr<const Model> model_;
  UpscaleOptions options_;
  Precision precision_ = Precision::f32;
  std::unique_ptr<Impl> impl_;
  UpscaleStats stats_;
  std::function<void(int, int)> tile_progress_;
};

}  // namespace upres
