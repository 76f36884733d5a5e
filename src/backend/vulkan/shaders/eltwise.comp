#version 450
// One step of an Eltwise over n inputs: out = f(a, b) for the first two, then out = f(out, input k)
// for each further one (a bound to out). sum weighs a and b by its coefficients.
#include "common.glsl"
layout(local_size_x = GROUP_SIZE) in;
layout(constant_id = 0) const int KIND = 1;  // EltwiseKind: 0 prod, 1 sum, 2 max
layout(binding = 0) readonly buffer A { sfloat a[]; };
layout(binding = 1) readonly buffer B { sfloat b[]; };
layout(binding = 2) buffer Out { sfloat y[]; };
layout(push_constant) uniform Push { uint count; float coeff_a, coeff_b; } p;
void main() {
  uint i = linear_id();
  if (i >= p.count) return;
  float u = float(a[i]), v = float(b[i]);
  float r = KIND == 0 ? u * v : (KIND == 1 ? p.coeff_a * u + p.coeff_b * v : max(u, v));
  y[i] = sfloat(r);
}
