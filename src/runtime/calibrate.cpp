// Calibration for int8 inference (upres/int8.hpp): run the model in float32 with the reference
// kernels over picture crops, sample every activation a wide convolution reads, and pick for each
// the clamp threshold with the least expected squared error.
#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include <fmt/format.h>

#include "backend/backend.hpp"
#include "upres/error.hpp"
#include "upres/int8.hpp"

namespace upres {
namespace {

constexpr int kSamplesPerPicture = 1 << 15;  // values kept per activation per picture
constexpr int kMinInt8Channels = 16;         // as model/int8_plan.cpp

// Activations that some convolution with 16 or more input channels reads as its main input.
std::set<int> activations_to_measure(const Graph& g) {
  std::set<int> blobs;
  for (const Node& n : g.nodes) {
    if (n.type != OpType::convolution) continue;
    const auto& p = n.p<ConvParams>();
    const int64_t per_input = int64_t(p.out_channels) * p.kernel_h * p.kernel_w;
    if (per_input > 0 && int64_t(n.weights[0].values.size()) / per_input >= kMinInt8Channels)
      blobs.insert(n.inputs[0]);
  }
  return blobs;
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

}  // namespace

Int8Calibration calibrate_int8(const Model& model, const std::vector<Image>& pictures,
                               const CalibrationOptions& options) {
  if (pictures.empty()) throw Error(ErrorCode::invalid_argument, "calibration needs at least one picture");
  if (options.crop < 16)
    throw Error(ErrorCode::invalid_argument, "calibration crops must be 16 pixels or more");
  const Graph& graph = model.graph();
  const std::set<int> wanted = activations_to_measure(graph);
  std::vector<std::vector<float>> samples(graph.blob_names.size());
  std::mt19937 random(12345);
  const size_t used = std::min(pictures.size(), size_t(std::max(1, options.max_pictures)));
  for (size_t i = 0; i < used; ++i) {
    if (pictures[i].channels < 3)
      throw Error(ErrorCode::invalid_argument, fmt::format("calibration picture {} is not RGB", i + 1));
    Tensor input = model_input(pictures[i], options.crop, model.geometry());
    Tensor output(graph.infer_shapes(input.shape)[size_t(graph.output_blob)]);
    run_reference_observed(graph, input.view(), output.view(), [&](int blob, const TensorView& v) {
      if (!wanted.count(blob)) return;
      const int64_t n = v.shape.size();
      std::uniform_int_distribution<int64_t> pick(0, n - 1);
      for (int k = 0; k < kSamplesPerPicture && k < n; ++k)
        samples[size_t(blob)].push_back(n <= kSamplesPerPicture ? v.data[k] : v.data[pick(random)]);
    });
  }
  Int8Calibration table;
  table.model = model.name();
  table.weights_sha256 = file_sha256(model.weights_path());
  table.measured_on = options.measured_on;
  table.pictures = int(used);
  for (int blob : wanted)
    table.thresholds[graph.blob_names[size_t(blob)]] = best_threshold(samples[size_t(blob)]);
  return table;
}

}  // namespace upres
