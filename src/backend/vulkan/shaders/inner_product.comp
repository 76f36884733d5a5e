#version 450
// Fully connected over the flattened input, one invocation per output feature, with bias and a
// fused activation. Weights are [out][in] float32.
#include "common.glsl"
layout(local_size_x = GROUP_SIZE) in;
layout(constant_id = 0) const int ACT = 0;
layout(binding = 0) readonly buffer In { sfloat x[]; };
layout(binding = 1) readonly buffer Weights { float w[]; };
layout(binding = 2) readonly buffer Bias { float bias[]; };
layout(binding = 3) writeonly buffer Out { sfloat y[]; };
layout(push_constant) uniform Push { uint n, out_features, has_bias; float alpha, beta; } p;
void main() {
  uint o = linear_id();
  if (o >= p.out_features) return;
  float sum = p.has_bias != 0 ? bias[o] : 0.0;
  for (uint i = 0; i < p.n; ++i) sum += w[o * p.n + i] * float(x[i]);
  y[o] = sfloat(activate(sum, ACT, p.alpha, p.beta, 0.0));
}
