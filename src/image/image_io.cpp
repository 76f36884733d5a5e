// Image files: PNG (libpng), JPEG (libjpeg-turbo, EXIF orientation through libexif), WebP
// (libwebp). Decoders refuse oversized images after reading the header and before decoding.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <cstring>

#include <fmt/format.h>
#include <jpeglib.h>
#include <libexif/exif-data.h>
#include <png.h>
#include <webp/decode.h>
#include <webp/encode.h>

#include <jerror.h>  // after jpeglib.h, which it needs

#include "core/partial_file.hpp"
#include "upres/error.hpp"
#include "upres/files.hpp"
#include "upres/image.hpp"

namespace upres {

Image::Image(int w, int h, int c, int depth)
    : width(w), height(h), channels(c), bit_depth(depth), data(size_t(w) * h * c, 0.f) {}

namespace {

[[noreturn]] void media_error(const std::string& name, const std::string& problem) {
  throw Error(ErrorCode::invalid_media, fmt::format("{}: {}", name, problem));
}

void check_pixels(const std::string& name, int64_t w, int64_t h, int64_t max_pixels) {
  if (w <= 0 || h <= 0) media_error(name, "has no pixels");
  if (w * h > max_pixels)
    throw Error(ErrorCode::limit_exceeded,
                fmt::format("{}: {}x{} is {:.1f} MP, over the input cap of {:.1f} MP", name, w, h,
                            w * h / 1e6, max_pixels / 1e6));
}

float to_unit(unsigned v, unsigned max) {
  return float(v) / float(max);
}
unsigned from_unit(float v, unsigned max) {
  return unsigned(std::lround(std::clamp(v, 0.f, 1.f) * float(max)));
}

// Fills a planar image from interleaved 8-bit samples.
Image from_interleaved8(const uint8_t* px, int w, int h, int channels) {
  Image img(w, h, channels, 8);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c)
        img.at(c, y, x) = to_unit(px[(size_t(y) * w + x) * channels + c], 255);
  return img;
}

std::vector<uint8_t> to_interleaved8(const Image& img, int channels) {
  std::vector<uint8_t> px(size_t(img.width) * img.height * channels);
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x)
      for (int c = 0; c < channels; ++c)
        px[(size_t(y) * img.width + x) * channels + c] = uint8_t(from_unit(img.at(c, y, x), 255));
  return px;
}

// ---- PNG ----

struct PngReadState {
  const std::vector<uint8_t>* bytes;
  size_t offset;
  std::string name;
  std::string error;
};

void png_fail(png_structp png, png_const_charp msg) {
  auto* st = static_cast<PngReadState*>(png_get_error_ptr(png));
  if (st) st->error = msg;
  png_longjmp(png, 1);
}
void png_warn(png_structp, png_const_charp) {}

void png_read_bytes(png_structp png, png_bytep out, png_size_t n) {
  auto* st = static_cast<PngReadState*>(png_get_io_ptr(png));
  if (n > st->bytes->size() - st->offset) png_error(png, "file is truncated");
  std::memcpy(out, st->bytes->data() + st->offset, n);
  st->offset += n;
}

int orientation_from_exif(const uint8_t* data, size_t size);
Image apply_orientation(const Image& in, int orientation);

