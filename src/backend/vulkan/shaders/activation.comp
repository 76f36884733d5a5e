#version 450
// A standalone activation (ReLU, leaky ReLU, PReLU, Sigmoid, Clip, SiLU) over a whole tensor;
// the ones that follow a convolution are fused into it instead.
#include "common.glsl"
layout(local_size_x = GROUP_SIZE) in;
layout(constant_id = 0) const int ACT = 0;
layout(binding = 0) readonly buffer In { sfloat x[]; };
layout(binding = 1) readonly buffer Slopes { float slopes[]; };  // PReLU: one per channel, or one
layout(binding = 2) writeonly buffer Out { sfloat y[]; };
layout(push_constant) uniform Push { uint count, plane, slope_count; float alpha, beta; } p;
void main() {
  uint i = linear_id();
  if (i >= p.count) return;
  float slope = ACT == ACT_PRELU ? slopes[p.slope_count == 1 ? 0 : i / p.plane] : 0.0;
  y[i] = sfloat(activate(float(x[i]), ACT, p.alpha, p.beta, slope));
}
