#version 450
// Per-channel multiply by stored factors or by a second input of one value per channel, plus an
// optional per-channel bias (the excitation step of squeeze-excitation).
#include "common.glsl"
layout(local_size_x = GROUP_SIZE) in;
layout(constant_id = 0) const bool FROM_INPUT = false;
layout(binding = 0) readonly buffer In { sfloat x[]; };
layout(binding = 1) readonly buffer InputFactors { sfloat input_factors[]; };
layout(binding = 2) readonly buffer Params { float params[]; };  // [c] stored factors (unless FROM_INPUT), then [c] bias
layout(binding = 3) writeonly buffer Out { sfloat y[]; };
layout(push_constant) uniform Push { uint count, plane, channels, has_bias; } p;
void main() {
  uint i = linear_id();
  if (i >= p.count) return;
  uint c = i / p.plane;
  float f = FROM_INPUT ? float(input_factors[c]) : params[c];
  float b = p.has_bias != 0 ? params[(FROM_INPUT ? 0 : p.channels) + c] : 0.0;
  y[i] = sfloat(float(x[i]) * f + b);
}