Image decode_png(const std::vector<uint8_t>& bytes, const std::string& name, int64_t max_pixels) {
  PngReadState st{&bytes, 0, name, {}};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, png_fail, png_warn);
  png_infop info = png_create_info_struct(png);
  std::vector<uint8_t> pixels;
  std::vector<png_bytep> rows;
  Image img;
  // Written between setjmp and longjmp, so volatile.
  volatile int64_t big_w = 0, big_h = 0;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    if (big_w) check_pixels(name, big_w, big_h, max_pixels);
    media_error(name, fmt::format("is not a valid PNG (truncated or corrupt): {}", st.error));
  }
  png_set_read_fn(png, &st, png_read_bytes);
  png_set_user_limits(png, 1u << 24, 1u << 24);
  png_read_info(png, info);
  const png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  if (int64_t(w) * h > max_pixels) {
    big_w = w;
    big_h = h;
    png_error(png, "too large");
  }
  int orientation = 1;
  png_uint_32 exif_size = 0;
  png_bytep exif = nullptr;
  if (png_get_eXIf_1(png, info, &exif_size, &exif) && exif && exif_size > 0)
    orientation = orientation_from_exif(exif, exif_size);
  const int depth = png_get_bit_depth(png, info);
  const int color = png_get_color_type(png, info);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const int channels = png_get_channels(png, info);
  const int out_depth = png_get_bit_depth(png, info);
  const size_t row_bytes = png_get_rowbytes(png, info);
  pixels.resize(row_bytes * h);
  rows.resize(h);
  for (png_uint_32 y = 0; y < h; ++y) rows[y] = pixels.data() + y * row_bytes;
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);  // checks the rest: the image data's checksum, the end chunk
  png_destroy_read_struct(&png, &info, nullptr);
  if (channels != 3 && channels != 4) media_error(name, "has an unsupported channel layout");
  if (out_depth == 16) {
    img = Image(int(w), int(h), channels, 16);
    for (png_uint_32 y = 0; y < h; ++y)
      for (png_uint_32 x = 0; x < w; ++x)
        for (int c = 0; c < channels; ++c) {
          const uint8_t* s = rows[y] + (size_t(x) * channels + c) * 2;
          img.at(c, int(y), int(x)) = to_unit(unsigned(s[0]) << 8 | s[1], 65535);
        }
    return apply_orientation(img, orientation);
  }
  return apply_orientation(from_interleaved8(pixels.data(), int(w), int(h), channels), orientation);
}

void png_write_bytes(png_structp png, png_bytep data, png_size_t n) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}
void png_flush(png_structp) {}

std::vector<uint8_t> encode_png(const Image& img) {
  std::vector<uint8_t> out;
  const bool deep = img.bit_depth > 8;
  const int channels = img.channels;
  const size_t sample = deep ? 2 : 1;
  std::vector<uint8_t> pixels(size_t(img.width) * img.height * channels * sample);
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x)
      for (int c = 0; c < channels; ++c) {
        size_t i = ((size_t(y) * img.width + x) * channels + c) * sample;
        if (deep) {
          unsigned v = from_unit(img.at(c, y, x), 65535);
          pixels[i] = uint8_t(v >> 8);
          pixels[i + 1] = uint8_t(v & 0xff);
        } else {
          pixels[i] = uint8_t(from_unit(img.at(c, y, x), 255));
        }
      }
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, png_fail, png_warn);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw Error(ErrorCode::io_failure, "PNG encoding failed");
  }
  png_set_write_fn(png, &out, png_write_bytes, png_flush);
  const int color =
      channels == 4 ? PNG_COLOR_TYPE_RGBA : (channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB);
  png_set_IHDR(png, info, png_uint_32(img.width), png_uint_32(img.height), deep ? 16 : 8, color,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(png, 6);
  png_write_info(png, info);
  const size_t row_bytes = size_t(img.width) * channels * sample;
  for (int y = 0; y < img.height; ++y) png_write_row(png, pixels.data() + size_t(y) * row_bytes);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

// ---- JPEG ----

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

// The orientation (1..8, 1 when absent or unreadable) in an EXIF block: "Exif\0\0" and a TIFF
// structure (JPEG APP1), or the bare TIFF structure (PNG eXIf, WebP EXIF chunks).
int orientation_from_exif(const uint8_t* data, size_t size) {
  std::vector<uint8_t> block;
  if (size < 6 || std::memcmp(data, "Exif\0\0", 6) != 0) {
    block.assign({'E', 'x', 'i', 'f', 0, 0});  // libexif wants the header
    block.insert(block.end(), data, data + size);
    data = block.data();
    size = block.size();
  }
  ExifData* ed = exif_data_new_from_data(data, unsigned(size));
  if (!ed) return 1;
  int orientation = 1;
  if (ExifEntry* e = exif_data_get_entry(ed, EXIF_TAG_ORIENTATION); e && e->format == EXIF_FORMAT_SHORT)
    orientation = exif_get_short(e->data, exif_data_get_byte_order(ed));
  exif_data_unref(ed);
  return orientation >= 1 && orientation <= 8 ? orientation : 1;
}

// The EXIF chunk of an extended WebP file (RIFF: fourcc, little-endian size, even padding).
int webp_orientation(const std::vector<uint8_t>& bytes) {
  size_t pos = 12;
  while (pos + 8 <= bytes.size()) {
    // In size_t: a size near 4 GiB must not wrap the position back (found by fuzzing).
    const size_t size = size_t(bytes[pos + 4]) | size_t(bytes[pos + 5]) << 8 | size_t(bytes[pos + 6]) << 16 |
                        size_t(bytes[pos + 7]) << 24;
    if (size > bytes.size() - pos - 8) break;  // a chunk past the end of the file
    if (std::memcmp(&bytes[pos], "EXIF", 4) == 0) return orientation_from_exif(&bytes[pos + 8], size);
    pos += 8 + size + (size & 1);
  }
  return 1;
}

void jpeg_fail(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// libjpeg only warns about damaged data and fills what it could not read with grey: a truncated
// or corrupt file would come out as a picture with a grey band. Those warnings are errors here;
// harmless ones (extra bytes between markers, an unknown JFIF revision) are let pass.
void jpeg_message(j_common_ptr cinfo, int level) {
  if (level != -1) return;  // trace messages
  switch (cinfo->err->msg_code) {
    case JWRN_ARITH_BAD_CODE:
    case JWRN_BOGUS_PROGRESSION:
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_JPEG_EOF:
    case JWRN_MUST_RESYNC:
    case JWRN_NOT_SEQUENTIAL: jpeg_fail(cinfo); break;
    default: break;
  }
}

int exif_orientation(jpeg_decompress_struct& cinfo) {
  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next)
    if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && std::memcmp(m->data, "Exif\0\0", 6) == 0)
      return orientation_from_exif(m->data, m->data_length);
  return 1;
}

