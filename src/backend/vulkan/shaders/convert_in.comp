#version 450
// float32 values from the host (an input tile, values handed in) into the storage type.
#include "common.glsl"
layout(local_size_x = GROUP_SIZE) in;
layout(binding = 0) readonly buffer Src { float src[]; };
layout(binding = 1) writeonly buffer Dst { sfloat dst[]; };
layout(push_constant) uniform Push { uint count; } p;
void main() {
  uint i = linear_id();
  if (i < p.count) dst[i] = sfloat(src[i]);
}
