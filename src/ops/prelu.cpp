// PReLU: x for x > 0, slope[c] * x otherwise.
#include <fmt/format.h>

#include "ops/unary_ops.hpp"

namespace upres {
namespace {

std::vector<Shape> infer(const Node& node, const std::vector<Shape>& in) {
  auto out = same_shape_as_input(node, in);
  size_t n = node.weights.empty() ? 0 : node.weights[0].values.size();
  if (n != 1 && n != size_t(in[0].c))
    op_error(node, fmt::format("has {} slopes for {} channels", n, in[0].c));
  return out;
}

void run(const Node& node, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  map_elements(in[0], out[0],
               [&](float v, int c) { return v > 0 ? v : v * prelu_slope(node.weights[0], c); });
}

}  // namespace

extern const OpDef op_prelu = {"PReLU", infer, run, nullptr};

}  // namespace upres
