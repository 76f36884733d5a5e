// Calibration for int8 inference (upres/int8.hpp): run the model in float32 (cpu backend) over
// picture crops, sample every activation a wide convolution reads, and pick for each, and for each
// of its channels, the clamp threshold with the least expected squared error; then tune them.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include <fmt/format.h>

#include "backend/backend.hpp"
#include "core/assert.hpp"
#include "upres/error.hpp"
#include "upres/int8.hpp"
#include "upres/quality.hpp"
#include "upres/upscaler.hpp"

namespace upres {
namespace {

constexpr int kPixelsPerPicture = 1024;  // pixels (all channels) sampled per activation per picture
constexpr int kMinInt8Channels = 16;     // as model/int8_plan.cpp

// Activations that some convolution with 16 or more input channels reads as its main input.
std::vector<int> activations_to_measure(const Graph& g) {
  std::set<int> blobs;
  for (const Node& n : g.nodes) {
    if (n.type != OpType::convolution) continue;
    const auto& p = n.p<ConvParams>();
    const int64_t per_input = int64_t(p.out_channels) * p.kernel_h * p.kernel_w;
    if (per_input > 0 && int64_t(n.weights[0].values.size()) / per_input >= kMinInt8Channels)
      blobs.insert(n.inputs[0]);
  }
  return {blobs.begin(), blobs.end()};
}

// The centre of `picture`, at most `crop` a side, padded as the upscaler pads a frame: by the
// model's border (replicated edges), then up to its alignment grid.
Tensor model_input(const Image& picture, int crop, const ModelGeometry& geo) {
  const int w = std::min(picture.width, crop), h = std::min(picture.height, crop);
  const int x0 = (picture.width - w) / 2, y0 = (picture.height - h) / 2;
  auto padded = [&](int len) {
    int n = len + 2 * geo.border;
    while ((n - geo.alignment_remainder) % geo.alignment) ++n;
    return n;
  };
  const int pw = padded(w), ph = padded(h);
  Tensor t(Shape{3, ph, pw});
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < ph; ++y)
      for (int x = 0; x < pw; ++x) {
        const int sy = std::clamp(y - geo.border, 0, h - 1), sx = std::clamp(x - geo.border, 0, w - 1);
        t.values[(size_t(c) * ph + y) * pw + x] = picture.at(c, y0 + sy, x0 + sx);
      }
  return t;
}

// `picture` with Gaussian noise of standard deviation `sigma` (in 0..1 units) added, clamped.
Image with_grain(const Image& picture, double sigma) {
  Image noisy = picture;
  std::mt19937 random(7);
  std::normal_distribution<float> noise(0.f, float(sigma));
  for (float& v : noisy.data) v = std::clamp(v + noise(random), 0.f, 1.f);
  return noisy;
}

// The threshold t minimising the expected squared error of clamping to [-t, t] and rounding to
// 255 steps, over a histogram of |x|: values past t cost (|x| - t)^2, values inside cost the
// rounding noise of a uniform error, step^2 / 12.
float best_threshold(const std::vector<float>& samples) {
  float largest = 0;
  for (float v : samples) largest = std::max(largest, std::abs(v));
  if (!(largest > 0)) return 1.f;  // all zero: any step will do
  constexpr int kBins = 4096;
  std::vector<double> count(kBins, 0.0);
  for (float v : samples) count[size_t(std::min(kBins - 1, int(std::abs(v) / largest * kBins)))] += 1;
  double best_error = INFINITY;
  float best = largest;
  for (int k = 16; k <= kBins; k += 8) {
    const double t = double(largest) * k / kBins, step = t / 127;
    double error = 0, inside = 0;
    for (int b = 0; b < kBins; ++b) {
      const double centre = (b + 0.5) * largest / kBins;
      if (centre > t)
        error += count[size_t(b)] * (centre - t) * (centre - t);
      else
        inside += count[size_t(b)];
    }
    error += inside * step * step / 12;
    if (error < best_error) {
      best_error = error;
      best = float(t);
    }
  }
  return best;
}

// How calibrate_int8 splits `count` pictures: the last `judging` judge the loss, the `tuning`
// before them tune, the first `sampled` are sampled.
struct PictureSplit {
  size_t sampled, tuning, judging;
};
PictureSplit split_pictures(size_t count) {
  const size_t judging = count >= 8 ? std::min<size_t>(16, count / 4) : 0;
  const size_t rest = count - judging;
  const size_t tuning = rest >= 4 ? std::min<size_t>(8, rest / 4) : 0;
  return {rest - tuning, tuning, judging};
}

// The centre of `picture`, `side` pixels a side at most, cut to a multiple of `scale`.
Image centre_crop(const Image& picture, int side, int scale) {
  const int w = std::min(picture.width, side) / scale * scale,
            h = std::min(picture.height, side) / scale * scale;
  const int x0 = (picture.width - w) / 2, y0 = (picture.height - h) / 2;
  Image crop(w, h, 3, picture.bit_depth);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) crop.at(c, y, x) = picture.at(c, y0 + y, x0 + x);
  return crop;
}

}  // namespace