// Turns a stored image upright according to its EXIF orientation (1..8).
Image apply_orientation(const Image& in, int orientation) {
  if (orientation == 1) return in;
  const bool swap = orientation >= 5;
  const int W = in.width, H = in.height;
  Image out(swap ? H : W, swap ? W : H, in.channels, in.bit_depth);
  for (int c = 0; c < in.channels; ++c)
    for (int y = 0; y < out.height; ++y)
      for (int x = 0; x < out.width; ++x) {
        int sx = x, sy = y;
        switch (orientation) {
          case 2: sx = W - 1 - x; break;
          case 3:
            sx = W - 1 - x;
            sy = H - 1 - y;
            break;
          case 4: sy = H - 1 - y; break;
          case 5:
            sx = y;
            sy = x;
            break;
          case 6:
            sx = y;
            sy = H - 1 - x;
            break;
          case 7:
            sx = W - 1 - y;
            sy = H - 1 - x;
            break;
          case 8:
            sx = W - 1 - y;
            sy = x;
            break;
        }
        out.at(c, y, x) = in.at(c, sy, sx);
      }
  return out;
}

Image decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& name, int64_t max_pixels) {
  jpeg_decompress_struct cinfo{};
  JpegError err{};
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_fail;
  err.mgr.emit_message = jpeg_message;
  std::vector<uint8_t> pixels;
  volatile int64_t too_big_w = 0, too_big_h = 0;  // written between setjmp and longjmp
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    if (too_big_w) check_pixels(name, too_big_w, too_big_h, max_pixels);
    media_error(name, fmt::format("is not a valid JPEG (truncated or corrupt): {}", err.message));
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xffff);
  jpeg_read_header(&cinfo, TRUE);
  if (int64_t(cinfo.image_width) * cinfo.image_height > max_pixels) {
    too_big_w = cinfo.image_width;
    too_big_h = cinfo.image_height;
    std::strcpy(err.message, "too large");
    std::longjmp(err.jump, 1);
  }
  const int orientation = exif_orientation(cinfo);
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  const int w = int(cinfo.output_width), h = int(cinfo.output_height);
  pixels.resize(size_t(w) * h * 3);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = pixels.data() + size_t(cinfo.output_scanline) * w * 3;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return apply_orientation(from_interleaved8(pixels.data(), w, h, 3), orientation);
}

std::vector<uint8_t> encode_jpeg(const Image& img, int quality) {
  jpeg_compress_struct cinfo{};
  JpegError err{};
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_fail;
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  std::vector<uint8_t> px = to_interleaved8(img, 3);
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&cinfo);
    std::free(buffer);
    throw Error(ErrorCode::io_failure, fmt::format("JPEG encoding failed: {}", err.message));
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = JDIMENSION(img.width);
  cinfo.image_height = JDIMENSION(img.height);
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, std::clamp(quality, 1, 100), TRUE);
  // From 95 up, colour at full resolution (4:4:4), as other encoders do at their top qualities:
  // halved chroma alone costs some 14 dB on sharp colour edges, whatever the quality.
  if (quality >= 95)
    for (int c = 0; c < 3; ++c) cinfo.comp_info[c].h_samp_factor = cinfo.comp_info[c].v_samp_factor = 1;
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = px.data() + size_t(cinfo.next_scanline) * img.width * 3;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::vector<uint8_t> out(buffer, buffer + size);
  jpeg_destroy_compress(&cinfo);
  std::free(buffer);
  return out;
}

