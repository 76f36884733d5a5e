// upres: images in memory and on disk.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace upres {

// A planar float image: channel c, row y, column x is data[(c * height + y) * width + x].
// Colour channels are R, G, B in [0, 1]; a fourth channel, when present, is straight (not
// premultiplied) alpha in [0, 1].
struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;   // 1 (grey), 3 (RGB) or 4 (RGBA)
  int bit_depth = 8;  // the precision of the source, kept when the image is written back
  std::vector<float> data;

  Image() = default;
  Image(int w, int h, int c, int depth = 8);
  float* plane(int c) { return data.data() + static_cast<size_t>(c) * width * height; }
  const float* plane(int c) const { return data.data() + static_cast<size_t>(c) * width * height; }
  float& at(int c, int y, int x) { return plane(c)[static_cast<size_t>(y) * width + x]; }
  float at(int c, int y, int x) const { return plane(c)[static_cast<size_t>(y) * width + x]; }
  bool has_alpha() const { return channels == 2 || channels == 4; }
};

enum class ImageFormat { png, jpeg, webp };

// Chooses the format from a file name's extension (.png, .jpg/.jpeg, .webp); throws
// Error(invalid_argument) naming the extension otherwise.
ImageFormat image_format_from_path(const std::string& path);
// True for the extensions image_format_from_path accepts (any case).
bool has_image_extension(const std::string& path);

// Reads a PNG (8/16-bit, grey, RGB, palette, alpha), JPEG (EXIF orientation applied) or WebP
// file. Grey images come back as RGB. Images with more than max_pixels pixels are refused
// before their pixels are decoded.
Image read_image(const std::string& path, int64_t max_pixels = int64_t(1) << 28);

// Decodes image bytes already in memory (format sniffed from the signature). Truncated or corrupt
// data is an Error(invalid_media), never a picture with a damaged part.
Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name_for_errors,
                   int64_t max_pixels = int64_t(1) << 28);

struct ImageInfo {
  int64_t width = 0, height = 0;  // as stored (before EXIF orientation turns it)
  ImageFormat format = ImageFormat::png;
};
// Reads only an image's header: its size and format, so limits can be checked before the pixels
// are decoded. Throws Error(invalid_media) for bytes that are not a PNG, JPEG or WebP header.
ImageInfo probe_image(const std::vector<uint8_t>& bytes, const std::string& name_for_errors);

struct ImageWriteOptions {
  int jpeg_quality = 92;  // 1..100
  int webp_quality = 90;  // 1..100; 100 with webp_lossless
  bool webp_lossless = false;
};

// Encodes to bytes. PNG keeps 16-bit images 16-bit; JPEG and WebP are 8-bit (JPEG drops alpha).
std::vector<uint8_t> encode_image(const Image& image, ImageFormat format,
                                  const ImageWriteOptions& options = {});

// Writes atomically: the bytes go to a temporary file beside `path`, renamed over it at the end,
// so `path` never holds a half-written image.
void write_image(const Image& image, const std::string& path, const ImageWriteOptions& options = {});

// Writes bytes to `path` through a temporary file in the same folder and a rename.
void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes);

enum class ResampleFilter { nearest, bilinear, bicubic, lanczos3 };

// Resizes with an antialiased filter (the kernel is widened when shrinking, as MATLAB's imresize
// does), so shrinking does not alias.
Image resize_image(const Image& image, int width, int height,
                   ResampleFilter filter = ResampleFilter::bicubic);

}  // namespace upres
