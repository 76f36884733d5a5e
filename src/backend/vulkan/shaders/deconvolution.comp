#version 450
// Transposed convolution, gathered: output (oy, ox) sits at (oy + pad_top, ox + pad_left) of the
// uncut output, which input (iy, ix) reaches through tap (ky, kx) when iy * stride + ky * dilation
// equals it. Bindings, weight packing and the epilogue: conv_layout.glsl.
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

#include "conv_layout.glsl"

void main() {
  const uint pixel = linear_id();
  if (pixel >= uint(p.oh * p.ow)) return;
  const int oy = int(pixel) / p.ow, ox = int(pixel) % p.ow;
  const int block = int(gl_GlobalInvocationID.z);
  vec4 sum = bias_slope[block];
  for (int ky = 0; ky < KH; ++ky) {
    const int ty = oy + p.pad_top - ky * DH;
    if (ty < 0 || ty % SH != 0 || ty / SH >= p.ih) continue;
    const int iy = ty / SH;
    for (int kx = 0; kx < KW; ++kx) {
      const int tx = ox + p.pad_left - kx * DW;
      if (tx < 0 || tx % SW != 0 || tx / SW >= p.iw) continue;
      const int ix = tx / SW;
      uint wi = uint(block * p.ic * KH * KW + ky * KW + kx);
      uint xi = uint(iy * p.iw + ix);
      for (int c = 0; c < p.ic; ++c, wi += KH * KW, xi += uint(p.ih * p.iw)) sum += float(x[xi]) * w[wi];
    }
  }
  const vec4 slope = bias_slope[p.blocks + block];
  for (int k = 0; k < 4; ++k) {
    const int o = block * 4 + k;
    if (o >= p.oc) break;
    store_output(o, oy, ox, sum[k], slope[k]);
  }
}
