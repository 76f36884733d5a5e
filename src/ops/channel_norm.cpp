// LayerNorm over the channels of each pixel (see ChannelNormParams).
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "ops/op.hpp"

namespace upres {
namespace {

std::vector<Shape> infer(const Node& node, const std::vector<Shape>& in) {
  check_input_count(node, in, 1, 1);
  const auto& p = node.p<ChannelNormParams>();
  if (!(p.eps >= 0) || !std::isfinite(p.eps)) op_error(node, fmt::format("has epsilon {}", p.eps));
  if (p.affine && (node.weights.size() != 2 || int64_t(node.weights[0].values.size()) != in[0].c ||
                   int64_t(node.weights[1].values.size()) != in[0].c))
    op_error(node, fmt::format("needs a scale and a shift for each of its {} channels", in[0].c));
  return {in[0]};
}

void run(const Node& node, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  const auto& p = node.p<ChannelNormParams>();
  const TensorView& x = in[0];
  const int channels = x.shape.c;
  const int64_t plane = int64_t(x.shape.h) * x.shape.w;
  // Runs of pixels side by side, so that each pass reads every channel's plane in order (a pixel
  // at a time would stride across the planes).
  constexpr int64_t kRun = 256;
#pragma omp parallel for
  for (int64_t first = 0; first < plane; first += kRun) {
    const int64_t n = std::min(kRun, plane - first);
    double mean[kRun] = {}, squares[kRun] = {};
    for (int c = 0; c < channels; ++c)
      for (int64_t i = 0; i < n; ++i) mean[i] += x.channel(c)[first + i];
    for (int64_t i = 0; i < n; ++i) mean[i] /= channels;
    for (int c = 0; c < channels; ++c)
      for (int64_t i = 0; i < n; ++i) {
        const double d = x.channel(c)[first + i] - mean[i];
        squares[i] += d * d;
      }
    for (int64_t i = 0; i < n; ++i) squares[i] = 1.0 / std::sqrt(squares[i] / channels + p.eps);
    for (int c = 0; c < channels; ++c) {
      const double scale = p.affine ? node.weights[0].values[size_t(c)] : 1.0;
      const double shift = p.affine ? node.weights[1].values[size_t(c)] : 0.0;
      for (int64_t i = 0; i < n; ++i)
        out[0].channel(c)[first + i] =
            float((x.channel(c)[first + i] - mean[i]) * squares[i] * scale + shift);
    }
  }
}

}  // namespace

extern const OpDef op_channel_norm = {"ChannelNorm", infer, run, nullptr};

}  // namespace upres
