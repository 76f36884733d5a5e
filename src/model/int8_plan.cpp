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

// The plan of one convolution: weights scaled per input channel by 1 / in_scale[c] and per output
// channel by out_scale[o] (channel equalisation; empty: 1), then quantised per output channel.
Int8ConvPlan quantize_conv(const Node& node, float src_step, const std::vector<float>& in_scale,
                           const std::vector<float>& out_scale) {
  const auto& p = node.p<ConvParams>();
  const std::vector<float>& w = node.weights[0].values;
  const size_t outputs = size_t(p.out_channels), per_output = w.size() / outputs;
  const size_t kernel = size_t(p.kernel_h) * size_t(p.kernel_w);
  Int8ConvPlan q;
  q.src_step = src_step;
  q.weight_steps.resize(outputs);
  q.weights.resize(w.size());
  q.bias.assign(outputs, 0.f);
  std::vector<float> scaled(per_output);
  for (size_t o = 0; o < outputs; ++o) {
    const float out = out_scale.empty() ? 1.f : out_scale[o];
    float largest = 0;
    for (size_t k = 0; k < per_output; ++k) {
      const float in = in_scale.empty() ? 1.f : in_scale[k / kernel];
      scaled[k] = w[o * per_output + k] * out / in;
      largest = std::max(largest, std::abs(scaled[k]));
    }
    const float step = largest > 0 ? largest / 127.f : 1.f;
    q.weight_steps[o] = step;
    for (size_t k = 0; k < per_output; ++k)
      q.weights[o * per_output + k] = int8_t(saturate_int8(scaled[k] / step));
    if (p.bias) q.bias[o] = node.weights[1].values[o] * out / (src_step * step);
  }
  return q;
}

// Channel equalisation of an int8-stored activation: channel c is multiplied by
// s_c = (t / t_c)^alpha, at most 16, where t is the activation's threshold and t_c its channel's,
// so that narrow channels use more of the 255 steps; the readers divide it out again. Empty when
// the table has no channel thresholds for it or no equalisation.
std::vector<float> channel_scales(const std::string& blob, float threshold, int channels,
                                  const Int8Calibration& cal) {
  auto it = cal.channel_thresholds.find(blob);
  if (cal.equalization <= 0 || it == cal.channel_thresholds.end() || int(it->second.size()) != channels)
    return {};
  std::vector<float> scales(static_cast<size_t>(channels));
  for (size_t c = 0; c < scales.size(); ++c) {
    const float t = it->second[c];
    scales[c] =
        t > 0 ? float(std::clamp(std::pow(double(threshold) / t, cal.equalization), 1.0, 16.0)) : 16.f;
  }
  return scales;
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
  plan.channel_scales.resize(g.blob_names.size());
  std::vector<float> src_threshold(g.nodes.size(), 0.f);
  std::vector<bool> int8(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (n.type != OpType::convolution) continue;
    const auto& p = n.p<ConvParams>();
    if (p.groups != 1) continue;  // grouped (depthwise) convolutions are memory-bound: float is as fast
    if (conv_in_channels(n) < kMinInt8Channels) continue;
    // oneDNN has no fast int8 convolution with a PReLU post-op; PReLU then runs on its own,
    // which a fused residual (added after the activation) cannot wait for.
    if (p.activation.type == Activation::prelu && n.inputs.size() == 2) continue;
    auto t = threshold_of(g, n.inputs[0], cal);
    if (!t) continue;
    int8[i] = true;
    src_threshold[i] = *t;
    ++plan.int8_convs;
  }
  // Outputs kept in int8: made by an int8 convolution, read only by int8 convolutions, each as
  // its main input or as a fused residual whose sum is itself stored as int8. The residual
  // stream of a chain of residual blocks then stays int8 from block to block. Blobs are decided
  // from the last producer back, so a residual reader's own output is decided first.
  std::vector<std::vector<std::pair<int, int>>> readers(g.blob_names.size());  // (node, input slot)
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (size_t k = 0; k < g.nodes[i].inputs.size(); ++k)
      readers[size_t(g.nodes[i].inputs[k])].push_back({int(i), int(k)});
  for (size_t m = g.nodes.size(); m-- > 0;) {
    if (!int8[m]) continue;
    const Node& made = g.nodes[m];
    const int b = made.outputs[0];
    if (b == g.output_blob || readers[size_t(b)].empty()) continue;
    bool int8_readers_only = true, read_as_residual = false;
    for (const auto& [reader, slot] : readers[size_t(b)]) {
      const bool residual_into_int8 =
          slot == 1 && plan.stored_step[size_t(g.nodes[size_t(reader)].outputs[0])] > 0;
      int8_readers_only = int8_readers_only && int8[size_t(reader)] && (slot == 0 || residual_into_int8);
      read_as_residual = read_as_residual || slot == 1;
    }
    const auto threshold = threshold_of(g, b, cal);
    // A sum adds its residual in int8 steps: the residual's own (a float residual is rounded to
    // them as it is copied in), so it needs a threshold. The output's steps would clamp a
    // residual that the convolution's part cancels.
    const bool residual_calibrated = made.inputs.size() == 1 || threshold_of(g, made.inputs[1], cal);
    if (!int8_readers_only || !threshold || !residual_calibrated) continue;
    plan.stored_step[size_t(b)] = *threshold / 127.f;
    // Equalised channels cannot meet a residual: the sum adds the channels at one scale.
    if (!read_as_residual && made.inputs.size() == 1 &&
        activation_is_homogeneous(made.p<ConvParams>().activation.type))
      plan.channel_scales[size_t(b)] =
          channel_scales(g.blob_names[size_t(b)], *threshold, made.p<ConvParams>().out_channels, cal);
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!int8[i]) continue;
    const Node& n = g.nodes[i];
    plan.convs[i] = quantize_conv(n, src_threshold[i] / 127.f, plan.channel_scales[size_t(n.inputs[0])],
                                  plan.channel_scales[size_t(n.outputs[0])]);
    plan.convs[i]->dst_step = plan.stored_step[size_t(n.outputs[0])];
    if (n.inputs.size() == 2 && plan.convs[i]->dst_step > 0)
      plan.convs[i]->residual_step = *threshold_of(g, n.inputs[1], cal) / 127.f;
  }
  return plan;
}

}  // namespace upres
