#version 450
// A frame's planes into the graph's input: RGB, padded by the model's border rule (upscaler.cpp's
// fill: reflect, replicate, or zeros for zero-padded networks) out to the padded size.
#include "common.glsl"
layout(local_size_x = GROUP_SIZE) in;
#include "frame.glsl"
layout(binding = 2) writeonly buffer Dst { sfloat dst[]; };
layout(push_constant) uniform Push { int padded_h, padded_w, border, zero_outside, reflect; } p;

int source_index(int i, int n) {
  if (i >= 0 && i < n) return i;
  if (p.reflect != 0 && n > 1) {
    const int period = 2 * (n - 1);
    const int m = ((i % period) + period) % period;
    return m < n ? m : period - m;
  }
  return clamp(i, 0, n - 1);
}

void main() {
  const uint id = linear_id();
  const int plane = p.padded_h * p.padded_w;
  if (id >= uint(plane)) return;
  const int y = int(id) / p.padded_w, x = int(id) % p.padded_w;
  const int h = formats[0].height, w = formats[0].width;
  const int iy = y - p.border, ix = x - p.border;
  vec3 rgb = vec3(0.0);
  if (p.zero_outside == 0 || (iy >= 0 && iy < h && ix >= 0 && ix < w))
    rgb = input_rgb(source_index(iy, h), source_index(ix, w));
  for (int c = 0; c < 3; ++c) dst[c * plane + int(id)] = sfloat(rgb[c]);
}
