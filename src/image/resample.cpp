// Separable resampling. When shrinking, the kernel is stretched by the shrink factor so every
// input pixel contributes (antialiasing, as MATLAB's imresize does); samples past the edge
// mirror back into the image.
#include <algorithm>
#include <cmath>

#include "upres/error.hpp"
#include "upres/image.hpp"

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

struct Contribution {
  int first;
  std::vector<int> index;
  std::vector<float> weight;
};

std::vector<Contribution> contributions(int in, int out, ResampleFilter f) {
  const double scale = double(out) / in;
  const double stretch = scale < 1 && f != ResampleFilter::nearest ? 1 / scale : 1;
  const double reach = support(f) * stretch;
  std::vector<Contribution> c(static_cast<size_t>(out));
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

Image resize_image(const Image& image, int width, int height, ResampleFilter filter) {
  if (width <= 0 || height <= 0 || image.width <= 0 || image.height <= 0)
    throw Error(ErrorCode::invalid_argument, "resize needs positive sizes");
  const auto cx = contributions(image.width, width, filter);
  const auto cy = contributions(image.height, height, filter);
  Image tmp(width, image.height, image.channels, image.bit_depth);
  Image out(width, height, image.channels, image.bit_depth);
#pragma omp parallel for
  for (int c = 0; c < image.channels; ++c) {
    for (int y = 0; y < image.height; ++y)
      for (int x = 0; x < width; ++x) {
        const Contribution& k = cx[size_t(x)];
        double sum = 0;
        for (size_t i = 0; i < k.index.size(); ++i) sum += k.weight[i] * image.at(c, y, k.index[i]);
        tmp.at(c, y, x) = float(sum);
      }
    for (int y = 0; y < height; ++y) {
      const Contribution& k = cy[size_t(y)];
      for (int x = 0; x < width; ++x) {
        double sum = 0;
        for (size_t i = 0; i < k.index.size(); ++i) sum += k.weight[i] * tmp.at(c, k.index[i], x);
        out.at(c, y, x) = float(sum);
      }
    }
  }
  return out;
}

}  // namespace upres
