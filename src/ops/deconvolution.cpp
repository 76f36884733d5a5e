// Transposed convolution: every input pixel scatters kernel x weight into the output at
// stride spacing; pad_* are cut from the full output afterwards (ncnn's convention).
#include <fmt/format.h>

#include "ops/op.hpp"

namespace upres {
namespace {

std::vector<Shape> infer(const Node& node, const std::vector<Shape>& in) {
  check_input_count(node, in, 1, 2);
  const auto& p = node.p<ConvParams>();
  if (p.groups != 1) op_error(node, "grouped transposed convolutions are not supported");
  int64_t expected = int64_t(p.out_channels) * in[0].c * p.kernel_h * p.kernel_w;
  if (node.weights.empty() || int64_t(node.weights[0].values.size()) != expected)
    op_error(node, fmt::format("weights do not fit {} input channels", in[0].c));
  int full_h = (in[0].h - 1) * p.stride_h + p.dilation_h * (p.kernel_h - 1) + 1 + p.output_pad_bottom;
  int full_w = (in[0].w - 1) * p.stride_w + p.dilation_w * (p.kernel_w - 1) + 1 + p.output_pad_right;
  Shape out{p.out_channels, full_h - p.pad_top - p.pad_bottom, full_w - p.pad_left - p.pad_right};
  check_conv_output(node, in, out);
  return {out};
}

void run(const Node& node, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  const auto& p = node.p<ConvParams>();
  const TensorView& x = in[0];
  const TensorView& y = out[0];
  const float* weight = node.weights[0].values.data();
  const int ic = x.shape.c;
  const int kernel_size = p.kernel_h * p.kernel_w;
#pragma omp parallel for schedule(dynamic)
  for (int oc = 0; oc < y.shape.c; ++oc) {
    const float bias = p.bias ? node.weights[1].values[size_t(oc)] : 0.f;
    const float slope = p.activation.type == Activation::prelu ? prelu_slope(node.weights[2], oc) : 0.f;
    for (int oy = 0; oy < y.shape.h; ++oy) {
      for (int ox = 0; ox < y.shape.w; ++ox) {
        // Output (oy, ox) sits at (oy + pad_top, ox + pad_left) of the uncut output, which input
        // (iy, ix) reaches through kernel tap (ky, kx) when iy * stride + ky * dilation equals it.
        double sum = bias;
        for (int ky = 0; ky < p.kernel_h; ++ky) {
          int ty = oy + p.pad_top - ky * p.dilation_h;
          if (ty < 0 || ty % p.stride_h != 0 || ty / p.stride_h >= x.shape.h) continue;
          int iy = ty / p.stride_h;
          for (int kx = 0; kx < p.kernel_w; ++kx) {
            int tx = ox + p.pad_left - kx * p.dilation_w;
            if (tx < 0 || tx % p.stride_w != 0 || tx / p.stride_w >= x.shape.w) continue;
            int ix = tx / p.stride_w;
            for (int c = 0; c < ic; ++c)
              sum += double(x.at(c, iy, ix)) *
                     weight[(int64_t(oc) * ic + c) * kernel_size + ky * p.kernel_w + kx];
          }
        }
        y.at(oc, oy, ox) = conv_epilogue(p, sum, slope, in, oc, oy, ox);
      }
    }
  }
}

double macs(const Node& node, const std::vector<Shape>& in, const std::vector<Shape>&) {
  const auto& p = node.p<ConvParams>();
  return double(in[0].size()) * p.out_channels * p.kernel_h * p.kernel_w;
}

}  // namespace

extern const OpDef op_deconvolution = {"Deconvolution", infer, run, macs};

}  // namespace upres
