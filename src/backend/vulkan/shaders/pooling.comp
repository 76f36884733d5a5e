#version 450
// Windowed max or average pooling. Averages divide by the full window when count_include_pad,
// else by the taps inside the input.
#include "common.glsl"
layout(local_size_x = GROUP_SIZE) in;
layout(constant_id = 0) const bool MAX = true;
layout(constant_id = 1) const bool COUNT_PAD = true;
layout(binding = 0) readonly buffer In { sfloat x[]; };
layout(binding = 1) writeonly buffer Out { sfloat y[]; };
layout(push_constant) uniform Push { int c, ih, iw, oh, ow, kh, kw, sh, sw, pad_top, pad_left; } p;
void main() {
  uint i = linear_id();
  if (i >= uint(p.c * p.oh * p.ow)) return;
  int ox = int(i) % p.ow, oy = (int(i) / p.ow) % p.oh, c = int(i) / (p.ow * p.oh);
  int y0 = oy * p.sh - p.pad_top, x0 = ox * p.sw - p.pad_left;
  float sum = 0.0, best = -1.0 / 0.0;
  int count = 0;
  for (int yy = max(y0, 0); yy < min(y0 + p.kh, p.ih); ++yy)
    for (int xx = max(x0, 0); xx < min(x0 + p.kw, p.iw); ++xx) {
      float v = float(x[uint((c * p.ih + yy) * p.iw + xx)]);
      sum += v;
      best = max(best, v);
      ++count;
    }
  y[i] = sfloat(MAX ? best : sum / float(COUNT_PAD ? p.kh * p.kw : count));
}
