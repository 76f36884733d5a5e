// Mish: x * tanh(softplus(x)), the activation of RealPLKSR-style networks.
#include "ops/unary_ops.hpp"

namespace upres {
namespace {

void run(const Node&, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  const ActivationParams mish{Activation::mish};
  map_elements(in[0], out[0], [&](float v, int) { return activate(v, mish, 0.f); });
}

}  // namespace

extern const OpDef op_mish = {"Mish", same_shape_as_input, run, nullptr};

}  // namespace upres
