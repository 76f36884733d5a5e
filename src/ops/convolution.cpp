// Convolution with an optional fused activation and residual epilogue.
#include <fmt/format.h>

#include "ops/op.hpp"

namespace upres {
namespace {

int conv_out_extent(int in, int pad_a, int pad_b, int kernel, int dilation, int stride) {
  int span = dilation * (kernel - 1) + 1;
  int padded = in + pad_a + pad_b;
  return padded < span ? 0 : (padded - span) / stride + 1;
}

void check_conv_weights(const Node& node, int in_channels) {
  const auto& p = node.p<ConvParams>();
  if (p.groups < 1 || in_channels % p.groups || p.out_channels % p.groups)
    op_error(node, fmt::format("{} input and {} output channels do not split into {} groups", in_channels,
                               p.out_channels, p.groups));
  int64_t expected = int64_t(p.out_channels) * (in_channels / p.groups) * p.kernel_h * p.kernel_w;
  if (node.weights.empty() || int64_t(node.weights[0].values.size()) != expected)
    op_error(node,
             fmt::format("weights hold {} values but {} input channels need {}",
                         node.weights.empty() ? 0 : node.weights[0].values.size(), in_channels, expected));
}

std::vector<Shape> infer(const Node& node, const std::vector<Shape>& in) {
  check_input_count(node, in, 1, 2);
  const auto& p = node.p<ConvParams>();
  check_conv_weights(node, in[0].c);
  Shape out{p.out_channels,
            conv_out_extent(in[0].h, p.pad_top, p.pad_bottom, p.kernel_h, p.dilation_h, p.stride_h),
            conv_out_extent(in[0].w, p.pad_left, p.pad_right, p.kernel_w, p.dilation_w, p.stride_w)};
  check_conv_output(node, in, out);
  return {out};
}

void run(const Node& node, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  const auto& p = node.p<ConvParams>();
  const TensorView& x = in[0];
  const TensorView& y = out[0];
  const float* weight = node.weights[0].values.data();
  const int ic = x.shape.c / p.groups, ih = x.shape.h, iw = x.shape.w;  // ic: per group
  const int oc_per_group = y.shape.c / p.groups;
  const int kernel_size = p.kernel_h * p.kernel_w;
#pragma omp parallel for schedule(dynamic)
  for (int oc = 0; oc < y.shape.c; ++oc) {
    const float bias = p.bias ? node.weights[1].values[size_t(oc)] : 0.f;
    const float slope = p.activation.type == Activation::prelu ? prelu_slope(node.weights[2], oc) : 0.f;
    for (int oy = 0; oy < y.shape.h; ++oy) {
      for (int ox = 0; ox < y.shape.w; ++ox) {
        double sum = bias;
        const int c0 = oc / oc_per_group * ic;  // the group's first input channel
        for (int c = 0; c < ic; ++c) {
          const float* wk = weight + (int64_t(oc) * ic + c) * kernel_size;
          for (int ky = 0; ky < p.kernel_h; ++ky) {
            int iy = oy * p.stride_h - p.pad_top + ky * p.dilation_h;
            if (iy < 0 || iy >= ih) continue;
            for (int kx = 0; kx < p.kernel_w; ++kx) {
              int ix = ox * p.stride_w - p.pad_left + kx * p.dilation_w;
              if (ix < 0 || ix >= iw) continue;
              sum += double(x.at(c0 + c, iy, ix)) * wk[ky * p.kernel_w + kx];
            }
          }
        }
        y.at(oc, oy, ox) = conv_epilogue(p, sum, slope, in, oc, oy, ox);
      }
    }
  }
}

double macs(const Node& node, const std::vector<Shape>& in, const std::vector<Shape>& out) {
  const auto& p = node.p<ConvParams>();
  return double(out[0].size()) * (in[0].c / p.groups) * p.kernel_h * p.kernel_w;
}

}  // namespace

extern const OpDef op_convolution = {"Convolution", infer, run, macs};

}  // namespace upres
