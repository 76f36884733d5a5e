// Image files: round trips keep bit depth and alpha, EXIF orientation is applied, broken and
// oversized files are refused with the right error, writes are atomic.
#include <dirent.h>
#include <unistd.h>

#include <filesystem>

#include "test_support.hpp"
#include "upres/error.hpp"

namespace upres::test {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/upres-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

ErrorCode decode_error(const std::vector<uint8_t>& bytes, int64_t max_pixels = int64_t(1) << 28) {
  try {
    decode_image(bytes, "x", max_pixels);
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::cancelled;  // "no error"
}

TEST(ImageIo, Png16BitRoundTripIsExact) {
  Image img(7, 5, 3, 16);
  for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = float((i * 2557) % 65536) / 65535.f;
  Image back = decode_image(encode_image(img, ImageFormat::png), "x");
  EXPECT_EQ(back.bit_depth, 16);
  ASSERT_EQ(back.data.size(), img.data.size());
  for (size_t i = 0; i < img.data.size(); ++i)
    EXPECT_EQ(std::lround(back.data[i] * 65535), std::lround(img.data[i] * 65535));
}

TEST(ImageIo, Png8BitWithAlphaRoundTrip) {
  Image img(9, 4, 4, 8);
  for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = float(i % 256) / 255.f;
  Image back = decode_image(encode_image(img, ImageFormat::png), "x");
  EXPECT_EQ(back.channels, 4);
  EXPECT_EQ(back.bit_depth, 8);
  for (size_t i = 0; i < img.data.size(); ++i) EXPECT_NEAR(back.data[i], img.data[i], 1e-6);
}

TEST(ImageIo, WebpLosslessKeepsAlpha) {
  Image img = make_test_pattern(17, 9);
  Image rgba(17, 9, 4);
  std::copy(img.data.begin(), img.data.end(), rgba.data.begin());
  for (int i = 0; i < 17 * 9; ++i) rgba.plane(3)[i] = float(i % 3) / 2.f;
  ImageWriteOptions o;
  o.webp_lossless = true;
  Image back = decode_image(encode_image(rgba, ImageFormat::webp, o), "x");
  ASSERT_EQ(back.channels, 4);
  EXPECT_GE(psnr_8bit(back, rgba), 50);
}

TEST(ImageIo, JpegRoundTripIsClose) {
  Image img = make_test_pattern(40, 24);
  Image back = decode_image(encode_image(img, ImageFormat::jpeg), "x");
  EXPECT_EQ(back.channels, 3);
  EXPECT_GE(psnr_8bit(back, img), 24);
}

// A big-endian TIFF structure holding one tag: Orientation = `orientation`.
std::vector<uint8_t> tiff_orientation(uint16_t orientation) {
  return {'M',
          'M',
          0,
          42,
          0,
          0,
          0,
          8,  // header, IFD0 at 8
          0,
          1,  // one entry
          0x01,
          0x12,
          0,
          3,
          0,
          0,
          0,
          1,  // Orientation, SHORT, count 1
          uint8_t(orientation >> 8),
          uint8_t(orientation),
          0,
          0,
          0,
          0,
          0,
          0};  // no next IFD
}

// Inserts an EXIF APP1 segment with the given orientation after the JPEG's SOI marker.
std::vector<uint8_t> with_exif_orientation(std::vector<uint8_t> jpeg, uint16_t orientation) {
  const std::vector<uint8_t> tiff = tiff_orientation(orientation);
  std::vector<uint8_t> app1 = {0xff, 0xe1, 0, 0, 'E', 'x', 'i', 'f', 0, 0};
  app1.insert(app1.end(), tiff.begin(), tiff.end());
  size_t len = app1.size() - 2;
  app1[2] = uint8_t(len >> 8);
  app1[3] = uint8_t(len);
  jpeg.insert(jpeg.begin() + 2, app1.begin(), app1.end());
  return jpeg;
}

uint32_t crc32_of(const uint8_t* p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
  }
  return ~c;
}

// Inserts an eXIf chunk after the PNG's IHDR chunk.
std::vector<uint8_t> png_with_orientation(std::vector<uint8_t> png, uint16_t orientation) {
  const std::vector<uint8_t> tiff = tiff_orientation(orientation);
  std::vector<uint8_t> chunk = {0, 0, 0, uint8_t(tiff.size()), 'e', 'X', 'I', 'f'};
  chunk.insert(chunk.end(), tiff.begin(), tiff.end());
  const uint32_t crc = crc32_of(chunk.data() + 4, chunk.size() - 4);
  for (int k = 3; k >= 0; --k) chunk.push_back(uint8_t(crc >> (8 * k)));
  png.insert(png.begin() + 33, chunk.begin(), chunk.end());  // signature (8) + IHDR (25)
  return png;
}

// Rewraps a simple WebP as an extended one (VP8X) with an EXIF chunk.
std::vector<uint8_t> webp_with_orientation(const std::vector<uint8_t>& webp, int w, int h,
                                           uint16_t orientation) {
  auto le = [](std::vector<uint8_t>& v, uint32_t x, int bytes) {
    for (int k = 0; k < bytes; ++k) v.push_back(uint8_t(x >> (8 * k)));
  };
  std::vector<uint8_t> body = {'W', 'E', 'B', 'P', 'V', 'P', '8', 'X'};
  le(body, 10, 4);
  body.insert(body.end(), {0x08, 0, 0, 0});  // flags: EXIF
  le(body, uint32_t(w - 1), 3);
  le(body, uint32_t(h - 1), 3);
  body.insert(body.end(), webp.begin() + 12, webp.end());  // the image chunk as it was
  const std::vector<uint8_t> tiff = tiff_orientation(orientation);
  body.insert(body.end(), {'E', 'X', 'I', 'F'});
  le(body, uint32_t(tiff.size()), 4);
  body.insert(body.end(), tiff.begin(), tiff.end());
  std::vector<uint8_t> out = {'R', 'I', 'F', 'F'};
  le(out, uint32_t(body.size()), 4);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

// 16x8: the left half red, the right half blue, so turns and mirrors are easy to see.
Image red_left_blue_right() {
  Image img(16, 8, 3);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 16; ++x) {
      img.at(0, y, x) = x < 8 ? 1.f : 0.f;
      img.at(2, y, x) = x < 8 ? 0.f : 1.f;
    }
  return img;
}

TEST(ImageIo, PngAndWebpExifOrientationIsApplied) {
  const Image img = red_left_blue_right();
  ImageWriteOptions lossless;
  lossless.webp_lossless = true;
  const std::vector<std::vector<uint8_t>> files = {
      png_with_orientation(encode_image(img, ImageFormat::png), 6),
      webp_with_orientation(encode_image(img, ImageFormat::webp, lossless), 16, 8, 6)};
  for (const auto& bytes : files) {
    Image upright = decode_image(bytes, "x");
    ASSERT_EQ(upright.width, 8);
    ASSERT_EQ(upright.height, 16);
    EXPECT_GT(upright.at(0, 2, 4), 0.9f);  // top came from the left (red) columns
    EXPECT_LT(upright.at(0, 13, 4), 0.1f);
  }
}

TEST(ImageIo, JpegExifOrientationIsApplied) {
  const Image img = red_left_blue_right();
  auto jpeg = encode_image(img, ImageFormat::jpeg);
  Image upright = decode_image(with_exif_orientation(jpeg, 6), "x");  // stored rotated: turn 90 clockwise
  ASSERT_EQ(upright.width, 8);
  ASSERT_EQ(upright.height, 16);
  EXPECT_GT(upright.at(0, 2, 4), 0.7f);  // top came from the left (red) columns
  EXPECT_LT(upright.at(0, 13, 4), 0.3f);
  Image mirrored = decode_image(with_exif_orientation(jpeg, 2), "x");
  ASSERT_EQ(mirrored.width, 16);
  EXPECT_LT(mirrored.at(0, 4, 2), 0.3f);  // left is blue now
  Image plain = decode_image(with_exif_orientation(jpeg, 1), "x");
  EXPECT_GT(plain.at(0, 4, 2), 0.7f);
}

TEST(ImageIo, BrokenFilesAreInvalidMedia) {
  auto png = encode_image(make_test_pattern(30, 20), ImageFormat::png);
  for (size_t cut : {size_t(8), size_t(40), png.size() / 2, png.size() - 13})
    EXPECT_EQ(decode_error(std::vector<uint8_t>(png.begin(), png.begin() + long(cut))),
              ErrorCode::invalid_media)
        << cut;
  auto jpeg = encode_image(make_test_pattern(30, 20), ImageFormat::jpeg);
  EXPECT_EQ(decode_error(std::vector<uint8_t>(jpeg.begin(), jpeg.begin() + 20)), ErrorCode::invalid_media);
  EXPECT_EQ(decode_error({'h', 'e', 'l', 'l', 'o'}), ErrorCode::invalid_media);
  EXPECT_EQ(decode_error({}), ErrorCode::invalid_media);
  std::vector<uint8_t> webp = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P', 1, 2, 3};
  EXPECT_EQ(decode_error(webp), ErrorCode::invalid_media);
}

// Damaged data is an error, never a picture with a grey or missing part.
TEST(ImageIo, TruncatedAndCorruptImagesAreErrorsNotPictures) {
  const Image picture = make_test_pattern(96, 64, 3);
  for (ImageFormat format : {ImageFormat::png, ImageFormat::jpeg, ImageFormat::webp}) {
    auto bytes = encode_image(picture, format);
    for (double keep : {0.3, 0.6, 0.9})
      EXPECT_EQ(decode_error(std::vector<uint8_t>(bytes.begin(), bytes.begin() + long(bytes.size() * keep))),
                ErrorCode::invalid_media)
          << int(format) << " cut to " << keep;
  }
  // A JPEG whose entropy-coded data ends in the middle of a scan, with an end marker after it.
  auto jpeg = encode_image(picture, ImageFormat::jpeg);
  std::vector<uint8_t> spliced(jpeg.begin(), jpeg.begin() + long(jpeg.size() / 2));
  spliced.insert(spliced.end(), {0xff, 0xd9});
  EXPECT_EQ(decode_error(spliced), ErrorCode::invalid_media);
  // PNG chunks carry checksums: one flipped byte in the image data is caught.
  auto png = encode_image(picture, ImageFormat::png);
  png[png.size() / 2] ^= 0x55;
  EXPECT_EQ(decode_error(png), ErrorCode::invalid_media);
}

TEST(ImageIo, ProbeReadsTheSizeFromTheHeaderAlone) {
  for (ImageFormat format : {ImageFormat::png, ImageFormat::jpeg, ImageFormat::webp}) {
    auto bytes = encode_image(make_test_pattern(37, 23), format);
    bytes.resize(std::min(bytes.size(), size_t(600)));  // the header is enough
    const ImageInfo info = probe_image(bytes, "probe");
    EXPECT_EQ(info.width, 37) << int(format);
    EXPECT_EQ(info.height, 23) << int(format);
    EXPECT_EQ(info.format, format);
  }
  EXPECT_THROW(probe_image({'h', 'e', 'l', 'l', 'o'}, "x"), Error);
  EXPECT_THROW(probe_image({0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, "x"), Error);
}

TEST(ImageIo, OversizedImagesAreRefusedFromTheHeader) {
  auto png = encode_image(make_test_pattern(30, 20), ImageFormat::png);
  EXPECT_EQ(decode_error(png, 500), ErrorCode::limit_exceeded);
  auto jpeg = encode_image(make_test_pattern(30, 20), ImageFormat::jpeg);
  EXPECT_EQ(decode_error(jpeg, 500), ErrorCode::limit_exceeded);
}

TEST(ImageIo, WritesAreAtomicAndLeaveNoTemporaries) {
  TempDir dir;
  const std::string path = (dir.path / "out.png").string();
  write_image(make_test_pattern(10, 10), path);
  write_image(make_test_pattern(12, 10), path);  // replaces
  EXPECT_EQ(read_image(path).width, 12);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()), 1);
  try {
    write_image(make_test_pattern(10, 10), (dir.path / "missing" / "out.png").string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::io_failure);
  }
  EXPECT_THROW(write_image(make_test_pattern(10, 10), (dir.path / "out.gif").string()), Error);
}

TEST(Resample, ConstantStaysConstantAndSizesAreExact) {
  Image img(13, 7, 3);
  std::fill(img.data.begin(), img.data.end(), 0.4f);
  for (ResampleFilter f : {ResampleFilter::nearest, ResampleFilter::bilinear, ResampleFilter::bicubic,
                           ResampleFilter::lanczos3}) {
    for (auto [w, h] : {std::pair{5, 3}, std::pair{39, 22}}) {
      Image out = resize_image(img, w, h, f);
      ASSERT_EQ(out.width, w);
      ASSERT_EQ(out.height, h);
      for (float v : out.data) EXPECT_NEAR(v, 0.4f, 1e-5);
    }
  }
}

}  // namespace
}  // namespace upres::test