std::vector<Image> calibration_tuning_pictures(const std::vector<Image>& pictures) {
  const PictureSplit s = split_pictures(pictures.size());
  if (s.tuning == 0) return std::vector<Image>(pictures.begin(), pictures.end() - long(s.judging));
  return std::vector<Image>(pictures.begin() + long(s.sampled),
                            pictures.begin() + long(s.sampled + s.tuning));
}

std::vector<Image> calibration_judging_pictures(const std::vector<Image>& pictures) {
  const PictureSplit s = split_pictures(pictures.size());
  return std::vector<Image>(pictures.end() - long(s.judging), pictures.end());
}

size_t calibration_picture_count(size_t sampled) {
  size_t count = sampled;
  while (split_pictures(count).sampled < sampled) ++count;
  UPRES_ASSERT(split_pictures(count).sampled == sampled);
  return count;
}

void keep_float_within_budget(const Model& model, Int8Calibration& table, const std::vector<Image>& judges,
                              const CalibrationOptions& options) {
  if (judges.empty()) throw Error(ErrorCode::invalid_argument, "judging the loss needs at least one picture");
  const int scale = model.geometry().scale;
  // The protocol of upres/quality.hpp on each picture's centre: shrink, upscale, compare luma.
  std::vector<Image> originals, small;
  for (const Image& p : judges) {
    Image crop = centre_crop(p, options.judge_side, scale);
    if (crop.width < 2 * scale + 11 || crop.height < 2 * scale + 11) continue;
    small.push_back(resize_image(crop, crop.width / scale, crop.height / scale, ResampleFilter::bicubic));
    originals.push_back(std::move(crop));
  }
  if (originals.empty()) throw Error(ErrorCode::invalid_argument, "the judging pictures are too small");
  std::shared_ptr<const Model> shared(&model, [](const Model*) {});  // borrowed for the Upscalers
  auto mean_psnr = [&](Upscaler& upscaler) {
    double sum = 0;
    for (size_t i = 0; i < small.size(); ++i)
      sum += psnr_y(luma_8bit(upscaler.upscale(small[i])), luma_8bit(originals[i]), scale);
    return sum / double(small.size());
  };
  UpscaleOptions exact;
  exact.max_memory = int64_t(8) << 30;
  Upscaler f32(shared, exact);
  const double reference = mean_psnr(f32);
  auto loss_of = [&](const Int8Calibration& t) {
    UpscaleOptions o = exact;
    o.precision = Precision::int8;
    o.int8_table = std::make_shared<Int8Calibration>(t);
    Upscaler int8(shared, o);
    return reference - mean_psnr(int8);
  };
  auto without = [](Int8Calibration t, const std::string& blob) {
    t.thresholds.erase(blob);
    t.channel_thresholds.erase(blob);
    t.float_layers.push_back(blob);
    return t;
  };
  double loss = loss_of(table);
  // Greedy: each round keeps in float32 the one activation whose int8 costs most; few rounds, as
  // the loss gathers in one or two layers (the last one, whose output is the added detail).
  while (loss > options.max_loss_db && !table.thresholds.empty()) {
    std::string best;
    double best_loss = INFINITY;
    for (const auto& [blob, t] : table.thresholds) {
      const double l = loss_of(without(table, blob));
      if (l < best_loss) {
        best_loss = l;
        best = blob;
      }
    }
    if (best.empty()) break;  // every trial failed to measure (NaN): keep what there is
    table = without(table, best);
    loss = best_loss;
  }
  table.loss_db = std::max(0.0, loss);
}

