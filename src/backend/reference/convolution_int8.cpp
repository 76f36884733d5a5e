#include "backend/reference/convolution_int8.hpp"

#include "ops/op.hpp"

namespace upres {

namespace {

// An int8 output with a fused residual, in the output's steps: the activation and the residual's
// own factor on the convolution's value, then the residual's steps added (a float residual is
// rounded to its steps first, as the cpu backend copies it in), then one rounding.
float int8_residual_sum(const ConvParams& p, const Int8ConvPlan& q, float biased, float real_scale,
                        float residual) {
  const float steps = activation_is_homogeneous(p.activation.type)
                          ? activate(biased * (real_scale / q.dst_step), p.activation, 0.f)
                          : activate(biased * real_scale, p.activation, 0.f) * (1.f / q.dst_step);
  const float added = p.residual_scale_other * (q.residual_step / q.dst_step) *
                      saturate_int8(residual * (1.f / q.residual_step));
  return saturate_int8(p.residual_scale_self * steps + added);
}

}  // namespace

void run_convolution_int8_reference(const Node& node, const Int8ConvPlan& q,
                                    const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  const auto& p = node.p<ConvParams>();
  const TensorView& x = in[0];
  const TensorView& y = out[0];
  const int ic = x.shape.c, ih = x.shape.h, iw = x.shape.w;
  const int kernel_size = p.kernel_h * p.kernel_w;
  // The input as int8 steps, once.
  std::vector<int32_t> xq(size_t(x.shape.size()));
  const float inverse_step = 1.f / q.src_step;
  for (size_t i = 0; i < xq.size(); ++i) xq[i] = int32_t(saturate_int8(x.data[i] * inverse_step));
  const bool int8_out = q.dst_step > 0;
  const bool scaled_activation = activation_is_homogeneous(p.activation.type);
#pragma omp parallel for schedule(dynamic)
  for (int oc = 0; oc < y.shape.c; ++oc) {
    const float real_scale = q.src_step * q.weight_steps[size_t(oc)];
    const float slope = p.activation.type == Activation::prelu ? prelu_slope(node.weights[2], oc) : 0.f;
    const int8_t* weights = q.weights.data() + int64_t(oc) * ic * kernel_size;
    for (int oy = 0; oy < y.shape.h; ++oy) {
      for (int ox = 0; ox < y.shape.w; ++ox) {
        int32_t acc = 0;
        for (int c = 0; c < ic; ++c) {
          const int8_t* wk = weights + int64_t(c) * kernel_size;
          for (int ky = 0; ky < p.kernel_h; ++ky) {
            int iy = oy * p.stride_h - p.pad_top + ky * p.dilation_h;
            if (iy < 0 || iy >= ih) continue;
            for (int kx = 0; kx < p.kernel_w; ++kx) {
              int ix = ox * p.stride_w - p.pad_left + kx * p.dilation_w;
              if (ix < 0 || ix >= iw) continue;
              acc += xq[(size_t(c) * ih + iy) * iw + ix] * wk[ky * p.kernel_w + kx];
            }
          }
        }
        const float biased = float(acc) + q.bias[size_t(oc)];
        float v;
        if (!int8_out) {
          v = conv_epilogue(p, biased * real_scale, slope, in, oc, oy, ox);
        } else if (in.size() == 2) {
          v = int8_residual_sum(p, q, biased, real_scale, in[1].at(oc, oy, ox)) * q.dst_step;
        } else if (p.activation.type == Activation::prelu) {
          const float pre = saturate_int8(biased * (real_scale / q.dst_step));
          v = (pre < 0 ? saturate_int8(pre * slope) : pre) * q.dst_step;
        } else if (scaled_activation) {
          v = saturate_int8(activate(biased * (real_scale / q.dst_step), p.activation, 0.f)) * q.dst_step;
        } else {
          v = saturate_int8(activate(biased * real_scale, p.activation, 0.f) * (1.f / q.dst_step)) *
              q.dst_step;
        }
        y.at(oc, oy, ox) = v;
      }
    }
  }
}

}  // namespace upres
