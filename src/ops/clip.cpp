// Clamps values to [min, max].
#include "ops/unary_ops.hpp"

namespace upres {
namespace {

void run(const Node& node, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  const auto& p = node.p<ClipParams>();
  map_elements(in[0], out[0], [&](float v, int) { return v < p.min ? p.min : (v > p.max ? p.max : v); });
}

}  // namespace

extern const OpDef op_clip = {"Clip", same_shape_as_input, run, nullptr};

}  // namespace upres