Int8Calibration calibrate_int8(const Model& model, const std::vector<Image>& pictures,
                               const CalibrationOptions& options) {
  if (pictures.empty()) throw Error(ErrorCode::invalid_argument, "calibration needs at least one picture");
  if (options.crop < 16)
    throw Error(ErrorCode::invalid_argument, "calibration crops must be 16 pixels or more");
  // The graph as the cpu backend runs it (activations fused): the blobs the int8 plan reads.
  const ModelGeometry& geo = model.geometry();
  auto backend = make_cpu_backend(0);
  const int probe = 64 * geo.alignment + geo.alignment_remainder;
  const std::unique_ptr<Graph> graph = backend->prepare(model.graph(), {3, probe, probe});
  const std::vector<int> wanted = activations_to_measure(*graph);
  // samples[blob][channel]: values at the same sampled pixels of every channel.
  std::vector<std::vector<std::vector<float>>> samples(graph->blob_names.size());
  std::mt19937 random(12345);
  std::map<std::pair<int, int>, std::unique_ptr<Executor>> executors;  // by input size
  // The tuning and judging pictures are held back; the rest is sampled.
  const size_t used =
      std::min(split_pictures(pictures.size()).sampled, size_t(std::max(1, options.max_pictures)));
  std::vector<const Image*> sampled;
  std::vector<Image> grainy;
  grainy.reserve(used);
  for (size_t i = 0; i < used; ++i) {
    if (pictures[i].channels < 3)
      throw Error(ErrorCode::invalid_argument, fmt::format("calibration picture {} is not RGB", i + 1));
    sampled.push_back(&pictures[i]);
    if (options.grain > 0 && i % 4 == 3)
      sampled.push_back(&grainy.emplace_back(with_grain(pictures[i], options.grain)));
  }
  for (const Image* picture : sampled) {
    Tensor input = model_input(*picture, options.crop, geo);
    auto& exec = executors[{input.shape.h, input.shape.w}];
    if (!exec) exec = backend->compile(*graph, input.shape, wanted);
    Tensor output(exec->output_shape());
    exec->run_observed(input.view(), output.view(), [&](int blob, const TensorView& v) {
      auto& channels = samples[size_t(blob)];
      channels.resize(size_t(v.shape.c));
      const int64_t plane = int64_t(v.shape.h) * v.shape.w;
      std::uniform_int_distribution<int64_t> pick(0, plane - 1);
      for (int k = 0; k < kPixelsPerPicture && k < plane; ++k) {
        const int64_t at = plane <= kPixelsPerPicture ? k : pick(random);
        for (int c = 0; c < v.shape.c; ++c) channels[size_t(c)].push_back(v.data[c * plane + at]);
      }
    });
  }
  Int8Calibration table;
  table.model = model.name();
  table.weights_sha256 = file_sha256(model.weights_path());
  table.measured_on = options.measured_on;
  table.pictures = int(used);  // the grainy copies are not counted
  for (int blob : wanted) {
    const std::string& name = graph->blob_names[size_t(blob)];
    std::vector<float> all;
    for (const auto& channel : samples[size_t(blob)]) {
      table.channel_thresholds[name].push_back(best_threshold(channel));
      all.insert(all.end(), channel.begin(), channel.end());
    }
    table.thresholds[name] = best_threshold(all);
  }
  tune_int8(model, table, calibration_tuning_pictures(pictures), options);
  const std::vector<Image> judges = calibration_judging_pictures(pictures);
  if (!judges.empty()) keep_float_within_budget(model, table, judges, options);
  return table;
}

void tune_int8(const Model& model, Int8Calibration& table, const std::vector<Image>& pictures,
               const CalibrationOptions& options) {
  if (pictures.empty()) throw Error(ErrorCode::invalid_argument, "tuning needs at least one picture");
  // One crop size for all, so each Upscaler compiles once: the centre, up to 128 pixels a side.
  constexpr int kMaxPictures = 8;
  const size_t used = std::min(pictures.size(), size_t(kMaxPictures));
  int side = 128;
  for (size_t i = 0; i < used; ++i) side = std::min({side, pictures[i].width, pictures[i].height});
  std::vector<Image> crops;
  for (size_t i = 0; i < used; ++i) {
    const Image& p = pictures[i];
    const int x0 = (p.width - side) / 2, y0 = (p.height - side) / 2;
    Image crop(side, side, 3, p.bit_depth);
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < side; ++y)
        for (int x = 0; x < side; ++x) crop.at(c, y, x) = p.at(c, y0 + y, x0 + x);
    // Half of them grainy too: the settings must suit clean and grainy sources alike.
    if (options.grain > 0 && i % 2 == 1) crops.push_back(with_grain(crop, options.grain));
    crops.push_back(std::move(crop));
  }
  std::shared_ptr<const Model> shared(&model, [](const Model*) {});  // borrowed for the Upscalers
  UpscaleOptions exact;
  exact.max_memory = int64_t(8) << 30;
  Upscaler f32(shared, exact);
  std::vector<Image> expected;
  for (const Image& crop : crops) expected.push_back(f32.upscale(crop));
  double best_psnr = -1, best_factor = 1, best_equalization = 0;
  for (double equalization : {0.0, 0.5, 1.0})
    for (double factor : {1.0, 0.9, 0.8, 0.7, 0.6}) {
      if (equalization > 0 && table.channel_thresholds.empty()) continue;
      auto tried = std::make_shared<Int8Calibration>(table);
      for (auto& [blob, t] : tried->thresholds) t = float(t * factor);
      for (auto& [blob, channels] : tried->channel_thresholds)
        for (float& t : channels) t = float(t * factor);
      tried->equalization = equalization;
      UpscaleOptions o = exact;
      o.precision = Precision::int8;
      o.int8_table = tried;
      Upscaler int8(shared, o);
      double mse = 0;  // averaged over the crops, then made a PSNR
      for (size_t i = 0; i < crops.size(); ++i) {
        const double psnr = psnr_8bit(int8.upscale(crops[i]), expected[i]);
        mse += 255.0 * 255.0 / std::pow(10.0, psnr / 10) / double(crops.size());
      }
      const double psnr = 10 * std::log10(255.0 * 255.0 / std::max(mse, 1e-12));
      if (psnr > best_psnr) {
        best_psnr = psnr;
        best_factor = factor;
        best_equalization = equalization;
      }
    }
  for (auto& [blob, t] : table.thresholds) t = float(t * best_factor);
  for (auto& [blob, channels] : table.channel_thresholds)
    for (float& t : channels) t = float(t * best_factor);
  table.equalization = best_equalization;
  table.fidelity_db = best_psnr;
}

}  // namespace upres