// ---- WebP ----

Image decode_webp(const std::vector<uint8_t>& bytes, const std::string& name, int64_t max_pixels) {
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(bytes.data(), bytes.size(), &features) != VP8_STATUS_OK)
    media_error(name, "is not a valid WebP image");
  check_pixels(name, features.width, features.height, max_pixels);
  int w = 0, h = 0;
  const int channels = features.has_alpha ? 4 : 3;
  uint8_t* px = features.has_alpha ? WebPDecodeRGBA(bytes.data(), bytes.size(), &w, &h)
                                   : WebPDecodeRGB(bytes.data(), bytes.size(), &w, &h);
  if (!px) media_error(name, "is a corrupt WebP image");
  Image img = from_interleaved8(px, w, h, channels);
  WebPFree(px);
  return apply_orientation(img, webp_orientation(bytes));
}

std::vector<uint8_t> encode_webp(const Image& img, const ImageWriteOptions& o) {
  if (img.width > WEBP_MAX_DIMENSION || img.height > WEBP_MAX_DIMENSION)
    throw Error(ErrorCode::unsupported,
                fmt::format("WebP cannot hold a {}x{} image (the limit is {} a side); "
                            "write PNG instead",
                            img.width, img.height, WEBP_MAX_DIMENSION));
  const int channels = img.channels == 4 ? 4 : 3;
  std::vector<uint8_t> px = to_interleaved8(img, channels);
  WebPConfig config;
  WebPPicture picture;
  if (!WebPConfigInit(&config) || !WebPPictureInit(&picture))
    throw Error(ErrorCode::unsupported, "libwebp version mismatch");
  config.lossless = o.webp_lossless ? 1 : 0;
  config.quality = float(std::clamp(o.webp_quality, 1, 100));
  config.exact = 1;  // keep colour under fully transparent pixels: the alpha is the user's
  picture.use_argb = config.lossless;
  picture.width = img.width;
  picture.height = img.height;
  WebPMemoryWriter writer;
  WebPMemoryWriterInit(&writer);
  picture.writer = WebPMemoryWrite;
  picture.custom_ptr = &writer;
  const int stride = img.width * channels;
  const bool imported = channels == 4 ? WebPPictureImportRGBA(&picture, px.data(), stride)
                                      : WebPPictureImportRGB(&picture, px.data(), stride);
  const bool ok = imported && WebPEncode(&config, &picture);
  WebPPictureFree(&picture);
  std::vector<uint8_t> bytes(writer.mem, writer.mem + writer.size);
  WebPMemoryWriterClear(&writer);
  if (!ok)
    throw Error(ErrorCode::io_failure,
                fmt::format("WebP encoding failed (error {})", int(picture.error_code)));
  return bytes;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

}  // namespace

bool has_image_extension(const std::string& path) {
  const auto dot = path.find_last_of('.');
  const std::string ext = dot == std::string::npos ? "" : lower(path.substr(dot + 1));
  return ext == "png" || ext == "jpg" || ext == "jpeg" || ext == "webp";
}

ImageFormat image_format_from_path(const std::string& path) {
  const auto dot = path.find_last_of('.');
  const std::string ext = dot == std::string::npos ? "" : lower(path.substr(dot + 1));
  if (ext == "png") return ImageFormat::png;
  if (ext == "jpg" || ext == "jpeg") return ImageFormat::jpeg;
  if (ext == "webp") return ImageFormat::webp;
  throw Error(ErrorCode::invalid_argument,
              fmt::format("{}: unknown image extension '{}': use .png, .jpg/.jpeg or .webp", path, ext));
}

Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name, int64_t max_pixels) {
  static const uint8_t png_sig[] = {0x89, 'P', 'N', 'G'};
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), png_sig, 4) == 0)
    return decode_png(bytes, name, max_pixels);
  if (bytes.size() >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff)
    return decode_jpeg(bytes, name, max_pixels);
  if (bytes.size() >= 12 && std::memcmp(bytes.data(), "RIFF", 4) == 0 &&
      std::memcmp(bytes.data() + 8, "WEBP", 4) == 0)
    return decode_webp(bytes, name, max_pixels);
  media_error(name, "is not a PNG, JPEG or WebP image");
}

