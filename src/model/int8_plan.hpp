// Which parts of a graph run in int8, decided once from the graph and a calibration. Both
// backends follow the same plan: the cpu backend runs it on oneDNN's int8 convolutions, the
// reference backend emulates it in plain float loops, so the two can be compared.
//
// A convolution runs in int8 when it has 16 or more input channels, no groups, a calibrated
// input, and not both PReLU and a fused residual. Its input x becomes q = sat(rne(x / s_x)),
// its weights w become sat(rne(w / s_w[o])) per output channel o, it accumulates q * w in
// int32, and adds the bias in accumulator units: real = (acc + bias / (s_x * s_w[o])) * s_x *
// s_w[o], which is how oneDNN 2.x applies a bias before its output scales.
//
// Its output stays float, unless every reader is an int8 convolution reading it as its main
// input, or as a fused residual of an int8-stored sum, and it is not the graph output: then it is
// stored as int8 with the step its readers use, and rounded once more on the way out (see
// Int8ConvPlan::dst_step). With an activation that commutes with scaling (ReLU, PReLU), such an
// output may be equalised: its narrow channels carried at a larger scale, so that they use more
// of the int8 steps.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "ops/graph.hpp"
#include "upres/int8.hpp"

namespace upres {

struct Int8ConvPlan {
  float src_step = 0;               // the real value of one input step
  std::vector<float> weight_steps;  // per output channel
  std::vector<int8_t> weights;      // quantised, out x in x kernel_h x kernel_w
  std::vector<float> bias;          // in accumulator units, per output channel (zeros without bias)
  // > 0: the output is stored as int8 with this step. Activations that commute with scaling
  // (none, ReLU, leaky ReLU, PReLU) are applied to the scaled value; the others (swish, sigmoid,
  // clip) to the real value, which is then divided by the step. PReLU runs on the rounded int8
  // value, as oneDNN's int8 PReLU does: q = q < 0 ? sat(rne(slope * q)) : q.
  float dst_step = 0;
  // With a fused residual and an int8 output: the step the residual is added in, its threshold /
  // 127 (the step it is stored with, or for a float residual the one it is rounded to as it is
  // copied into the output); the sum adds q_r * residual_step / dst_step. 0 otherwise.
  float residual_step = 0;
};

struct Int8Plan {
  std::vector<std::optional<Int8ConvPlan>> convs;  // per node
  std::vector<float> stored_step;                  // per blob: its step when stored as int8, else 0
  // Per blob stored as int8: the factor each channel is carried at (channel equalisation, see
  // int8_plan.cpp); empty when 1. The producer's weights and bias carry it, the readers' weights
  // divide it out, so the graph computes the same function.
  std::vector<std::vector<float>> channel_scales;
  int int8_convs = 0;
};

Int8Plan plan_int8(const Graph& graph, const Int8Calibration& calibration);

// Whether an activation commutes with multiplying by a positive number (f(k x) = k f(x)).
bool activation_is_homogeneous(Activation a);

// Round to nearest, ties to even (the rounding of oneDNN's conversions), then saturate to int8.
inline float saturate_int8(float v) {
  v = std::nearbyint(v);
  return v < -128.f ? -128.f : (v > 127.f ? 127.f : v);
}

}  // namespace upres
