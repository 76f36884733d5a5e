#include "media/color.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

extern "C" {
#include <libavutil/pixdesc.h>
}

#include "core/assert.hpp"
#include "image/resizer.hpp"

namespace upres {
namespace {

struct Matrix {
  double kr, kb;
};

Matrix matrix_for(AVColorSpace space) {
  switch (space) {
    case AVCOL_SPC_BT709: return {0.2126, 0.0722};
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL: return {0.2627, 0.0593};
    case AVCOL_SPC_SMPTE240M: return {0.212, 0.087};
    case AVCOL_SPC_FCC: return {0.30, 0.11};
    default: return {0.299, 0.114};  // BT.601 (BT470BG, SMPTE170M)
  }
}

// Code values of one component: normalized = (code - offset) / scale.
struct Quantization {
  float offset, scale, max_code;
};

Quantization luma_quantization(int depth, bool full, bool rgb) {
  const float max_code = float((1 << depth) - 1);
  if (full || rgb) return {0.f, max_code, max_code};
  const float k = float(1 << (depth - 8));
  return {16.f * k, 219.f * k, max_code};
}

Quantization chroma_quantization(int depth, bool full) {
  const float max_code = float((1 << depth) - 1);
  if (full) return {float(1 << (depth - 1)), max_code, max_code};
  const float k = float(1 << (depth - 8));
  return {128.f * k, 224.f * k, max_code};
}

bool wide(const AVPixFmtDescriptor& d) {
  return d.comp[0].depth > 8;
}

float read_code(const uint8_t* row, int x, bool is_wide) {
  return is_wide ? float(reinterpret_cast<const uint16_t*>(row)[x]) : float(row[x]);
}

void write_code(uint8_t* row, int x, float v, const Quantization& q, bool is_wide) {
  const float code = std::clamp(std::nearbyint(q.offset + v * q.scale), 0.f, q.max_code);
  if (is_wide)
    reinterpret_cast<uint16_t*>(row)[x] = uint16_t(code);
  else
    row[x] = uint8_t(code);
}

// Where chroma sample 0 sits, in luma samples, along one axis subsampled by `factor`.
float chroma_offset(AVChromaLocation loc, int factor, bool vertical) {
  const float middle = float(factor - 1) / 2;
  if (factor == 1) return 0;
  if (!vertical)
    return loc == AVCHROMA_LOC_LEFT || loc == AVCHROMA_LOC_TOPLEFT || loc == AVCHROMA_LOC_BOTTOMLEFT ? 0.f
                                                                                                     : middle;
  if (loc == AVCHROMA_LOC_TOP || loc == AVCHROMA_LOC_TOPLEFT) return 0.f;
  if (loc == AVCHROMA_LOC_BOTTOM || loc == AVCHROMA_LOC_BOTTOMLEFT) return float(factor - 1);
  return middle;
}

// Linear interpolation taps from chroma to luma positions along one axis.
struct Lerp {
  int i0, i1;
  float f;
};

void upsample_taps(std::vector<Lerp>& taps, int luma, int chroma, int factor, float offset) {
  taps.resize(size_t(luma));
  for (int x = 0; x < luma; ++x) {
    const float u = (float(x) - offset) / float(factor);
    const int i = int(std::floor(u));
    const float f = u - float(i);
    taps[size_t(x)] = {std::clamp(i, 0, chroma - 1), std::clamp(i + 1, 0, chroma - 1), f};
  }
}

// Tent-filter taps from luma to chroma positions along one axis (an antialiased shrink).
struct Tent {
  int first, count;
  float weight[8];
};

void downsample_taps(std::vector<Tent>& taps, int luma, int chroma, int factor, float offset) {
  taps.resize(size_t(chroma));
  for (int i = 0; i < chroma; ++i) {
    const float center = float(i * factor) + offset;
    const int first = int(std::ceil(center - float(factor) + 1e-4f));
    Tent t{first, 0, {}};
    float total = 0;
    for (int x = first; x < center + float(factor) && t.count < 8; ++x) {
      const float w = float(factor) - std::fabs(float(x) - center);
      t.weight[t.count++] = w;
      total += w;
    }
    for (int k = 0; k < t.count; ++k) t.weight[k] /= total;
    (void)luma;
    taps[size_t(i)] = t;
  }
}

}  // namespace

const std::vector<AVPixelFormat>& convertible_pixel_formats() {
  static const std::vector<AVPixelFormat> formats = {
      AV_PIX_FMT_YUV420P,     AV_PIX_FMT_YUV422P,     AV_PIX_FMT_YUV444P,     AV_PIX_FMT_YUVJ420P,
      AV_PIX_FMT_YUVJ422P,    AV_PIX_FMT_YUVJ444P,    AV_PIX_FMT_YUV420P10LE, AV_PIX_FMT_YUV422P10LE,
      AV_PIX_FMT_YUV444P10LE, AV_PIX_FMT_YUV420P12LE, AV_PIX_FMT_YUV422P12LE, AV_PIX_FMT_YUV444P12LE,
      AV_PIX_FMT_YUV420P16LE, AV_PIX_FMT_YUV422P16LE, AV_PIX_FMT_YUV444P16LE, AV_PIX_FMT_GBRP,
      AV_PIX_FMT_GBRP10LE,    AV_PIX_FMT_GBRP12LE,    AV_PIX_FMT_GBRP16LE};
  return formats;
}

bool is_convertible(AVPixelFormat format) {
  const auto& f = convertible_pixel_formats();
  return std::find(f.begin(), f.end(), format) != f.end();
}

ColorSpec resolve_color(const AVFrame& frame) {
  const auto format = AVPixelFormat(frame.format);
  const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(format);
  ColorSpec c{frame.colorspace, frame.color_range, frame.chroma_location};
  if (c.matrix == AVCOL_SPC_UNSPECIFIED || c.matrix == AVCOL_SPC_RESERVED)
    c.matrix = frame.height >= 720 ? AVCOL_SPC_BT709 : AVCOL_SPC_SMPTE170M;
  const bool jpeg =
      format == AV_PIX_FMT_YUVJ420P || format == AV_PIX_FMT_YUVJ422P || format == AV_PIX_FMT_YUVJ444P;
  if (c.range == AVCOL_RANGE_UNSPECIFIED)
    c.range = jpeg || (d && (d->flags & AV_PIX_FMT_FLAG_RGB)) ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG;
  if (c.chroma_location == AVCHROMA_LOC_UNSPECIFIED) c.chroma_location = AVCHROMA_LOC_LEFT;
  return c;
}

PlaneFormat plane_format(AVPixelFormat format, int width, int height, const ColorSpec& color) {
  const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(format);
  UPRES_ASSERT(d && is_convertible(format));
  PlaneFormat f;
  f.width = width;
  f.height = height;
  f.depth = d->comp[0].depth;
  f.rgb = d->flags & AV_PIX_FMT_FLAG_RGB;
  for (int c = 0; c < 3; ++c) f.plane[c] = d->comp[c].plane;
  const bool full = color.range == AVCOL_RANGE_JPEG;
  const Quantization qy = luma_quantization(f.depth, full, f.rgb), qc = chroma_quantization(f.depth, full);
  f.luma_offset = qy.offset;
  f.luma_scale = qy.scale;
  f.chroma_offset = qc.offset;
  f.chroma_scale = qc.scale;
  f.max_code = qy.max_code;
  if (!f.rgb) {
    f.log2_chroma_w = d->log2_chroma_w;
    f.log2_chroma_h = d->log2_chroma_h;
    const Matrix m = matrix_for(color.matrix);
    f.kr = float(m.kr);
    f.kb = float(m.kb);
    f.chroma_x = chroma_offset(color.chroma_location, 1 << f.log2_chroma_w, false);
    f.chroma_y = chroma_offset(color.chroma_location, 1 << f.log2_chroma_h, true);
  }
  return f;
}

Planes planes_of(const AVFrame& frame) {
  Planes p;
  for (int k = 0; k < 3; ++k) {
    p.data[k] = frame.data[k];
    p.linesize[k] = frame.linesize[k];
  }
  return p;
}

void frame_to_image(const AVFrame& frame, const ColorSpec& color, Image& out) {
  const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(AVPixelFormat(frame.format));
  UPRES_ASSERT(d && is_convertible(AVPixelFormat(frame.format)));
  const int w = frame.width, h = frame.height, depth = d->comp[0].depth;
  const bool is_wide = wide(*d), rgb = d->flags & AV_PIX_FMT_FLAG_RGB;
  const bool full = color.range == AVCOL_RANGE_JPEG;
  reshape_image(out, w, h, 3, depth);

  if (rgb) {
    const Quantization q = luma_quantization(depth, full, true);
    for (int c = 0; c < 3; ++c) {
      const int plane = d->comp[c].plane;
      for (int y = 0; y < h; ++y) {
        const uint8_t* row = frame.data[plane] + ptrdiff_t(y) * frame.linesize[plane];
        float* dst = &out.at(c, y, 0);
        for (int x = 0; x < w; ++x) dst[x] = (read_code(row, x, is_wide) - q.offset) / q.scale;
      }
    }
    return;
  }

  const Quantization qy = luma_quantization(depth, full, false), qc = chroma_quantization(depth, full);
  for (int y = 0; y < h; ++y) {
    const uint8_t* row = frame.data[0] + ptrdiff_t(y) * frame.linesize[0];
    float* dst = &out.at(0, y, 0);
    for (int x = 0; x < w; ++x) dst[x] = (read_code(row, x, is_wide) - qy.offset) / qy.scale;
  }
  // Chroma: interpolate from its own grid to every luma position (tables reused per thread).
  const int fx = 1 << d->log2_chroma_w, fy = 1 << d->log2_chroma_h;
  const int cw = AV_CEIL_RSHIFT(w, d->log2_chroma_w), ch = AV_CEIL_RSHIFT(h, d->log2_chroma_h);
  thread_local std::vector<Lerp> tx, ty;
  thread_local std::vector<float> row_a, row_b;
  upsample_taps(tx, w, cw, fx, chroma_offset(color.chroma_location, fx, false));
  upsample_taps(ty, h, ch, fy, chroma_offset(color.chroma_location, fy, true));
  row_a.resize(size_t(cw));
  row_b.resize(size_t(cw));
  for (int c = 1; c <= 2; ++c) {
    const int plane = d->comp[c].plane;
    for (int y = 0; y < h; ++y) {
      const Lerp& v = ty[size_t(y)];
      const uint8_t* r0 = frame.data[plane] + ptrdiff_t(v.i0) * frame.linesize[plane];
      const uint8_t* r1 = frame.data[plane] + ptrdiff_t(v.i1) * frame.linesize[plane];
      for (int i = 0; i < cw; ++i) {
        const float a = read_code(r0, i, is_wide), b = read_code(r1, i, is_wide);
        row_a[size_t(i)] = (a + (b - a) * v.f - qc.offset) / qc.scale;
      }
      float* dst = &out.at(c, y, 0);
      for (int x = 0; x < w; ++x) {
        const Lerp& t = tx[size_t(x)];
        dst[x] = row_a[size_t(t.i0)] + (row_a[size_t(t.i1)] - row_a[size_t(t.i0)]) * t.f;
      }
    }
  }
  const Matrix m = matrix_for(color.matrix);
  const float kg = float(1 - m.kr - m.kb);
  const float rv = float(2 * (1 - m.kr)), bu = float(2 * (1 - m.kb));
  const float gu = float(2 * m.kb * (1 - m.kb)) / kg, gv = float(2 * m.kr * (1 - m.kr)) / kg;
  float *py = out.plane(0), *pb = out.plane(1), *pr = out.plane(2);
  for (int64_t i = 0; i < int64_t(w) * h; ++i) {
    const float yy = py[i], cb = pb[i], cr = pr[i];
    py[i] = yy + rv * cr;
    pb[i] = yy - gu * cb - gv * cr;
    pr[i] = yy + bu * cb;
  }
}

void image_to_frame(const Image& image, const ColorSpec& color, AVFrame& frame, std::vector<float>& scratch) {
  const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(AVPixelFormat(frame.format));
  UPRES_ASSERT(d && is_convertible(AVPixelFormat(frame.format)));
  UPRES_ASSERT(image.channels >= 3 && image.width == frame.width && image.height == frame.height);
  const int w = frame.width, h = frame.height, depth = d->comp[0].depth;
  const bool is_wide = wide(*d), rgb = d->flags & AV_PIX_FMT_FLAG_RGB;
  const bool full = color.range == AVCOL_RANGE_JPEG;

  if (rgb) {
    const Quantization q = luma_quantization(depth, full, true);
    for (int c = 0; c < 3; ++c) {
      const int plane = d->comp[c].plane;
      for (int y = 0; y < h; ++y) {
        uint8_t* row = frame.data[plane] + ptrdiff_t(y) * frame.linesize[plane];
        const float* src = image.plane(c) + size_t(y) * w;
        for (int x = 0; x < w; ++x) write_code(row, x, src[x], q, is_wide);
      }
    }
    return;
  }

  const Quantization qy = luma_quantization(depth, full, false), qc = chroma_quantization(depth, full);
  const Matrix m = matrix_for(color.matrix);
  const float kr = float(m.kr), kb = float(m.kb), kg = 1 - kr - kb;
  const float to_cb = 1 / float(2 * (1 - m.kb)), to_cr = 1 / float(2 * (1 - m.kr));
  const int fx = 1 << d->log2_chroma_w, fy = 1 << d->log2_chroma_h;
  const int cw = AV_CEIL_RSHIFT(w, d->log2_chroma_w), ch = AV_CEIL_RSHIFT(h, d->log2_chroma_h);
  const size_t full_plane = size_t(w) * h, half_plane = size_t(cw) * h;
  scratch.resize(2 * full_plane + 2 * half_plane);
  float* cb_full = scratch.data();
  float* cr_full = cb_full + full_plane;
  const float *pr = image.plane(0), *pg = image.plane(1), *pb = image.plane(2);
  for (int y = 0; y < h; ++y) {
    uint8_t* row = frame.data[0] + ptrdiff_t(y) * frame.linesize[0];
    for (int x = 0; x < w; ++x) {
      const size_t i = size_t(y) * w + x;
      const float yy = kr * pr[i] + kg * pg[i] + kb * pb[i];
      write_code(row, x, yy, qy, is_wide);
      cb_full[i] = (pb[i] - yy) * to_cb;
      cr_full[i] = (pr[i] - yy) * to_cr;
    }
  }
  // Shrink chroma to its grid with a tent filter centred on each chroma sample's position.
  thread_local std::vector<Tent> tx, ty;
  downsample_taps(tx, w, cw, fx, chroma_offset(color.chroma_location, fx, false));
  downsample_taps(ty, h, ch, fy, chroma_offset(color.chroma_location, fy, true));
  for (int c = 0; c < 2; ++c) {
    const float* src = c == 0 ? cb_full : cr_full;
    float* narrow = scratch.data() + 2 * full_plane + size_t(c) * half_plane;  // cw x h
    for (int y = 0; y < h; ++y)
      for (int i = 0; i < cw; ++i) {
        const Tent& t = tx[size_t(i)];
        float sum = 0;
        for (int k = 0; k < t.count; ++k)
          sum += t.weight[k] * src[size_t(y) * w + std::clamp(t.first + k, 0, w - 1)];
        narrow[size_t(y) * cw + i] = sum;
      }
    const int plane = d->comp[c + 1].plane;
    for (int j = 0; j < ch; ++j) {
      const Tent& t = ty[size_t(j)];
      uint8_t* row = frame.data[plane] + ptrdiff_t(j) * frame.linesize[plane];
      for (int i = 0; i < cw; ++i) {
        float sum = 0;
        for (int k = 0; k < t.count; ++k)
          sum += t.weight[k] * narrow[size_t(std::clamp(t.first + k, 0, h - 1)) * cw + i];
        write_code(row, i, sum, qc, is_wide);
      }
    }
  }
}

}  // namespace upres
