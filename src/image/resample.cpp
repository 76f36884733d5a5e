// Separable resampling. When shrinking, the kernel is stretched by the shrink factor so every
// input pixel contributes (antialiasing, as MATLAB's imresize does); samples past the edge
// mirror back into the image.
#include "image/resizer.hpp"

#include <algorithm>
#include <cmath>

#include "core/assert.hpp"
#include "upres/error.hpp"

namespace upres {
namespace {

constexpr double kPi = 3.14159265358979323846;

double kernel(ResampleFilter f, double x) {
  x = std::fabs(x);
  switch (f) {
    case ResampleFilter::nearest: return x < 0.5 ? 1 : 0;
    case ResampleFilter::bilinear: return x < 1 ? 1 - x : 0;
    case ResampleFilter::bicubic:  // Keys, a = -0.5 (MATLAB)
      if (x <= 1) return (1.5 * x - 2.5) * x * x + 1;
      if (x < 2) return ((-0.5 * x + 2.5) * x - 4) * x + 2;
      return 0;
    case ResampleFilter::lanczos3:
      if (x < 1e-12) return 1;
      if (x >= 3) return 0;
      return 3 * std::sin(kPi * x) * std::sin(kPi * x / 3) / (kPi * kPi * x * x);
  }
  return 0;
}

double support(ResampleFilter f) {
  switch (f) {
    case ResampleFilter::nearest: return 0.5;
    case ResampleFilter::bilinear: return 1;
    case ResampleFilter::bicubic: return 2;
    case ResampleFilter::lanczos3: return 3;
  }
  return 1;
}

int mirror(int i, int n) {
  if (n == 1) return 0;
  const int period = 2 * n;
  i = ((i % period) + period) % period;
  return i < n ? i : period - 1 - i;
}

std::vector<Resizer::Taps> axis_taps(int in, int out, ResampleFilter f) {
  const double scale = double(out) / in;
  const double stretch = scale < 1 && f != ResampleFilter::nearest ? 1 / scale : 1;
  const double reach = support(f) * stretch;
  std::vector<Resizer::Taps> c(static_cast<size_t>(out));
  for (int o = 0; o < out; ++o) {
    const double center = (o + 0.5) / scale - 0.5;
    const int lo = int(std::floor(center - reach)), hi = int(std::ceil(center + reach));
    double total = 0;
    for (int i = lo; i <= hi; ++i) {
      double wgt = kernel(f, (i - center) / stretch);
      if (wgt == 0) continue;
      c[size_t(o)].index.push_back(mirror(i, in));
      c[size_t(o)].weight.push_back(float(wgt));
      total += wgt;
    }
    for (float& wgt : c[size_t(o)].weight) wgt = float(wgt / total);
  }
  return c;
}

}  // namespace

void reshape_image(Image& image, int width, int height, int channels, int bit_depth) {
  if (image.width != width || image.height != height || image.channels != channels)
    image = Image(width, height, channels, bit_depth);
  image.bit_depth = bit_depth;
}

Resizer::Resizer(int in_width, int in_height, int out_width, int out_height, ResampleFilter filter)
    : in_w_(in_width), in_h_(in_height), out_w_(out_width), out_h_(out_height), filter_(filter) {
  if (out_width <= 0 || out_height <= 0 || in_width <= 0 || in_height <= 0)
    throw Error(ErrorCode::invalid_argument, "resize needs positive sizes");
  taps_x_ = axis_taps(in_width, out_width, filter);
  taps_y_ = axis_taps(in_height, out_height, filter);
}

bool Resizer::matches(int in_width, int in_height, int out_width, int out_height,
                      ResampleFilter filter) const {
  return in_w_ == in_width && in_h_ == in_height && out_w_ == out_width && out_h_ == out_height &&
         filter_ == filter;
}

void Resizer::run(const Image& image, Image& out) {
  UPRES_ASSERT(image.width == in_w_ && image.height == in_h_);
  reshape_image(tmp_, out_w_, in_h_, image.channels, image.bit_depth);
  reshape_image(out, out_w_, out_h_, image.channels, image.bit_depth);
#pragma omp parallel for
  for (int c = 0; c < image.channels; ++c) {
    for (int y = 0; y < in_h_; ++y)
      for (int x = 0; x < out_w_; ++x) {
        const Taps& k = taps_x_[size_t(x)];
        double sum = 0;
        for (size_t i = 0; i < k.index.size(); ++i) sum += k.weight[i] * image.at(c, y, k.index[i]);
        tmp_.at(c, y, x) = float(sum);
      }
    for (int y = 0; y < out_h_; ++y) {
      const Taps& k = taps_y_[size_t(y)];
      for (int x = 0; x < out_w_; ++x) {
        double sum = 0;
        for (size_t i = 0; i < k.index.size(); ++i) sum += k.weight[i] * tmp_.at(c, k.index[i], x);
        out.at(c, y, x) = float(sum);
      }
    }
  }
}

Image resize_image(const Image& image, int width, int height, ResampleFilter filter) {
  if (image.width <= 0 || image.height <= 0)
    throw Error(ErrorCode::invalid_argument, "resize needs positive sizes");
  Resizer resizer(image.width, image.height, width, height, filter);
  Image out;
  resizer.run(image, out);
  return out;
}

}  // namespace upres
