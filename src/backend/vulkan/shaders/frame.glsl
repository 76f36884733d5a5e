// Video planes on the device: the conversions of media/color.cpp between 8- to 16-bit codes and
// the model's float RGB, operation for operation, so a frame converted here matches one
// converted on the host to within a code's rounding. Bindings 0 and 1 are declared here: the
// input frame's planes, and the two formats (the input's, then the output's).

// Codes of a plane: four 8-bit or two 16-bit ones per word, rows `stride` codes apart, each plane
// starting on a word; offset and stride are per component (R, G, B or Y, Cb, Cr).
struct Format {
  int width, height, wide, rgb, log2_cw, log2_ch, cw, ch;
  int offset[3], stride[3];
  float luma_offset, luma_scale, chroma_offset, chroma_scale, max_code;
  float chroma_x, chroma_y;  // chroma sample 0's position in luma samples
  float kr, kb;
  float rv, gu, gv, bu;  // YCbCr -> RGB
  float to_cb, to_cr;    // RGB -> YCbCr
};

layout(binding = 0) readonly buffer InCodes { uint in_codes[]; };
layout(binding = 1) readonly buffer Formats { Format formats[2]; };

float input_code(int c, int y, int x) {
  const Format f = formats[0];
  const uint i = uint(f.offset[c] + y * f.stride[c] + x);
  const uint word = f.wide != 0 ? in_codes[i >> 1] >> ((i & 1u) * 16u) : in_codes[i >> 2] >> ((i & 3u) * 8u);
  return float(word & (f.wide != 0 ? 0xffffu : 0xffu));
}

// Linear interpolation from chroma to luma position `pos` along one axis (color.cpp's
// upsample_taps).
void chroma_taps(int pos, int log2_factor, float offset, int chroma, out int i0, out int i1, out float f) {
  const float u = (float(pos) - offset) / float(1 << log2_factor);
  const int i = int(floor(u));
  f = u - float(i);
  i0 = clamp(i, 0, chroma - 1);
  i1 = clamp(i + 1, 0, chroma - 1);
}

// The RGB of input pixel (y, x), inside the frame.
vec3 input_rgb(int y, int x) {
  const Format f = formats[0];
  if (f.rgb != 0)
    return (vec3(input_code(0, y, x), input_code(1, y, x), input_code(2, y, x)) - f.luma_offset) / f.luma_scale;
  const float luma = (input_code(0, y, x) - f.luma_offset) / f.luma_scale;
  int r0, r1, c0, c1;
  float fy, fx;
  chroma_taps(y, f.log2_ch, f.chroma_y, f.ch, r0, r1, fy);
  chroma_taps(x, f.log2_cw, f.chroma_x, f.cw, c0, c1, fx);
  float chroma[2];
  for (int k = 0; k < 2; ++k) {
    // Down the column first, then along the row, as the host does.
    const float a0 = input_code(k + 1, r0, c0), b0 = input_code(k + 1, r1, c0);
    const float a1 = input_code(k + 1, r0, c1), b1 = input_code(k + 1, r1, c1);
    const float left = (a0 + (b0 - a0) * fy - f.chroma_offset) / f.chroma_scale;
    const float right = (a1 + (b1 - a1) * fy - f.chroma_offset) / f.chroma_scale;
    chroma[k] = left + (right - left) * fx;
  }
  const float cb = chroma[0], cr = chroma[1];
  return vec3(luma + f.rv * cr, luma - f.gu * cb - f.gv * cr, luma + f.bu * cb);
}

// A normalized value as a code of the output format (nearbyint rounds half to even).
uint output_code(float v, float offset, float scale) {
  return uint(clamp(roundEven(offset + v * scale), 0.0, formats[1].max_code));
}
