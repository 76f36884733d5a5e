#version 450
// One value per channel: the maximum or the mean of its plane. One group per channel; its
// invocations stride over the plane and then reduce in shared memory.
#include "common.glsl"
layout(local_size_x = GROUP_SIZE) in;
layout(constant_id = 0) const bool MAX = false;
layout(binding = 0) readonly buffer In { sfloat x[]; };
layout(binding = 1) writeonly buffer Out { sfloat y[]; };
layout(push_constant) uniform Push { uint plane; } p;
shared float partial[GROUP_SIZE];
void main() {
  const uint c = gl_WorkGroupID.x, t = gl_LocalInvocationID.x;
  float acc = MAX ? -1.0 / 0.0 : 0.0;
  for (uint i = t; i < p.plane; i += GROUP_SIZE) {
    float v = float(x[c * p.plane + i]);
    acc = MAX ? max(acc, v) : acc + v;
  }
  partial[t] = acc;
  barrier();
  for (uint s = GROUP_SIZE / 2; s > 0; s >>= 1) {
    if (t < s) partial[t] = MAX ? max(partial[t], partial[t + s]) : partial[t] + partial[t + s];
    barrier();
  }
  if (t == 0) y[c] = sfloat(MAX ? partial[0] : partial[0] / float(p.plane));
}
