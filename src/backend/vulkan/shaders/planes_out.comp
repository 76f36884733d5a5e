#version 450
// The graph's output back into a frame's planes: the residual input added where the model asks,
// clamped to [0, 1] (upscaler.cpp), then color.cpp's image_to_frame: luma per pixel, chroma
// through a tent filter centred on each chroma sample. Each invocation writes one word of codes,
// so no two write the same word. CHROMA=0 writes the luma (or R, G, B) planes, CHROMA=1 Cb and Cr.
#include "common.glsl"
layout(local_size_x = GROUP_SIZE) in;
layout(constant_id = 0) const int CHROMA = 0;
#include "frame.glsl"
layout(binding = 2) readonly buffer Net { sfloat net[]; };
layout(binding = 3) writeonly buffer OutCodes { uint out_codes[]; };
layout(push_constant) uniform Push { int net_h, net_w, scale, add_input, words; } p;

vec3 output_rgb(int y, int x) {
  const int plane = p.net_h * p.net_w, i = y * p.net_w + x;
  vec3 v = vec3(float(net[i]), float(net[plane + i]), float(net[2 * plane + i]));
  if (p.add_input != 0) v += input_rgb(y / p.scale, x / p.scale);
  return clamp(v, 0.0, 1.0);
}

float luma_of(vec3 rgb) {
  const Format f = formats[1];
  return f.kr * rgb.r + (1.0 - f.kr - f.kb) * rgb.g + f.kb * rgb.b;
}

// One axis of the tent around chroma sample i: its first luma position, and how many follow.
void tent(int i, int log2_factor, float offset, out int first, out int count, out float center) {
  const float factor = float(1 << log2_factor);
  center = float(i << log2_factor) + offset;
  first = int(ceil(center - factor + 1e-4));
  count = 0;
  for (int x = first; float(x) < center + factor && count < 8; ++x) ++count;
}

float tent_weight(int x, int log2_factor, float center) {
  return float(1 << log2_factor) - abs(float(x) - center);
}

void main() {
  const uint id = linear_id();
  if (id >= uint(p.words)) return;
  const Format f = formats[1];
  const int per_word = f.wide != 0 ? 2 : 4, bits = f.wide != 0 ? 16 : 8;
  // Which plane (component), row and first column this word covers: invocations run over the
  // pass's planes one after another (their offsets and strides are word-aligned).
  const int planes = CHROMA != 0 ? 2 : (f.rgb != 0 ? 3 : 1);
  const int rows = CHROMA != 0 ? f.ch : f.height, cols = CHROMA != 0 ? f.cw : f.width;
  const int c0 = CHROMA != 0 ? 1 : 0;
  const int words_per_row = f.stride[c0] / per_word, words_per_plane = words_per_row * rows;
  const int k = int(id) / words_per_plane, in_plane = int(id) % words_per_plane;
  if (k >= planes) return;
  const int c = c0 + k;
  const int y = in_plane / words_per_row, x0 = (in_plane % words_per_row) * per_word;
  uint word = 0u;
  for (int j = 0; j < per_word; ++j) {
    const int x = x0 + j;
    if (x >= cols) break;
    uint code;
    if (CHROMA == 0) {
      const vec3 rgb = output_rgb(y, x);
      code = f.rgb != 0 ? output_code(rgb[c], f.luma_offset, f.luma_scale)
                        : output_code(luma_of(rgb), f.luma_offset, f.luma_scale);
    } else {
      // Tent weights along each axis, normalized by their sums; the row sums first, as the host.
      int fx, nx, fy, ny;
      float cx, cy;
      tent(x, f.log2_cw, f.chroma_x, fx, nx, cx);
      tent(y, f.log2_ch, f.chroma_y, fy, ny, cy);
      float total_x = 0.0, total_y = 0.0;
      for (int t = 0; t < nx; ++t) total_x += tent_weight(fx + t, f.log2_cw, cx);
      for (int t = 0; t < ny; ++t) total_y += tent_weight(fy + t, f.log2_ch, cy);
      float sum = 0.0;
      for (int ty = 0; ty < ny; ++ty) {
        const int ly = clamp(fy + ty, 0, f.height - 1);
        float row = 0.0;
        for (int tx = 0; tx < nx; ++tx) {
          const vec3 rgb = output_rgb(ly, clamp(fx + tx, 0, f.width - 1));
          const float luma = luma_of(rgb);
          const float v = c == 1 ? (rgb.b - luma) * f.to_cb : (rgb.r - luma) * f.to_cr;
          row += tent_weight(fx + tx, f.log2_cw, cx) / total_x * v;
        }
        sum += tent_weight(fy + ty, f.log2_ch, cy) / total_y * row;
      }
      code = output_code(sum, f.chroma_offset, f.chroma_scale);
    }
    word |= code << uint(j * bits);
  }
  out_codes[f.offset[c] / per_word + y * words_per_row + x0 / per_word] = word;
}
