#version 450
// Copies a box of one tensor into a box of another: Crop (a window of the input) and Concat (each
// input into its place along the axis).
#include "common.glsl"
layout(local_size_x = GROUP_SIZE) in;
layout(binding = 0) readonly buffer In { sfloat x[]; };
layout(binding = 1) writeonly buffer Out { sfloat y[]; };
layout(push_constant) uniform Push {
  int c, h, w;                 // the box
  int src_h, src_w, src_c0, src_y0, src_x0;
  int dst_h, dst_w, dst_c0, dst_y0, dst_x0;
} p;
void main() {
  uint i = linear_id();
  if (i >= uint(p.c * p.h * p.w)) return;
  int xx = int(i) % p.w, yy = (int(i) / p.w) % p.h, cc = int(i) / (p.w * p.h);
  uint from = uint((cc + p.src_c0) * p.src_h + yy + p.src_y0) * uint(p.src_w) + uint(xx + p.src_x0);
  uint to = uint((cc + p.dst_c0) * p.dst_h + yy + p.dst_y0) * uint(p.dst_w) + uint(xx + p.dst_x0);
  y[to] = x[from];
}
