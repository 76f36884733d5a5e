#version 450
// Depth to space: c * r * r channels of h x w become c channels of rh x rw, in PyTorch's
// (c, i, j) order or the depth-column-row order.
#include "common.glsl"
layout(local_size_x = GROUP_SIZE) in;
layout(binding = 0) readonly buffer In { sfloat x[]; };
layout(binding = 1) writeonly buffer Out { sfloat y[]; };
layout(push_constant) uniform Push { int oc, ih, iw, r, depth_column_row; } p;
void main() {
  uint i = linear_id();
  const int oh = p.ih * p.r, ow = p.iw * p.r;
  if (i >= uint(p.oc * oh * ow)) return;
  int ox = int(i) % ow, oy = (int(i) / ow) % oh, c = int(i) / (ow * oh);
  int ri = oy % p.r, rj = ox % p.r;
  int src_c = p.depth_column_row != 0 ? (ri * p.r + rj) * p.oc + c : (c * p.r + ri) * p.r + rj;
  y[i] = x[uint(src_c * p.ih + oy / p.r) * uint(p.iw) + uint(ox / p.r)];
}
