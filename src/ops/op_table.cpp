#include <fmt/format.h>

#include "ops/op.hpp"

namespace upres {

extern const OpDef op_convolution, op_deconvolution, op_prelu, op_pixel_shuffle, op_interp, op_binary_op,
    op_eltwise, op_concat, op_crop, op_pooling, op_inner_product, op_scale, op_relu, op_sigmoid, op_clip,
    op_swish, op_given, op_tanh, op_mish, op_pad, op_pixel_unshuffle, op_gelu, op_channel_norm, op_group_norm,
    op_window_attention;

namespace {
// Indexed by OpType; keep in enum order.
const OpDef* const op_table[] = {
    &op_convolution,     &op_deconvolution, &op_prelu,        &op_pixel_shuffle, &op_interp,
    &op_binary_op,       &op_eltwise,       &op_concat,       &op_crop,          &op_pooling,
    &op_inner_product,   &op_scale,         &op_relu,         &op_sigmoid,       &op_clip,
    &op_swish,           &op_given,         &op_tanh,         &op_mish,          &op_pad,
    &op_pixel_unshuffle, &op_gelu,          &op_channel_norm, &op_group_norm,    &op_window_attention,
};
static_assert(sizeof(op_table) / sizeof(op_table[0]) == size_t(OpType::count),
              "every OpType needs an entry in op_table");
}  // namespace

const OpDef& op_def(OpType type) {
  UPRES_ASSERT(type != OpType::count);
  return *op_table[size_t(type)];
}

void op_error(const Node& node, const std::string& problem) {
  throw Error(ErrorCode::invalid_model, fmt::format("layer '{}' ({}, line {}): {}", node.name,
                                                    op_def(node.type).name, node.source_line, problem));
}

void check_input_count(const Node& node, const std::vector<Shape>& inputs, size_t min_count,
                       size_t max_count) {
  if (inputs.size() < min_count || inputs.size() > max_count)
    op_error(node, fmt::format("takes {} to {} inputs, has {}", min_count, max_count, inputs.size()));
}

void check_conv_output(const Node& node, const std::vector<Shape>& in, Shape out) {
  if (out.h <= 0 || out.w <= 0)
    op_error(node, fmt::format("input {} is too small for the kernel", in[0].str()));
  if (in.size() == 2 && in[1] != out)
    op_error(node, fmt::format("residual input {} does not match output {}", in[1].str(), out.str()));
}

}  // namespace upres
