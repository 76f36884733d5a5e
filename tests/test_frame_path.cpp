// Whole video frames converted on the device (runtime/frame_path.hpp): the planes a Vulkan run
// gives back equal, to within one code's rounding, what the host path makes of the same frame
// (media/color.cpp's conversion in, the upscaler's float path, the conversion out), across pixel
// formats, bit depths, ranges, matrices, chroma sitings, border rules and odd sizes; two frames in
// flight give the same planes as one at a time; and the path declines what it cannot do.
#include <fmt/format.h>

extern "C" {
#include <libavutil/pixdesc.h>
}

#include "image/test_pattern.hpp"
#include "media/av_common.hpp"
#include "media/color.hpp"
#include "runtime/frame_path.hpp"
#include "test_support.hpp"
#include "upres/upscaler.hpp"

namespace upres::test {
namespace {

struct FrameCase {
  const char* model;
  AVPixelFormat in_format, out_format;
  ColorSpec in_color, out_color;
  int width, height;
  Precision precision;
};

void PrintTo(const FrameCase& c, std::ostream* os) {
  *os << c.model << " " << av_get_pix_fmt_name(c.in_format) << " -> " << av_get_pix_fmt_name(c.out_format)
      << " " << c.width << "x" << c.height << " " << precision_name(c.precision);
}

FramePtr frame_of(AVPixelFormat format, int width, int height) {
  FramePtr f = make_frame();
  f->format = format;
  f->width = width;
  f->height = height;
  EXPECT_GE(av_frame_get_buffer(f.get(), 0), 0);
  return f;
}

// Every code of every plane, in order.
std::vector<int> codes_of(const AVFrame& f) {
  const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(AVPixelFormat(f.format));
  std::vector<int> codes;
  for (int k = 0; k < 3; ++k) {
    const int w =
        k == 0 || (d->flags & AV_PIX_FMT_FLAG_RGB) ? f.width : AV_CEIL_RSHIFT(f.width, d->log2_chroma_w);
    const int h =
        k == 0 || (d->flags & AV_PIX_FMT_FLAG_RGB) ? f.height : AV_CEIL_RSHIFT(f.height, d->log2_chroma_h);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const uint8_t* row = f.data[k] + ptrdiff_t(y) * f.linesize[k];
        codes.push_back(d->comp[0].depth > 8 ? reinterpret_cast<const uint16_t*>(row)[x] : row[x]);
      }
  }
  return codes;
}

// A picture-like input frame: the test pattern converted into the format.
FramePtr input_frame(const FrameCase& c, uint32_t seed) {
  FramePtr f = frame_of(c.in_format, c.width, c.height);
  std::vector<float> scratch;
  image_to_frame(make_test_pattern(c.width, c.height, seed), c.in_color, *f, scratch);
  return f;
}

// The host path: planes to float RGB, the upscaler's tensor path, float RGB to planes.
FramePtr host_result(Upscaler& up, const FrameCase& c, const AVFrame& in) {
  Image rgb, big;
  frame_to_image(in, c.in_color, rgb);
  up.upscale_into(rgb, big);
  const int s = up.output_scale();
  FramePtr out = frame_of(c.out_format, c.width * s, c.height * s);
  std::vector<float> scratch;
  image_to_frame(big, c.out_color, *out, scratch);
  return out;
}

void expect_within_a_code(const AVFrame& got, const AVFrame& want, const std::string& what) {
  const std::vector<int> a = codes_of(got), b = codes_of(want);
  ASSERT_EQ(a.size(), b.size());
  size_t off_by_one = 0, worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const size_t d = size_t(std::abs(a[i] - b[i]));
    worst = std::max(worst, d);
    off_by_one += d == 1;
  }
  EXPECT_LE(worst, 1u) << what;
  EXPECT_LE(double(off_by_one), 0.003 * double(a.size())) << what << ": codes a rounding apart";
}

ColorSpec spec(AVColorSpace matrix, AVColorRange range, AVChromaLocation location) {
  return {matrix, range, location};
}

class FrameFormats : public ::testing::TestWithParam<FrameCase> {};

TEST_P(FrameFormats, DevicePlanesMatchTheHostPath) {
  const FrameCase& c = GetParam();
  UPRES_REQUIRE_MODEL(c.model);
  if (!backend_available("vulkan")) GTEST_SKIP() << "no Vulkan device here";
  auto model = Model::load(c.model);
  UpscaleOptions o;
  o.backend = "vulkan";
  o.precision = c.precision;
  Upscaler host(model, o), device(model, o);
  const int s = model->geometry().scale;
  auto path = FramePath::make(device, plane_format(c.in_format, c.width, c.height, c.in_color),
                              plane_format(c.out_format, c.width * s, c.height * s, c.out_color));
  ASSERT_NE(path, nullptr);
  const FramePtr a = input_frame(c, 1), b = input_frame(c, 2);
  FramePtr out_a = frame_of(c.out_format, c.width * s, c.height * s);
  FramePtr out_b = frame_of(c.out_format, c.width * s, c.height * s);
  // Two in flight, waited for in the other order.
  Ticket ta = path->submit(planes_of(*a), planes_of(*out_a));
  Ticket tb = path->submit(planes_of(*b), planes_of(*out_b));
  tb.wait();
  ta.wait();
  expect_within_a_code(*out_a, *host_result(host, c, *a), "first frame");
  expect_within_a_code(*out_b, *host_result(host, c, *b), "second frame");
  // A third frame reuses the first's slot.
  FramePtr out_c = frame_of(c.out_format, c.width * s, c.height * s);
  path->submit(planes_of(*b), planes_of(*out_c)).wait();
  EXPECT_EQ(codes_of(*out_c), codes_of(*out_b));
  expect_no_validation_messages();
}