ImageInfo probe_image(const std::vector<uint8_t>& bytes, const std::string& name) {
  auto be32 = [&](size_t at) {
    return uint32_t(bytes[at]) << 24 | uint32_t(bytes[at + 1]) << 16 | uint32_t(bytes[at + 2]) << 8 |
           bytes[at + 3];
  };
  ImageInfo info;
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), "\x89PNG\r\n\x1a\n", 8) == 0) {
    // The first chunk is IHDR: length 13, then width and height as big-endian integers.
    if (bytes.size() < 24 || std::memcmp(&bytes[12], "IHDR", 4) != 0)
      media_error(name, "is not a valid PNG (truncated or corrupt): no image header");
    info = {int64_t(be32(16)), int64_t(be32(20)), ImageFormat::png};
  } else if (bytes.size() >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff) {
    // Markers up to the frame header (SOF0..SOF15 but DHT, JPG and DAC): FF Cn, length, precision,
    // height, width. Every marker but SOI, TEM and RSTn carries a length.
    // Between segments, as libjpeg does: stray bytes up to the next 0xFF are skipped, then fill
    // bytes; FF 00 is not a marker.
    size_t at = 2;
    for (;;) {
      while (at < bytes.size() && bytes[at] != 0xff) ++at;
      while (at < bytes.size() && bytes[at] == 0xff) ++at;
      if (at + 3 > bytes.size())
        media_error(name, "is not a valid JPEG (truncated or corrupt): no frame header");
      const uint8_t marker = bytes[at];
      if (marker == 0x00 || marker == 0xd8 || marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
        ++at;
        continue;
      }
      if (marker == 0xda || marker == 0xd9)
        media_error(name, "is not a valid JPEG (truncated or corrupt): image data before its frame header");
      const size_t length = size_t(bytes[at + 1]) << 8 | bytes[at + 2];
      if (marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc) {
        if (at + 8 > bytes.size() || length < 7)
          media_error(name, "is not a valid JPEG (truncated or corrupt): a short frame header");
        info = {int64_t(bytes[at + 6]) << 8 | bytes[at + 7], int64_t(bytes[at + 4]) << 8 | bytes[at + 5],
                ImageFormat::jpeg};
        break;
      }
      if (length < 2) media_error(name, "is not a valid JPEG (truncated or corrupt): a marker of length 0");
      at += 1 + length;
    }
  } else if (bytes.size() >= 12 && std::memcmp(bytes.data(), "RIFF", 4) == 0 &&
             std::memcmp(bytes.data() + 8, "WEBP", 4) == 0) {
    WebPBitstreamFeatures features;
    if (WebPGetFeatures(bytes.data(), bytes.size(), &features) != VP8_STATUS_OK)
      media_error(name, "is not a valid WebP image");
    info = {features.width, features.height, ImageFormat::webp};
  } else {
    media_error(name, "is not a PNG, JPEG or WebP image");
  }
  if (info.width <= 0 || info.height <= 0) media_error(name, "has no pixels");
  if (info.width > INT32_MAX || info.height > INT32_MAX)  // PNG allows up to 2^31 - 1 a side
    throw Error(ErrorCode::limit_exceeded,
                fmt::format("{}: {}x{} is larger than any image upres reads", name, info.width, info.height));
  return info;
}

Image read_image(const std::string& path, int64_t max_pixels) {
  return decode_image(read_file_bytes(path), path, max_pixels);
}

std::vector<uint8_t> encode_image(const Image& image, ImageFormat format, const ImageWriteOptions& options) {
  switch (format) {
    case ImageFormat::png: return encode_png(image);
    case ImageFormat::jpeg: return encode_jpeg(image, options.jpeg_quality);
    case ImageFormat::webp: return encode_webp(image, options);
  }
  return {};
}

void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  PartialFile partial(path);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(partial.fd(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      throw Error(ErrorCode::io_failure,
                  fmt::format("cannot write {}: {}{}", path, std::strerror(errno),
                              errno == ENOSPC ? " (the disk is full; free space and retry)" : ""));
    done += size_t(n);
  }
  partial.commit();
}

void write_image(const Image& image, const std::string& path, const ImageWriteOptions& options) {
  write_file_atomically(path, encode_image(image, image_format_from_path(path), options));
}

}  // namespace upres
