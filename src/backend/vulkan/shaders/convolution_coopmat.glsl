// The body of convolution_coopmat.comp and convolution_coopmat_emulated.comp (see the first).
// COOPMAT_NV 1: the products through GL_NV_cooperative_matrix; 0: the same products written out
// as plain loops over the same shared memory, so that every index of this kernel (windows, taps,
// weight staging, epilogue, edges) is tested against the reference on devices without tensor
// cores (lavapipe). Each group of 32 invocations stands for a subgroup; invocation l holds
// elements 8l..8l+7 of each 16 x 16 accumulator in row-major order.
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

#include "conv_layout.glsl"

// 3.4 + 2 + 16 KiB: the window (3 x 3 kernel), one tap's weights, the accumulators.
shared float16_t window[(ROWS + 2) * (COLS + 2) * CC];
shared float16_t tap_weights[CC * OCT];
shared float sums[ROWS * COLS * OCT];

void main() {
#if COOPMAT_NV
  const int me = int(gl_LocalInvocationID.x), row = int(gl_SubgroupID);  // four subgroups of 32 (host)
#else
  const int me = int(gl_LocalInvocationID.x), row = me / 32;
#endif
  const int oy0 = int(gl_WorkGroupID.y) * ROWS, ox0 = int(gl_WorkGroupID.x) * COLS;
  const int block0 = int(gl_WorkGroupID.z) * (OCT / 4);
  const int iy0 = oy0 - p.pad_top, ix0 = ox0 - p.pad_left;
#if COOPMAT_NV
  fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[OCT / 16];
  for (int j = 0; j < OCT / 16; ++j) acc[j] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
#else
  const int lane = me % 32;
  float acc[OCT / 16][8];
  for (int j = 0; j < OCT / 16; ++j)
    for (int e = 0; e < 8; ++e) acc[j][e] = 0.0;
#endif

  for (int c0 = 0; c0 < p.ic; c0 += CC) {
    barrier();  // everyone is done with the previous chunk's window
    // Read along rows (neighbouring invocations, neighbouring pixels), stored channel-innermost.
    for (int i = me; i < PH * PW * CC; i += 128) {
      const int at = i % (PH * PW), cc = i / (PH * PW), c = c0 + cc, iy = iy0 + at / PW, ix = ix0 + at % PW;
      const bool inside = c < p.ic && iy >= 0 && iy < p.ih && ix >= 0 && ix < p.iw;
      window[at * CC + cc] = float16_t(inside ? float(x[(c * p.ih + iy) * p.iw + ix]) : 0.0);
    }
    for (int t = 0; t < TAPS; ++t) {
      barrier();  // the previous tap's weights have been used (and the window is written)
      for (int i = me; i < CC * OCT / 4; i += 128) {  // a vec4 of four output channels each
        const int nb = i % (OCT / 4), cc = i / (OCT / 4), c = c0 + cc, block = block0 + nb;
        const vec4 v = c < p.ic && block < p.blocks ? w[(block * p.ic + c) * TAPS + t] : vec4(0.0);
        for (int k = 0; k < 4; ++k) tap_weights[cc * OCT + nb * 4 + k] = float16_t(v[k]);
      }
      barrier();
      const int ky = t / KW, kx = t % KW, a0 = ((row + ky) * PW + kx) * CC;
#if COOPMAT_NV
      fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> a;
      coopMatLoadNV(a, window, uint(a0), uint(CC), false);
      for (int j = 0; j < OCT / 16; ++j) {
        fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> b;
        coopMatLoadNV(b, tap_weights, uint(j * 16), uint(OCT), false);
        acc[j] = coopMatMulAddNV(a, b, acc[j]);
      }
#else
      // Kept as loops: unrolled, lavapipe takes seconds to compile each specialisation.
      [[dont_unroll]] for (int j = 0; j < OCT / 16; ++j)
        [[dont_unroll]] for (int e = 0; e < 8; ++e) {
          const int m = (lane * 8 + e) / 16, n = (lane * 8 + e) % 16;
          [[dont_unroll]] for (int k = 0; k < 16; ++k)
            acc[j][e] += float(window[a0 + m * CC + k]) * float(tap_weights[k * OCT + j * 16 + n]);
        }
#endif
    }
  }

#if COOPMAT_NV
  for (int j = 0; j < OCT / 16; ++j)
    coopMatStoreNV(acc[j], sums, uint(row * COLS * OCT + j * 16), uint(OCT), false);
#else
  for (int j = 0; j < OCT / 16; ++j)
    for (int e = 0; e < 8; ++e) {
      const int m = (lane * 8 + e) / 16, n = (lane * 8 + e) % 16;
      sums[row * COLS * OCT + m * OCT + j * 16 + n] = acc[j][e];
    }
#endif
  barrier();
  for (int i = me; i < ROWS * COLS * OCT; i += 128) {
    const int q = i % COLS, rr = (i / COLS) % ROWS, n = i / (COLS * ROWS);
    const int oy = oy0 + rr, ox = ox0 + q, block = block0 + n / 4, o = block * 4 + n % 4;
    if (oy >= p.oh || ox >= p.ow || o >= p.oc) continue;
    const float v0 = sums[(rr * COLS + q) * OCT + n] + bias_slope[block][n % 4];
    store_output(o, oy, ox, v0, bias_slope[p.blocks + block][n % 4]);
  }
}
