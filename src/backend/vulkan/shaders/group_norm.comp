#version 450
// GroupNorm from the frame's per-channel mean and mean of squares (global average poolings): each
// invocation works out its channel's group statistics (a few channels) and normalises one value.
#include "common.glsl"
layout(local_size_x = GROUP_SIZE) in;
layout(binding = 0) readonly buffer In { sfloat x[]; };
layout(binding = 1) readonly buffer Means { sfloat means[]; };
layout(binding = 2) readonly buffer Squares { sfloat squares[]; };
layout(binding = 3) readonly buffer Params { float params[]; };  // [c] scales, then [c] shifts (affine)
layout(binding = 4) writeonly buffer Out { sfloat y[]; };
layout(push_constant) uniform Push { uint count, plane, channels, per_group, affine; float eps; } p;
void main() {
  uint i = linear_id();
  if (i >= p.count) return;
  uint c = i / p.plane, first = c / p.per_group * p.per_group;
  float mean = 0.0, sq = 0.0;
  for (uint k = first; k < first + p.per_group; ++k) {
    mean += float(means[k]);
    sq += float(squares[k]);
  }
  mean /= float(p.per_group);
  float variance = max(sq / float(p.per_group) - mean * mean, 0.0);
  float scale = inversesqrt(variance + p.eps), shift = -mean * scale;
  if (p.affine != 0) {
    shift = shift * params[c] + params[p.channels + c];
    scale *= params[c];
  }
  y[i] = sfloat(float(x[i]) * scale + shift);
}
