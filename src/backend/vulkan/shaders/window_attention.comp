#version 450
// Attention inside (shifted) windows: one invocation per window, head and query token, which keeps
// its query and its output in registers and walks the window's keys once with a running softmax
// (the largest score so far rescales what is summed), so no window's scores are ever stored.
#include "common.glsl"
#define MAX_HEAD_DIM 64
layout(local_size_x = GROUP_SIZE) in;
layout(binding = 0) readonly buffer Q { sfloat q[]; };
layout(binding = 1) readonly buffer K { sfloat k[]; };
layout(binding = 2) readonly buffer V { sfloat v[]; };
layout(binding = 3) readonly buffer Bias { float bias[]; };  // heads x tokens x tokens
layout(binding = 4) writeonly buffer Out { sfloat y[]; };
layout(push_constant) uniform Push {
  uint count, height, width, heads, head_dim, window_h, window_w, shift_y, shift_x, q_channel, k_channel,
      v_channel, masked;
  float scale, mask_value;
} p;

// Where token n of a window sits, and which edges it wrapped around (2: bottom, 1: right).
uint pixel_of(uint window, uint n, out uint wrap) {
  uint across = p.width / p.window_w;
  uint yy = (window / across) * p.window_h + n / p.window_w + p.shift_y;
  uint xx = (window % across) * p.window_w + n % p.window_w + p.shift_x;
  wrap = (yy >= p.height ? 2u : 0u) + (xx >= p.width ? 1u : 0u);
  return (yy % p.height) * p.width + xx % p.width;
}

void main() {
  uint id = linear_id();
  if (id >= p.count) return;
  uint tokens = p.window_h * p.window_w, plane = p.height * p.width;
  uint i = id % tokens, head = (id / tokens) % p.heads, window = id / tokens / p.heads;
  uint wrap_i;
  uint pi = pixel_of(window, i, wrap_i);
  float query[MAX_HEAD_DIM], acc[MAX_HEAD_DIM];
  for (uint d = 0; d < p.head_dim; ++d) {
    query[d] = float(q[(p.q_channel + head * p.head_dim + d) * plane + pi]);
    acc[d] = 0.0;
  }
  float top = -3.4e38, total = 0.0;
  for (uint j = 0; j < tokens; ++j) {
    uint wrap_j;
    uint pj = pixel_of(window, j, wrap_j);
    float dot = 0.0;
    for (uint d = 0; d < p.head_dim; ++d) dot += query[d] * float(k[(p.k_channel + head * p.head_dim + d) * plane + pj]);
    float s = p.scale * dot + bias[(head * tokens + i) * tokens + j];
    if (p.masked != 0 && wrap_i != wrap_j) s += p.mask_value;
    if (s > top) {  // a new largest score: what was summed shrinks by exp(old - new)
      float shrink = exp(top - s);
      total *= shrink;
      for (uint d = 0; d < p.head_dim; ++d) acc[d] *= shrink;
      top = s;
    }
    float weight = exp(s - top);
    total += weight;
    for (uint d = 0; d < p.head_dim; ++d) acc[d] += weight * float(v[(p.v_channel + head * p.head_dim + d) * plane + pj]);
  }
  for (uint d = 0; d < p.head_dim; ++d) y[(head * p.head_dim + d) * plane + pi] = sfloat(acc[d] / total);
}
