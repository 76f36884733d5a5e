// Colour conversion between decoded video frames (planar YUV or GBR, 8 to 16 bits, any chroma
// subsampling, limited or full range, BT.601/709/2020 matrices) and planar float RGB for the
// model, and back. The stream's own tags choose the matrix and range; nothing is rounded to
// 8 bits on the way, so a 10-bit source reaches the model and the encoder at 10 bits.
#pragma once

#include <vector>

extern "C" {
#include <libavutil/frame.h>
#include <libavutil/pixfmt.h>
}

#include "backend/backend.hpp"
#include "upres/image.hpp"

namespace upres {

// Pixel formats the converters read and write directly; the filter graph converts anything
// else (NV12 from hardware decoders, packed RGB, palettes) into the nearest of these.
const std::vector<AVPixelFormat>& convertible_pixel_formats();
bool is_convertible(AVPixelFormat format);

struct ColorSpec {
  AVColorSpace matrix = AVCOL_SPC_UNSPECIFIED;
  AVColorRange range = AVCOL_RANGE_UNSPECIFIED;
  AVChromaLocation chroma_location = AVCHROMA_LOC_UNSPECIFIED;
};

// The matrix and range a frame is actually in: unspecified tags resolve the way players do
// (BT.709 from 720 lines up, BT.601 below; limited range; left-sited chroma for 4:2:0).
ColorSpec resolve_color(const AVFrame& frame);

// Converts one frame into `out` (resized only when its shape differs: no allocation per frame).
void frame_to_image(const AVFrame& frame, const ColorSpec& color, Image& out);

// Converts `image` (RGB, the frame's size) into `frame`, whose format, size and buffers are
// already set. `scratch` holds full-resolution chroma between the two passes; it is reused.
void image_to_frame(const Image& image, const ColorSpec& color, AVFrame& frame, std::vector<float>& scratch);

// The same conversion described for a backend that converts on its device: codes, matrix and
// chroma siting of `format` at this size. Only for convertible formats.
PlaneFormat plane_format(AVPixelFormat format, int width, int height, const ColorSpec& color);
// A frame's first three planes as a backend takes them.
Planes planes_of(const AVFrame& frame);

}  // namespace upres
