// What every convolution kernel (convolution.comp, convolution_tiled.comp, the coopmat pair,
// deconvolution.comp) binds and is pushed, in one place: the host records them all alike
// (vulkan_backend.cpp's conv_dispatch). Included after the kernel's ACT and RESIDUAL constants.
// Weights are packed by the host as [oc / 4][ic][kh][kw] of vec4 (four output channels, zero past
// the last; `blocks` of them, padded to direct's OCB).
layout(binding = 0) readonly buffer In { sfloat x[]; };
layout(binding = 1) readonly buffer Weights { vec4 w[]; };
layout(binding = 2) readonly buffer Params { vec4 bias_slope[]; };  // [blocks] bias, then [blocks] slopes
layout(binding = 3) readonly buffer Residual { sfloat r[]; };
layout(binding = 4) writeonly buffer Out { sfloat y[]; };
layout(push_constant) uniform Push {
  int ic, ih, iw, oc, oh, ow, pad_top, pad_left;
  float alpha, beta, rs_self, rs_other;
  int blocks;
} p;

// The epilogue: out = rs_self * act(sum) + rs_other * residual, stored at output (o, oy, ox).
void store_output(int o, int oy, int ox, float sum, float slope) {
  float v = activate(sum, ACT, p.alpha, p.beta, slope);
  const uint at = uint(o * p.oh + oy) * uint(p.ow) + uint(ox);
  if (RESIDUAL) v = p.rs_self * v + p.rs_other * float(r[at]);
  y[at] = sfloat(v);
}
