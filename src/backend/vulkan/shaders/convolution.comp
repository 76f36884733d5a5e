#version 450
// Convolution with its epilogue fused: bias, activation, then the residual sum
// out = rs_self * act(conv) + rs_other * residual. Each invocation makes four output channels of
// one pixel, so every input value it loads feeds four multiply-adds. Weights are packed by the
// host as [oc / 4][ic][kh][kw] of vec4 (four output channels, zero past the last one).
#include "common.glsl"
layout(local_size_x = GROUP_SIZE) in;
layout(constant_id = 0) const int KH = 3;
layout(constant_id = 1) const int KW = 3;
layout(constant_id = 2) const int SH = 1;
layout(constant_id = 3) const int SW = 1;
layout(constant_id = 4) const int DH = 1;
layout(constant_id = 5) const int DW = 1;
layout(constant_id = 6) const int ACT = 0;
layout(constant_id = 7) const bool RESIDUAL = false;

layout(binding = 0) readonly buffer In { sfloat x[]; };
layout(binding = 1) readonly buffer Weights { vec4 w[]; };
layout(binding = 2) readonly buffer Params { vec4 bias_slope[]; };  // [oc/4] bias, then [oc/4] slopes
layout(binding = 3) readonly buffer Residual { sfloat r[]; };
layout(binding = 4) writeonly buffer Out { sfloat y[]; };
layout(push_constant) uniform Push {
  int ic, ih, iw, oc, oh, ow, pad_top, pad_left;
  float alpha, beta, rs_self, rs_other;
} p;

void main() {
  const uint pixel = linear_id();
  if (pixel >= uint(p.oh * p.ow)) return;
  const int oy = int(pixel) / p.ow, ox = int(pixel) % p.ow;
  const int block = int(gl_GlobalInvocationID.z);
  const int blocks = (p.oc + 3) / 4;
  vec4 sum = bias_slope[block];
  const int y0 = oy * SH - p.pad_top, x0 = ox * SW - p.pad_left;
  uint wi = uint(block) * uint(p.ic * KH * KW);
  for (int c = 0; c < p.ic; ++c) {
    const uint plane = uint(c) * uint(p.ih * p.iw);
    for (int ky = 0; ky < KH; ++ky) {
      const int iy = y0 + ky * DH;
      if (iy < 0 || iy >= p.ih) {
        wi += KW;
        continue;
      }
      const uint row = plane + uint(iy * p.iw);
      for (int kx = 0; kx < KW; ++kx, ++wi) {
        const int ix = x0 + kx * DW;
        if (ix >= 0 && ix < p.iw) sum += float(x[row + uint(ix)]) * w[wi];
      }
    }
  }
  const vec4 slope = bias_slope[blocks + block];
  for (int k = 0; k < 4; ++k) {
    const int o = block * 4 + k;
    if (o >= p.oc) break;
    float v = activate(sum[k], ACT, p.alpha, p.beta, slope[k]);
    const uint at = uint(o * p.oh + oy) * uint(p.ow) + uint(ox);
    if (RESIDUAL) v = p.rs_self * v + p.rs_other * float(r[at]);
    y[at] = sfloat(v);
  }
}
