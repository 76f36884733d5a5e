#version 450
// The storage type back to float32 for the host.
#include "common.glsl"
layout(local_size_x = GROUP_SIZE) in;
layout(binding = 0) readonly buffer Src { sfloat src[]; };
layout(binding = 1) writeonly buffer Dst { float dst[]; };
layout(push_constant) uniform Push { uint count; } p;
void main() {
  uint i = linear_id();
  if (i < p.count) dst[i] = float(src[i]);
}
