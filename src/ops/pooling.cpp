// Max or average pooling, windowed or global (one value per channel).
#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "ops/op.hpp"

namespace upres {
namespace {

std::vector<Shape> infer(const Node& node, const std::vector<Shape>& in) {
  check_input_count(node, in, 1, 1);
  const auto& p = node.p<PoolingParams>();
  if (p.global) return {{in[0].c, 1, 1}};
  int h = (in[0].h + p.pad_top + p.pad_bottom - p.kernel_h) / p.stride_h + 1;
  int w = (in[0].w + p.pad_left + p.pad_right - p.kernel_w) / p.stride_w + 1;
  if (h <= 0 || w <= 0) op_error(node, fmt::format("input {} is smaller than the window", in[0].str()));
  return {{in[0].c, h, w}};
}

void run(const Node& node, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  const auto& p = node.p<PoolingParams>();
  const TensorView& x = in[0];
  const TensorView& y = out[0];
  const bool global = p.global;
#pragma omp parallel for
  for (int c = 0; c < y.shape.c; ++c)
    for (int oy = 0; oy < y.shape.h; ++oy)
      for (int ox = 0; ox < y.shape.w; ++ox) {
        int y0 = global ? 0 : oy * p.stride_h - p.pad_top;
        int x0 = global ? 0 : ox * p.stride_w - p.pad_left;
        int kh = global ? x.shape.h : p.kernel_h, kw = global ? x.shape.w : p.kernel_w;
        double sum = 0, best = -std::numeric_limits<double>::infinity();
        int count = 0;
        for (int yy = std::max(y0, 0); yy < std::min(y0 + kh, x.shape.h); ++yy)
          for (int xx = std::max(x0, 0); xx < std::min(x0 + kw, x.shape.w); ++xx) {
            double v = x.at(c, yy, xx);
            sum += v;
            best = std::max(best, v);
            ++count;
          }
        if (p.kind == PoolKind::max)
          y.at(c, oy, ox) = float(best);
        else
          y.at(c, oy, ox) = float(sum / (p.count_include_pad && !global ? kh * kw : count));
      }
}

}  // namespace

extern const OpDef op_pooling = {"Pooling", infer, run, nullptr};

}  // namespace upres
