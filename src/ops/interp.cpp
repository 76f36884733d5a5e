// Resize by nearest, bilinear or bicubic interpolation (ncnn's Interp). Pixel centres sit at
// half-integer coordinates unless align_corners; samples outside the input clamp to its edge;
// bicubic uses a = -0.75. No antialiasing, as in the frameworks these models come from.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "ops/interp.hpp"

namespace upres {
namespace {

std::vector<Shape> infer(const Node& node, const std::vector<Shape>& in) {
  check_input_count(node, in, 1, 1);
  const auto& p = node.p<InterpParams>();
  Shape out = in[0];
  out.h = p.out_h > 0 ? p.out_h : int(in[0].h * p.scale_h);
  out.w = p.out_w > 0 ? p.out_w : int(in[0].w * p.scale_w);
  if (out.h <= 0 || out.w <= 0) op_error(node, fmt::format("resizes {} to nothing", in[0].str()));
  return {out};
}

using Taps = InterpTaps;

double cubic(double t) {
  constexpr double a = -0.75;
  t = std::fabs(t);
  if (t <= 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
  return 0;
}

// Taps for output index `o` of `out_size` along an axis of `in_size` input samples.
Taps axis_taps(const InterpParams& p, int o, int in_size, int out_size, float param_scale,
               bool use_param_scale) {
  Taps taps{};
  auto clamp = [&](int i) { return std::clamp(i, 0, in_size - 1); };
  if (p.mode == InterpMode::nearest) {
    // ncnn: the source index is floor(o * in/out), with in/out taken from the scale parameter.
    double step = use_param_scale ? 1.0 / param_scale : double(in_size) / out_size;
    taps.index[0] = clamp(int(std::floor(o * step)));
    taps.weight[0] = 1;
    taps.count = 1;
    return taps;
  }
  double step = double(in_size) / out_size;
  double f = (o + 0.5) * step - 0.5;
  if (p.align_corners) f = out_size > 1 ? o * double(in_size - 1) / (out_size - 1) : 0;
  int i0 = int(std::floor(f));
  double t = f - i0;
  if (p.mode == InterpMode::bilinear) {
    if (f < 0) {
      i0 = 0;
      t = 0;
    }
    taps.index[0] = clamp(i0);
    taps.index[1] = clamp(i0 + 1);
    taps.weight[0] = 1 - t;
    taps.weight[1] = t;
    taps.count = 2;
    return taps;
  }
  for (int k = 0; k < 4; ++k) {
    taps.index[k] = clamp(i0 - 1 + k);
    taps.weight[k] = cubic(t - (k - 1));
  }
  taps.count = 4;
  return taps;
}

}  // namespace

std::vector<InterpTaps> interp_axis_taps(const InterpParams& p, int in_size, int out_size, bool vertical) {
  std::vector<InterpTaps> taps(static_cast<size_t>(out_size));
  for (int o = 0; o < out_size; ++o)
    taps[size_t(o)] = vertical ? axis_taps(p, o, in_size, out_size, p.scale_h, p.out_h == 0)
                               : axis_taps(p, o, in_size, out_size, p.scale_w, p.out_w == 0);
  return taps;
}

namespace {

void run(const Node& node, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  const auto& p = node.p<InterpParams>();
  const TensorView& x = in[0];
  const TensorView& y = out[0];
  const std::vector<Taps> ty = interp_axis_taps(p, x.shape.h, y.shape.h, true);
  const std::vector<Taps> tx = interp_axis_taps(p, x.shape.w, y.shape.w, false);
#pragma omp parallel for
  for (int c = 0; c < y.shape.c; ++c)
    for (int oy = 0; oy < y.shape.h; ++oy)
      for (int ox = 0; ox < y.shape.w; ++ox) {
        const Taps& a = ty[size_t(oy)];
        const Taps& b = tx[size_t(ox)];
        double sum = 0;
        for (int i = 0; i < a.count; ++i)
          for (int j = 0; j < b.count; ++j)
            sum += a.weight[i] * b.weight[j] * x.at(c, a.index[i], b.index[j]);
        y.at(c, oy, ox) = float(sum);
      }
}

}  // namespace

extern const OpDef op_interp = {"Interp", infer, run, nullptr};

}  // namespace upres
