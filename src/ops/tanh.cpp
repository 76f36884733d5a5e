// Tanh: the hyperbolic tangent of each value.
#include "ops/unary_ops.hpp"

namespace upres {
namespace {

void run(const Node&, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  map_elements(in[0], out[0], [](float v, int) { return float(std::tanh(double(v))); });
}

}  // namespace

extern const OpDef op_tanh = {"Tanh", same_shape_as_input, run, nullptr};

}  // namespace upres
