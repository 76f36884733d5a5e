// What every op provides: shape inference and the reference kernel.
//
// The reference kernels are the oracle: plain loops, float64 accumulation, written to be
// obviously correct rather than fast. Fast backends override them op by op and are tested
// against them.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "ops/graph.hpp"
#include "upres/error.hpp"

namespace upres {

struct OpDef {
  const char* name;  // for messages: "Convolution"; loaders map their own type names to OpType
  // Output shapes from input shapes; throws Error(invalid_model) through op_error().
  std::vector<Shape> (*infer_shapes)(const Node& node, const std::vector<Shape>& inputs);
  // Computes outputs (allocated by the caller with the inferred shapes) from inputs.
  void (*run_reference)(const Node& node, const std::vector<TensorView>& inputs,
                        const std::vector<TensorView>& outputs);
  // Multiply-accumulates, for benchmarks and memory planning; nullptr: negligible.
  double (*count_macs)(const Node& node, const std::vector<Shape>& inputs, const std::vector<Shape>& outputs);
};

const OpDef& op_def(OpType type);

// An Error(invalid_model) naming the node, its source line and the problem.
[[noreturn]] void op_error(const Node& node, const std::string& problem);
void check_input_count(const Node& node, const std::vector<Shape>& inputs, size_t min_count,
                       size_t max_count);

// Applies an activation to one value; `slope` is the PReLU slope for this channel.
inline float activate(float v, const ActivationParams& a, float slope) {
  switch (a.type) {
    case Activation::none: return v;
    case Activation::relu: return v > 0 ? v : 0;
    case Activation::leaky_relu: return v > 0 ? v : v * a.alpha;
    case Activation::clip: return v < a.alpha ? a.alpha : (v > a.beta ? a.beta : v);
    case Activation::sigmoid: return float(1.0 / (1.0 + std::exp(-double(v))));
    case Activation::prelu: return v > 0 ? v : v * slope;
    case Activation::swish: return float(double(v) / (1.0 + std::exp(-double(v))));
    case Activation::tanh: return float(std::tanh(double(v)));
    case Activation::mish: return float(double(v) * std::tanh(std::log1p(std::exp(double(v)))));
    case Activation::gelu: return float(0.5 * double(v) * (1.0 + std::erf(double(v) * M_SQRT1_2)));
  }
  return v;
}

// The PReLU slope for channel c (a single slope is shared by all channels).
inline float prelu_slope(const Tensor& slopes, int c) {
  return slopes.values.size() == 1 ? slopes.values[0] : slopes.values[static_cast<size_t>(c)];
}

// The epilogue shared by convolution and deconvolution: bias-added sum -> activation ->
// optional fused residual (see ConvParams).
inline float conv_epilogue(const ConvParams& p, double sum, float slope, const std::vector<TensorView>& in,
                           int c, int y, int x) {
  float v = activate(float(sum), p.activation, slope);
  if (in.size() == 2) v = p.residual_scale_self * v + p.residual_scale_other * in[1].at(c, y, x);
  return v;
}

// Output shape checks shared by convolution and deconvolution.
void check_conv_output(const Node& node, const std::vector<Shape>& in, Shape out);

}  // namespace upres
