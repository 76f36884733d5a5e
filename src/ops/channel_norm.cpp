// LayerNorm over the channels of each pixel (see ChannelNormParams).
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
#pragma omp parallel for
  for (int64_t i = 0; i < plane; ++i) {
    double sum = 0;
    for (int c = 0; c < channels; ++c) sum += x.channel(c)[i];
    const double mean = sum / channels;
    double squares = 0;
    for (int c = 0; c < channels; ++c) {
      const double d = x.channel(c)[i] - mean;
      squares += d * d;
    }
    const double inv = 1.0 / std::sqrt(squares / channels + p.eps);
    for (int c = 0; c < channels; ++c) {
      double v = (x.channel(c)[i] - mean) * inv;
      if (p.affine) v = v * node.weights[0].values[size_t(c)] + node.weights[1].values[size_t(c)];
      out[0].channel(c)[i] = float(v);
    }
  }
}

}  // namespace

extern const OpDef op_channel_norm = {"ChannelNorm", infer, run, nullptr};

}  // namespace upres