const ColorSpec k709 = spec(AVCOL_SPC_BT709, AVCOL_RANGE_MPEG, AVCHROMA_LOC_LEFT);

INSTANTIATE_TEST_SUITE_P(
    All, FrameFormats,
    ::testing::Values(
        // Zero-padded network, 8-bit 4:2:0 in and out, odd size.
        FrameCase{"upres-compact-x2", AV_PIX_FMT_YUV420P, AV_PIX_FMT_YUV420P, k709, k709, 37, 23,
                  Precision::f32},
        // Reflect border; 10-bit BT.2020 full range, centred chroma.
        FrameCase{"realcugan-up2x-no-denoise", AV_PIX_FMT_YUV420P10LE, AV_PIX_FMT_YUV420P10LE,
                  spec(AVCOL_SPC_BT2020_NCL, AVCOL_RANGE_JPEG, AVCHROMA_LOC_CENTER),
                  spec(AVCOL_SPC_BT2020_NCL, AVCOL_RANGE_JPEG, AVCHROMA_LOC_CENTER), 30, 19, Precision::f32},
        // The input added to the output (Real-CUGAN 4x); 4:2:2 BT.601 top-left sited.
        FrameCase{"realcugan-up4x-no-denoise", AV_PIX_FMT_YUV422P, AV_PIX_FMT_YUV422P,
                  spec(AVCOL_SPC_SMPTE170M, AVCOL_RANGE_MPEG, AVCHROMA_LOC_TOPLEFT),
                  spec(AVCOL_SPC_SMPTE170M, AVCOL_RANGE_MPEG, AVCHROMA_LOC_TOPLEFT), 17, 13, Precision::f32},
        // Replicate border; RGB planes.
        FrameCase{"waifu2x-cunet-x2", AV_PIX_FMT_GBRP, AV_PIX_FMT_GBRP10LE,
                  spec(AVCOL_SPC_RGB, AVCOL_RANGE_JPEG, AVCHROMA_LOC_UNSPECIFIED),
                  spec(AVCOL_SPC_RGB, AVCOL_RANGE_JPEG, AVCHROMA_LOC_UNSPECIFIED), 21, 18, Precision::f32},
        // 8-bit in, 12-bit 4:4:4 out in another matrix; scale 1.
        FrameCase{"waifu2x-cunet-noise0", AV_PIX_FMT_YUVJ420P, AV_PIX_FMT_YUV444P12LE,
                  spec(AVCOL_SPC_BT470BG, AVCOL_RANGE_JPEG, AVCHROMA_LOC_CENTER), k709, 25, 22,
                  Precision::f32},
        // Half-precision activations; bottom-left chroma; odd chroma planes both ways.
        FrameCase{"realesr-animevideov3-x2", AV_PIX_FMT_YUV420P10LE, AV_PIX_FMT_YUV420P,
                  spec(AVCOL_SPC_BT709, AVCOL_RANGE_MPEG, AVCHROMA_LOC_BOTTOMLEFT), k709, 33, 27,
                  Precision::f16}),
    [](const auto& info) {
      return test_name_from(fmt::format("{}_{}_{}", info.param.model,
                                        av_get_pix_fmt_name(info.param.in_format),
                                        precision_name(info.param.precision)));
    });

TEST(FramePath, DeclinesWhatItCannotDo) {
  UPRES_REQUIRE_MODEL("upres-compact-x2");
  auto model = Model::load("upres-compact-x2");
  const ColorSpec c = k709;
  const PlaneFormat in = plane_format(AV_PIX_FMT_YUV420P, 40, 30, c);
  const PlaneFormat out = plane_format(AV_PIX_FMT_YUV420P, 80, 60, c);
  UpscaleOptions o;
  o.backend = "cpu";  // the host converts faster than a copy would
  Upscaler cpu(model, o);
  EXPECT_EQ(FramePath::make(cpu, in, out), nullptr);
  if (!backend_available("vulkan")) GTEST_SKIP() << "no Vulkan device here";
  o.backend = "vulkan";
  o.precision = Precision::f32;
  Upscaler gpu(model, o);
  EXPECT_NE(FramePath::make(gpu, in, out), nullptr);
  // Not the model's scale: a resample follows, on the host.
  EXPECT_EQ(FramePath::make(gpu, in, plane_format(AV_PIX_FMT_YUV420P, 120, 90, c)), nullptr);
  o.scale = 3;
  Upscaler resampled(model, o);
  EXPECT_EQ(FramePath::make(resampled, in, plane_format(AV_PIX_FMT_YUV420P, 120, 90, c)), nullptr);
  // Tiled frames stay on the float path.
  o.scale = 0;
  o.tile = 16;
  Upscaler tiled(model, o);
  EXPECT_EQ(FramePath::make(tiled, in, out), nullptr);
  o.tile = 0;
  o.max_memory = kMinMemoryBudget;
  Upscaler small(model, o);
  EXPECT_EQ(FramePath::make(small, plane_format(AV_PIX_FMT_YUV420P, 1000, 800, c),
                            plane_format(AV_PIX_FMT_YUV420P, 2000, 1600, c)),
            nullptr);
  expect_no_validation_messages();
}

}  // namespace
}  // namespace upres::test
