#version 450
// Resize by taps worked out on the host (ops/interp.hpp, shared with the reference kernel): each
// output row and column has up to four (input index, weight) pairs; nearest, bilinear and bicubic
// differ only in their taps. Rows' taps come first in the buffer, then columns'.
#include "common.glsl"
layout(local_size_x = GROUP_SIZE) in;
struct Taps {
  ivec4 index;
  vec4 weight;
};
layout(binding = 0) readonly buffer In { sfloat x[]; };
layout(binding = 1) readonly buffer TapTable { Taps taps[]; };
layout(binding = 2) writeonly buffer Out { sfloat y[]; };
layout(push_constant) uniform Push { int c, ih, iw, oh, ow; } p;
void main() {
  uint i = linear_id();
  if (i >= uint(p.c * p.oh * p.ow)) return;
  int ox = int(i) % p.ow, oy = (int(i) / p.ow) % p.oh, c = int(i) / (p.ow * p.oh);
  Taps ty = taps[oy], tx = taps[p.oh + ox];
  uint plane = uint(c * p.ih * p.iw);
  float sum = 0.0;
  for (int a = 0; a < 4; ++a) {
    if (ty.weight[a] == 0.0) continue;
    uint row = plane + uint(ty.index[a] * p.iw);
    float along = 0.0;
    for (int b = 0; b < 4; ++b)
      if (tx.weight[b] != 0.0) along += tx.weight[b] * float(x[row + uint(tx.index[b])]);
    sum += ty.weight[a] * along;
  }
  y[i] = sfloat(sum);
}
