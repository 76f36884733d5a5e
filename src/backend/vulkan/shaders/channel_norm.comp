#version 450
// LayerNorm over the channels of each pixel: one invocation per pixel, two passes over its channels
// (the mean, then the variance about it, as the reference computes them). Sums are taken about the
// first channel's value: features far from zero (3 +- 0.01) would otherwise lose their spread to
// float32 rounding in the sum.
#include "common.glsl"
layout(local_size_x = GROUP_SIZE) in;
layout(binding = 0) readonly buffer In { sfloat x[]; };
layout(binding = 1) readonly buffer Params { float params[]; };  // [c] scales, then [c] shifts (affine)
layout(binding = 2) writeonly buffer Out { sfloat y[]; };
layout(push_constant) uniform Push { uint plane, channels, affine; float eps; } p;
void main() {
  uint i = linear_id();
  if (i >= p.plane) return;
  float pivot = float(x[i]), sum = 0.0;
  for (uint c = 0; c < p.channels; ++c) sum += float(x[c * p.plane + i]) - pivot;
  float mean = sum / float(p.channels);  // about the pivot
  float squares = 0.0;
  for (uint c = 0; c < p.channels; ++c) {
    float d = float(x[c * p.plane + i]) - pivot - mean;
    squares += d * d;
  }
  float inv = inversesqrt(squares / float(p.channels) + p.eps);
  for (uint c = 0; c < p.channels; ++c) {
    float v = (float(x[c * p.plane + i]) - pivot - mean) * inv;
    if (p.affine != 0) v = v * params[c] + params[p.channels + c];
    y[c * p.plane + i] = sfloat(v);
  }
}
