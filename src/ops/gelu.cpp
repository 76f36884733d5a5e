// GELU, the exact (erf) form: x * (1 + erf(x / sqrt 2)) / 2, the activation of PLKSR, SAFMN and
// the transformers' MLPs. Exporters write it out through Erf; the ONNX loader folds that back.
#include "ops/unary_ops.hpp"

namespace upres {
namespace {

void run(const Node&, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  const ActivationParams gelu{Activation::gelu};
  map_elements(in[0], out[0], [&](float v, int) { return activate(v, gelu, 0.f); });
}

}  // namespace

extern const OpDef op_gelu = {"GELU", same_shape_as_input, run, nullptr};

}  // namespace upres
