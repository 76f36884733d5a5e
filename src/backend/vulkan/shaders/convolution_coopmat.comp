#version 450
// Convolution on tensor cores through VK_NV_cooperative_matrix (NVIDIA), as a sum of matrix
// products: for each kernel tap, [pixels x input channels] times [input channels x output
// channels], in 16 x 16 x 16 float16 products accumulated in float32.
//
// A workgroup is four subgroups of 32 and makes 4 rows of 16 output pixels for 64 output
// channels, one row per subgroup (four 16 x 16 accumulators each). Per chunk of 16 input channels
// it copies the input window those pixels see into shared memory as float16, pixel by pixel with
// the 16 channels together: then each tap's [16 pixels x 16 channels] operand is a plain
// row-major matrix in that window (stride 16), loaded without any copy. Per tap it copies that
// tap's [16 channels x 64 outputs] weights next to it. At the end the accumulators go through
// shared memory so every invocation can apply the epilogue of convolution.comp (bias, activation,
// residual) to its own values. Stride 1, dilation 1, kernels up to 3 x 3; the host uses it only
// where the device offers this product shape (PhysicalDevice::coopmat_f16), with float16
// storage, and after checking it against convolution.comp on the device.
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#include "common.glsl"
layout(local_size_x = 128) in;
layout(constant_id = 0) const int KH = 3;
layout(constant_id = 1) const int KW = 3;
layout(constant_id = 2) const int SH = 1;  // unused: stride 1 only
layout(constant_id = 3) const int SW = 1;
layout(constant_id = 4) const int DH = 1;  // unused: dilation 1 only
layout(constant_id = 5) const int DW = 1;
layout(constant_id = 6) const int ACT = 0;
layout(constant_id = 7) const bool RESIDUAL = false;
const int ROWS = 4, COLS = 16, CC = 16, OCT = 64;  // rows, columns, channels per chunk, outputs
const int PH = ROWS + KH - 1, PW = COLS + KW - 1, TAPS = KH * KW;

layout(binding = 0) readonly buffer In { sfloat x[]; };
layout(binding = 1) readonly buffer Weights { vec4 w[]; };
layout(binding = 2) readonly buffer Params { vec4 bias_slope[]; };
layout(binding = 3) readonly buffer Residual { sfloat r[]; };
layout(binding = 4) writeonly buffer Out { sfloat y[]; };
layout(push_constant) uniform Push {
  int ic, ih, iw, oc, oh, ow, pad_top, pad_left;
  float alpha, beta, rs_self, rs_other;
  int blocks;
} p;

// 3.4 + 2 + 16 KiB: the window (3 x 3 kernel), one tap's weights, the accumulators.
shared float16_t window[(ROWS + 2) * (COLS + 2) * CC];
shared float16_t tap_weights[CC * OCT];
shared float sums[ROWS * COLS * OCT];

void main() {
  const int me = int(gl_LocalInvocationID.x), row = me / 32;  // subgroups of 32: one row each
  const int oy0 = int(gl_WorkGroupID.y) * ROWS, ox0 = int(gl_WorkGroupID.x) * COLS;
  const int block0 = int(gl_WorkGroupID.z) * (OCT / 4);
  const int iy0 = oy0 - p.pad_top, ix0 = ox0 - p.pad_left;
  fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[OCT / 16];
  for (int j = 0; j < OCT / 16; ++j) acc[j] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);

  for (int c0 = 0; c0 < p.ic; c0 += CC) {
    barrier();  // everyone is done with the previous chunk's window
    for (int i = me; i < PH * PW * CC; i += 128) {
      const int c = c0 + i % CC, at = i / CC, iy = iy0 + at / PW, ix = ix0 + at % PW;
      const bool inside = c < p.ic && iy >= 0 && iy < p.ih && ix >= 0 && ix < p.iw;
      window[i] = float16_t(inside ? float(x[(c * p.ih + iy) * p.iw + ix]) : 0.0);
    }
    for (int t = 0; t < TAPS; ++t) {
      barrier();  // the previous tap's weights have been used (and the window is written)
      for (int i = me; i < CC * OCT; i += 128) {
        const int n = i % OCT, c = c0 + i / OCT, block = block0 + n / 4;
        tap_weights[i] = float16_t(c < p.ic && block < p.blocks ? w[(block * p.ic + c) * TAPS + t][n % 4] : 0.0);
      }
      barrier();
      const int ky = t / KW, kx = t % KW;
      fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> a;
      coopMatLoadNV(a, window, uint(((row + ky) * PW + kx) * CC), uint(CC), false);
      for (int j = 0; j < OCT / 16; ++j) {
        fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> b;
        coopMatLoadNV(b, tap_weights, uint(j * 16), uint(OCT), false);
        acc[j] = coopMatMulAddNV(a, b, acc[j]);
      }
    }
  }

  for (int j = 0; j < OCT / 16; ++j) coopMatStoreNV(acc[j], sums, uint(row * COLS * OCT + j * 16), uint(OCT), false);
  barrier();
  for (int i = me; i < ROWS * COLS * OCT; i += 128) {
    const int q = i % COLS, rr = (i / COLS) % ROWS, n = i / (COLS * ROWS);
    const int oy = oy0 + rr, ox = ox0 + q, block = block0 + n / 4, o = block * 4 + n % 4;
    if (oy >= p.oh || ox >= p.ow || o >= p.oc) continue;
    const float v0 = sums[(rr * COLS + q) * OCT + n] + bias_slope[block][n % 4];
    float v = activate(v0, ACT, p.alpha, p.beta, bias_slope[p.blocks + block][n % 4]);
    const uint at = uint(o * p.oh + oy) * uint(p.ow) + uint(ox);
    if (RESIDUAL) v = p.rs_self * v + p.rs_other * float(r[at]);
    y[at] = sfloat(v);
  }
}
