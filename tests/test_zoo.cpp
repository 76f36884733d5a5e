// Every zoo model end to end: it loads, each fast backend matches the reference backend on the
// 8-bit output (cpu and Vulkan f32 within 50 dB, Vulkan f16 within 40 dB; Vulkan where a device
// exists, lavapipe in the tests), and the picture it makes is a plausible upscale (close to a
// bicubic one), which catches wrong weight layouts and wrong padding that parity alone would not.
#include <fmt/format.h>

#include "test_support.hpp"
#include "upres/upscaler.hpp"

namespace upres::test {
namespace {

std::vector<std::string> zoo_names() {
  std::vector<std::string> names;
  for (const ModelInfo& m : model_zoo()) names.push_back(m.name);
  return names;
}

class ZooModel : public ::testing::TestWithParam<std::string> {};

TEST_P(ZooModel, BackendsMatchReferenceAndLookLikeTheInput) {
  const std::string name = GetParam();
  UPRES_REQUIRE_MODEL(name);
  auto model = Model::load(name);
  const bool heavy = model->macs_per_input_pixel() > 2e6;  // RRDB: keep the reference run short
  Image input = make_test_pattern(heavy ? 15 : 29, heavy ? 11 : 23, 3);
  UpscaleOptions ref_options;
  ref_options.backend = "reference";
  const Image expected = Upscaler(model, ref_options).upscale(input);
  struct Target {
    const char* backend;
    Precision precision;
    double min_db;
  };
  for (const Target& t : {Target{"cpu", Precision::f32, 50}, Target{"vulkan", Precision::f32, 50},
                          Target{"vulkan", Precision::f16, 40}}) {
    if (!backend_available(t.backend)) continue;
    SCOPED_TRACE(fmt::format("{} {}", t.backend, precision_name(t.precision)));
    UpscaleOptions o;
    o.backend = t.backend;
    o.precision = t.precision;
    Image got = Upscaler(model, o).upscale(input);
    const int s = model->geometry().scale;
    ASSERT_EQ(got.width, input.width * s);
    ASSERT_EQ(got.height, input.height * s);
    EXPECT_GE(psnr_8bit(got, expected), t.min_db) << name;
    Image bicubic = resize_image(input, got.width, got.height, ResampleFilter::bicubic);
    EXPECT_GE(psnr_8bit(got, bicubic), 17.0) << name << " does not resemble its input";
  }
  expect_no_validation_messages();
}

INSTANTIATE_TEST_SUITE_P(All, ZooModel, ::testing::ValuesIn(zoo_names()),
                         [](const auto& info) { return test_name_from(info.param); });

TEST(Zoo, ManifestIsConsistent) {
  EXPECT_GE(model_zoo().size(), 31u);
  for (const ModelInfo& m : model_zoo()) {
    ASSERT_EQ(m.sha256.size(), m.source.files.size()) << m.name;
    for (const std::string& sha : m.sha256) EXPECT_EQ(sha.size(), 64u) << m.name;
    EXPECT_GE(m.scale, 1);
    EXPECT_FALSE(m.license.empty());
  }
  EXPECT_NE(find_model_info("realesr-animevideov3-x2"), nullptr);
  EXPECT_NE(find_model_info("realesr-general-x4v3"), nullptr);
  EXPECT_EQ(find_model_info("no-such-model"), nullptr);
}

TEST(Zoo, GeometryMatchesThePublishedBorders) {
  struct Expect {
    const char* name;
    int scale, border;
  };
  for (Expect e : {Expect{"realesr-animevideov3-x2", 2, 0}, Expect{"realesr-animevideov3-x3", 3, 0},
                   Expect{"realcugan-up2x-no-denoise", 2, 18}, Expect{"realcugan-up3x-no-denoise", 3, 14},
                   Expect{"realcugan-up4x-no-denoise", 4, 19}, Expect{"waifu2x-cunet-x2", 2, 18},
                   Expect{"waifu2x-cunet-noise1", 1, 28}, Expect{"waifu2x-upconv7-x2", 2, 7}}) {
    const ModelInfo* info = find_model_info(e.name);
    ASSERT_NE(info, nullptr);
    if (!model_installed(*info)) continue;
    auto m = Model::load(e.name);
    EXPECT_EQ(m->geometry().scale, e.scale) << e.name;
    EXPECT_EQ(m->geometry().border, e.border) << e.name;
    EXPECT_EQ(m->geometry().scale, info->scale) << e.name;
  }
}

TEST(Zoo, UnknownAndMissingModelsSayWhatToDo) {
  try {
    Model::load("realesrgan-x9");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::not_found);
    EXPECT_NE(std::string(e.what()).find("upres models list"), std::string::npos);
  }
  setenv("UPRES_MODEL_DIR", "/nonexistent-upres-cache", 1);
  try {
    Model::load("realesr-animevideov3-x2");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::not_found);
    EXPECT_NE(std::string(e.what()).find("upres models fetch realesr-animevideov3-x2"), std::string::npos);
  }
  unsetenv("UPRES_MODEL_DIR");
}

}  // namespace
}  // namespace upres::test
