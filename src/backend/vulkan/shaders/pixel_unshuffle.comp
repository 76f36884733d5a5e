#version 450
// Space to depth: c channels of rh x rw become c * r * r channels of h x w, in PyTorch's
// (c, i, j) order or the depth-column-row order (the inverse of pixel_shuffle.comp).
#include "common.glsl"
layout(local_size_x = GROUP_SIZE) in;
layout(binding = 0) readonly buffer In { sfloat x[]; };
layout(binding = 1) writeonly buffer Out { sfloat y[]; };
layout(push_constant) uniform Push { int ic, oh, ow, r, depth_column_row; } p;
void main() {
  uint i = linear_id();
  const int oc = p.ic * p.r * p.r;
  if (i >= uint(oc * p.oh * p.ow)) return;
  int ox = int(i) % p.ow, oy = (int(i) / p.ow) % p.oh, o = int(i) / (p.ow * p.oh);
  int c, ri, rj;
  if (p.depth_column_row != 0) {
    c = o % p.ic;
    ri = o / p.ic / p.r;
    rj = o / p.ic % p.r;
  } else {
    c = o / (p.r * p.r);
    ri = o / p.r % p.r;
    rj = o % p.r;
  }
  const int iw = p.ow * p.r, ih = p.oh * p.r;
  y[i] = x[uint(c * ih + oy * p.r + ri) * uint(iw) + uint(ox * p.r + rj)];
}
