#version 450
// Arithmetic on two tensors with numpy-style broadcasting (an extent of 1 stretches), or on one
// tensor and a scalar. Kinds in the order of the graph IR's BinaryOpKind.
#include "common.glsl"
layout(local_size_x = GROUP_SIZE) in;
layout(constant_id = 0) const int KIND = 0;
layout(constant_id = 1) const bool WITH_SCALAR = false;
layout(binding = 0) readonly buffer A { sfloat a[]; };
layout(binding = 1) readonly buffer B { sfloat b[]; };
layout(binding = 2) writeonly buffer Out { sfloat y[]; };
layout(push_constant) uniform Push { int c, h, w, ac, ah, aw, bc, bh, bw; float scalar; } p;

float power(float base, float e) {
  // GLSL's pow is undefined for a negative base; integer exponents are what models use there.
  if (base == 0.0) return e == 0.0 ? 1.0 : (e > 0.0 ? 0.0 : 1.0 / 0.0);  // pow(0, e) is undefined in GLSL
  if (base > 0.0 || e != floor(e)) return pow(base, e);
  float m = pow(-base, e);
  return mod(e, 2.0) == 0.0 ? m : -m;
}

float apply(float u, float v) {
  switch (KIND) {
    case 0: return u + v;
    case 1: return u - v;
    case 2: return u * v;
    case 3: return u / v;
    case 4: return max(u, v);
    case 5: return min(u, v);
    case 6: return power(u, v);
    case 7: return v - u;
    case 8: return v / u;
  }
  return 0.0;
}

uint at(int c, int yy, int xx, int tc, int th, int tw) {
  return uint((tc == 1 ? 0 : c) * th + (th == 1 ? 0 : yy)) * uint(tw) + uint(tw == 1 ? 0 : xx);
}

void main() {
  uint i = linear_id();
  if (i >= uint(p.c * p.h * p.w)) return;
  int xx = int(i) % p.w, yy = (int(i) / p.w) % p.h, c = int(i) / (p.w * p.h);
  float u = float(a[at(c, yy, xx, p.ac, p.ah, p.aw)]);
  float v = WITH_SCALAR ? p.scalar : float(b[at(c, yy, xx, p.bc, p.bh, p.bw)]);
  y[i] = sfloat(apply(u, v));
}
