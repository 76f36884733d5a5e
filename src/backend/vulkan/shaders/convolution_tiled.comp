#version 450
// Convolution through workgroup shared memory, for GPUs: a workgroup makes an 8 x 8 block of
// output pixels for OCT groups of four output channels. Per chunk of ICC input channels it first
// copies the input patch those pixels see (8 + KH - 1 rows of 8 + KW - 1) and the chunk's weights
// into shared memory, once for the whole workgroup, then each invocation makes one row of eight
// pixels for its four channels from there. Every input value and weight is read from device
// memory once per workgroup rather than once per invocation, as convolution.comp does; on a GPU
// that load is the cost. Stride 1, dilation 1 and kernels up to 3 x 3 only (the host picks
// convolution.comp for the rest). Bindings, weight packing and the epilogue: conv_layout.glsl.
#include "common.glsl"
layout(local_size_x = 8, local_size_y_id = 10) in;  // x: the block's row; y: the group of channels
layout(constant_id = 0) const int KH = 3;
layout(constant_id = 1) const int KW = 3;
layout(constant_id = 2) const int SH = 1;  // unused: stride 1 only
layout(constant_id = 3) const int SW = 1;
layout(constant_id = 4) const int DH = 1;  // unused: dilation 1 only
layout(constant_id = 5) const int DW = 1;
layout(constant_id = 6) const int ACT = 0;
layout(constant_id = 7) const bool RESIDUAL = false;
layout(constant_id = 8) const int PX = 8;   // unused: the block is 8 x 8
layout(constant_id = 9) const int OCB = 1;  // unused
layout(constant_id = 10) const int OCT = 16;
const int TILE = 8, ICC = 4, MAX_OCT = 16;
const int PH = TILE + KH - 1, PW = TILE + KW - 1, TAPS = KH * KW;

#include "conv_layout.glsl"

// Sized for the largest case (3 x 3, 16 groups): 4 x 10 x 10 floats and 4 x 9 x 16 vec4s, 10.8 KiB
// of the 16 KiB every Vulkan device offers.
shared float window[ICC * (TILE + 2) * (TILE + 2)];
shared vec4 weights[ICC * 9 * MAX_OCT];

void main() {
  const int row = int(gl_LocalInvocationID.x), group = int(gl_LocalInvocationID.y);
  const int threads = TILE * OCT, me = group * TILE + row;
  const int oy0 = int(gl_WorkGroupID.y) * TILE, ox0 = int(gl_WorkGroupID.x) * TILE;
  const int block0 = int(gl_WorkGroupID.z) * OCT, block = block0 + group;
  const int iy0 = oy0 - p.pad_top, ix0 = ox0 - p.pad_left;
  vec4 acc[TILE];
  const vec4 bias = block < p.blocks ? bias_slope[block] : vec4(0.0);
  for (int q = 0; q < TILE; ++q) acc[q] = bias;

  for (int c0 = 0; c0 < p.ic; c0 += ICC) {
    barrier();  // the previous chunk has been used by everyone
    for (int i = me; i < ICC * PH * PW; i += threads) {
      const int cc = i / (PH * PW), at = i % (PH * PW);
      const int c = c0 + cc, iy = iy0 + at / PW, ix = ix0 + at % PW;
      const bool inside = c < p.ic && iy >= 0 && iy < p.ih && ix >= 0 && ix < p.iw;
      window[i] = inside ? float(x[(c * p.ih + iy) * p.iw + ix]) : 0.0;
    }
    // Neighbouring invocations read neighbouring weights: a block's chunk is ICC * TAPS in a row.
    for (int i = me; i < ICC * TAPS * OCT; i += threads) {
      const int t = i % TAPS, cc = (i / TAPS) % ICC, b = i / (TAPS * ICC);
      const int c = c0 + cc, wb = block0 + b;
      weights[(cc * TAPS + t) * OCT + b] = c < p.ic && wb < p.blocks ? w[(wb * p.ic + c) * TAPS + t] : vec4(0.0);
    }
    barrier();
    for (int cc = 0; cc < ICC; ++cc)
      for (int ky = 0; ky < KH; ++ky) {
        float span[PW];
        const int from = (cc * PH + row + ky) * PW;
        for (int s = 0; s < PW; ++s) span[s] = window[from + s];
        for (int kx = 0; kx < KW; ++kx) {
          const vec4 wv = weights[(cc * TAPS + ky * KW + kx) * OCT + group];
          for (int q = 0; q < TILE; ++q) acc[q] += span[q + kx] * wv;
        }
      }
  }

  const int oy = oy0 + row;
  if (oy >= p.oh || block >= p.blocks) return;
  const vec4 slope = bias_slope[p.blocks + block];
  for (int k = 0; k < 4; ++k) {
    const int o = block * 4 + k;
    if (o >= p.oc) break;
    for (int q = 0; q < TILE; ++q) {
      const int ox = ox0 + q;
      if (ox >= p.ow) break;
      store_output(o, oy, ox, acc[q][k], slope[k]);
    }
  }
}
