// The reference int8 convolution: the arithmetic of model/int8_plan.hpp in plain loops. Integer
// products are summed exactly; the conversions around them take the float steps oneDNN takes,
// so the cpu backend's int8 path can be checked against it value by value.
#pragma once

#include <vector>

#include "model/int8_plan.hpp"

namespace upres {

// in[0]: the input in real units (float); in[1]: the residual, when fused. out[0] gets real
// units too: for an int8-stored output, q * dst_step.
void run_convolution_int8_reference(const Node& node, const Int8ConvPlan& q,
                                    const std::vector<TensorView>& in, const std::vector<TensorView>& out);

}  // namespace upres
