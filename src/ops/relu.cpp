// ReLU, leaky when slope is not zero.
#include "ops/unary_ops.hpp"

namespace upres {
namespace {

void run(const Node& node, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  const float slope = node.p<ReluParams>().slope;
  map_elements(in[0], out[0], [&](float v, int) { return v > 0 ? v : v * slope; });
}

}  // namespace

extern const OpDef op_relu = {"ReLU", same_shape_as_input, run, nullptr};

}  // namespace upres
