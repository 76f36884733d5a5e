#version 450
// Convolution with its epilogue fused: bias, activation, then the residual sum
// out = rs_self * act(conv) + rs_other * residual.
//
// Register-blocked: each invocation makes PX neighbouring pixels of a row for OCB groups of four
// output channels. Per input channel and kernel row it loads the span of input those PX pixels
// see once, and per tap OCB vec4s of weights, then does PX * OCB * 4 multiply-adds: several times
// the work per load of one pixel at a time. Bindings, weight packing and the epilogue are
// conv_layout.glsl's, shared by every convolution kernel.
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
layout(constant_id = 8) const int PX = 8;
layout(constant_id = 9) const int OCB = 2;
const int SPAN = (PX - 1) * SW + (KW - 1) * DW + 1;

#include "conv_layout.glsl"

void main() {
  const int runs = (p.ow + PX - 1) / PX;
  const uint id = linear_id();
  if (id >= uint(p.oh * runs)) return;
  const int oy = int(id) / runs, ox0 = (int(id) % runs) * PX;
  const int block0 = int(gl_GlobalInvocationID.z) * OCB;
  vec4 acc[PX][OCB];
  for (int b = 0; b < OCB; ++b)
    for (int q = 0; q < PX; ++q) acc[q][b] = bias_slope[block0 + b];
  const int y0 = oy * SH - p.pad_top, x0 = ox0 * SW - p.pad_left;
  const int taps = KH * KW;
  for (int c = 0; c < p.ic; ++c) {
    const int plane = c * p.ih * p.iw;
    for (int ky = 0; ky < KH; ++ky) {
      const int iy = y0 + ky * DH;
      if (iy < 0 || iy >= p.ih) continue;
      float span[SPAN];
      const int row = plane + iy * p.iw;
      for (int s = 0; s < SPAN; ++s) {
        const int ix = x0 + s;
        span[s] = ix >= 0 && ix < p.iw ? float(x[row + ix]) : 0.0;
      }
      for (int kx = 0; kx < KW; ++kx) {
        vec4 wv[OCB];
        for (int b = 0; b < OCB; ++b) wv[b] = w[((block0 + b) * p.ic + c) * taps + ky * KW + kx];
        for (int q = 0; q < PX; ++q) {
          const float v = span[q * SW + kx * DW];
          for (int b = 0; b < OCB; ++b) acc[q][b] += v * wv[b];
        }
      }
    }
  }
  for (int b = 0; b < OCB; ++b) {
    const vec4 slope = bias_slope[p.blocks + block0 + b];
    for (int k = 0; k < 4; ++k) {
      const int o = (block0 + b) * 4 + k;
      if (o >= p.oc) break;
      for (int q = 0; q < PX; ++q) {
        const int ox = ox0 + q;
        if (ox >= p.ow) break;
        store_output(o, oy, ox, acc[q][b][k], slope[k]);
      }
    }
  }
}
