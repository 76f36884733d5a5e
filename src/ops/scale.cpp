// Per-channel multiply (by stored factors or by a second input of one value per channel),
// plus an optional per-channel bias.
#include <fmt/format.h>

#include "ops/op.hpp"

namespace upres {
namespace {

std::vector<Shape> infer(const Node& node, const std::vector<Shape>& in) {
  const auto& p = node.p<ScaleParams>();
  check_input_count(node, in, p.from_input ? 2 : 1, p.from_input ? 2 : 1);
  int64_t factors = p.from_input ? in[1].size() : int64_t(node.weights[0].values.size());
  if (factors != in[0].c) op_error(node, fmt::format("has {} factors for {} channels", factors, in[0].c));
  return {in[0]};
}

void run(const Node& node, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  const auto& p = node.p<ScaleParams>();
  const float* factors = p.from_input ? in[1].data : node.weights[0].values.data();
  const Tensor* bias = nullptr;
  if (p.bias) bias = &node.weights[p.from_input ? 0 : 1];
  const int64_t plane = int64_t(in[0].shape.h) * in[0].shape.w;
#pragma omp parallel for
  for (int c = 0; c < in[0].shape.c; ++c) {
    float b = bias ? bias->values[size_t(c)] : 0.f;
    for (int64_t i = 0; i < plane; ++i) out[0].channel(c)[i] = in[0].channel(c)[i] * factors[c] + b;
  }
}

}  // namespace

extern const OpDef op_scale = {"Scale", infer, run, nullptr};

}  // namespace upres
