#version 450
// Pads rows and columns with a constant, by reflection about the edge pixel, or by repeating it
// (the graph IR's PadMode, in its order).
#include "common.glsl"
layout(local_size_x = GROUP_SIZE) in;
layout(constant_id = 0) const int MODE = 0;
layout(binding = 0) readonly buffer In { sfloat x[]; };
layout(binding = 1) writeonly buffer Out { sfloat y[]; };
layout(push_constant) uniform Push { int c, ih, iw, oh, ow, top, left; float value; } p;

int source_index(int i, int n) {
  if (i >= 0 && i < n) return i;
  if (MODE == 0) return -1;                      // constant
  if (MODE == 2) return i < 0 ? 0 : n - 1;       // edge
  return i < 0 ? -i : 2 * (n - 1) - i;           // reflect (pads are under n)
}

void main() {
  uint i = linear_id();
  if (i >= uint(p.c * p.oh * p.ow)) return;
  int ox = int(i) % p.ow, oy = (int(i) / p.ow) % p.oh, c = int(i) / (p.ow * p.oh);
  int sy = source_index(oy - p.top, p.ih), sx = source_index(ox - p.left, p.iw);
  y[i] = sy < 0 || sx < 0 ? sfloat(p.value) : x[uint(c * p.ih + sy) * uint(p.iw) + uint(sx)];
}
