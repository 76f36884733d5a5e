// GroupNorm from frame-wide channel statistics (see GroupNormParams).
#include <cmath>

#include <fmt/format.h>

#include "ops/op.hpp"

namespace upres {
namespace {

std::vector<Shape> infer(const Node& node, const std::vector<Shape>& in) {
  check_input_count(node, in, 3, 3);
  const auto& p = node.p<GroupNormParams>();
  const int channels = in[0].c;
  if (p.groups < 1 || channels % p.groups != 0)
    op_error(node, fmt::format("splits {} channels into {} groups", channels, p.groups));
  if (!(p.eps >= 0) || !std::isfinite(p.eps)) op_error(node, fmt::format("has epsilon {}", p.eps));
  for (int k : {1, 2})
    if (in[size_t(k)] != Shape{channels, 1, 1})
      op_error(node, fmt::format("needs {} channel statistics, has {}", channels, in[size_t(k)].str()));
  if (p.affine && (node.weights.size() != 2 || int64_t(node.weights[0].values.size()) != channels ||
                   int64_t(node.weights[1].values.size()) != channels))
    op_error(node, fmt::format("needs a scale and a shift for each of its {} channels", channels));
  return {in[0]};
}

void run(const Node& node, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  const auto& p = node.p<GroupNormParams>();
  const int channels = in[0].shape.c, per_group = channels / p.groups;
  const int64_t plane = int64_t(in[0].shape.h) * in[0].shape.w;
#pragma omp parallel for
  for (int c = 0; c < channels; ++c) {
    // Every channel of a group has as many pixels: the group's moments are its channels' averages.
    const int first = c / per_group * per_group;
    double mean = 0, squares = 0;
    for (int k = first; k < first + per_group; ++k) {
      mean += in[1].data[k];
      squares += in[2].data[k];
    }
    mean /= per_group;
    const double variance = std::max(squares / per_group - mean * mean, 0.0);
    double scale = 1.0 / std::sqrt(variance + p.eps), shift = -mean * scale;
    if (p.affine) {
      scale *= node.weights[0].values[size_t(c)];
      shift = shift * node.weights[0].values[size_t(c)] + node.weights[1].values[size_t(c)];
    }
    for (int64_t i = 0; i < plane; ++i) out[0].channel(c)[i] = float(in[0].channel(c)[i] * scale + shift);
  }
}

}  // namespace

extern const OpDef op_group_norm = {"GroupNorm", infer, run, nullptr};

}  // namespace upres
