#include "model/int8_plan.hpp"

#include <algorithm>
#include <cmath>

namespace upres {
namespace {

// The input channels a convolution's weights imply (the graph stores no group count: every
// convolution here is dense).
int conv_in_channels(const Node& node) {
  const auto& p = node.p<ConvParams>();
  const int64_t per_input = int64_t(p.out_channels) * p.kernel_h * p.kernel_w;
  return per_input > 0 ? int(int64_t(node.weights[0].values.size()) / per_input) : 0;
}

// Below this many input channels VNNI has too little to multiply per output value to pay for
// the conversions (and the RGB input would lose precision for nothing).
constexpr int kMinInt8Channels = 16;

std::optional<float> threshold_of(const Graph& g, int blob, const Int8Calibration& cal) {
  auto it = cal.thresholds.find(g.blob_names[size_t(blob)]);
  if (it == cal.thresholds.end() || !(it->second > 0) || !std::isfinite(it->second)) return std::nullopt;
  return it->second;
}

Int8ConvPlan quantize_conv(const Node& node, float src_step) {
  const auto& p = node.p<ConvParams>();
  const std::vector<float>& w = node.weights[0].values;
  const size_t per_output = w.size() / size_t(p.out_channels);
  Int8ConvPlan q;
  q.src_step = src_step;
  q.weight_steps.resize(size_t(p.out_channels));
  q.weights.resize(w.size());
  q.bias.assign(size_t(p.out_channels), 0.f);
  for (size_t o = 0; o < size_t(p.out_channels); ++o) {
    float largest = 0;
    for (size_t k = 0; k < per_output; ++k) largest = std::max(largest, std::abs(w[o * per_output + k]));
    const float step = largest > 0 ? largest / 127.f : 1.f;
    q.weight_steps[o] = step;
    for (size_t k = 0; k < per_output; ++k)
      q.weights[o * per_output + k] = int8_t(saturate_int8(w[o * per_output + k] / step));
    if (p.bias) q.bias[o] = node.weights[1].values[o] / (src_step * step);
  }
  return q;
}

}  // namespace

bool activation_is_homogeneous(Activation a) {
  return a == Activation::none || a == Activation::relu || a == Activation::leaky_relu ||
         a == Activation::prelu;
}

Int8Plan plan_int8(const Graph& g, const Int8Calibration& cal) {
  Int8Plan plan;
  plan.convs.resize(g.nodes.size());
  plan.stored_step.assign(g.blob_names.size(), 0.f);
  std::vector<int> producer(g.blob_names.size(), -1);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    for (int b : n.outputs) producer[size_t(b)] = int(i);
    if (n.type != OpType::convolution) continue;
    const auto& p = n.p<ConvParams>();
    if (conv_in_channels(n) < kMinInt8Channels) continue;
    // oneDNN has no fast int8 convolution with a PReLU post-op; PReLU then runs on its own,
    // which a fused residual (added after the activation) cannot wait for.
    if (p.activation.type == Activation::prelu && n.inputs.size() == 2) continue;
    auto t = threshold_of(g, n.inputs[0], cal);
    if (!t) continue;
    plan.convs[i] = quantize_conv(n, *t / 127.f);
    ++plan.int8_convs;
  }
  // Outputs kept in int8: made by an int8 convolution without a residual, read only as the main
  // input of int8 convolutions.
  for (size_t b = 0; b < g.blob_names.size(); ++b) {
    const int made_by = producer[b];
    if (int(b) == g.output_blob || made_by < 0 || !plan.convs[size_t(made_by)] ||
        g.nodes[size_t(made_by)].inputs.size() != 1)
      continue;
    bool int8_readers_only = true, read = false;
    for (size_t i = 0; i < g.nodes.size(); ++i)
      for (size_t k = 0; k < g.nodes[i].inputs.size(); ++k)
        if (g.nodes[i].inputs[k] == int(b)) {
          read = true;
          int8_readers_only = int8_readers_only && k == 0 && plan.convs[i].has_value();
        }
    if (!read || !int8_readers_only) continue;
    const float step = *threshold_of(g, int(b), cal) / 127.f;  // its readers are calibrated on it
    plan.stored_step[b] = step;
    plan.convs[size_t(made_by)]->dst_step = step;
  }
  return plan;
}

}  // namespace upres
