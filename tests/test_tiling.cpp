// Tiled execution equals full-frame execution, at odd frame sizes, with windows that hit every
// frame edge (squeeze-excitation models included); scale requests other than the model's own;
// output caps.
#include <algorithm>
#include <cmath>
#include <functional>
#include <utility>

#include "test_support.hpp"
#include "upres/upscaler.hpp"

namespace upres::test {
namespace {

double max_abs_diff(const Image& a, const Image& b) {
  double worst = 0;
  for (size_t i = 0; i < a.data.size(); ++i)
    worst = std::max(worst, double(std::fabs(a.data[i] - b.data[i])));
  return worst;
}

struct TileCase {
  const char* model;
  int width, height, tile;
  const char* backend = "cpu";
};
// How ctest names a case (GoogleTest would print the bytes).
void PrintTo(const TileCase& c, std::ostream* os) {
  *os << c.model << " " << c.width << "x" << c.height << " tile " << c.tile << " on " << c.backend;
}

class Tiling : public ::testing::TestWithParam<TileCase> {};

TEST_P(Tiling, TiledEqualsFullFrame) {
  const TileCase& c = GetParam();
  UPRES_REQUIRE_MODEL(c.model);
  if (!backend_available(c.backend)) GTEST_SKIP() << c.backend << " has no device here";
  auto model = Model::load(c.model);
  Image input = make_test_pattern(c.width, c.height, 9);
  UpscaleOptions full_options;
  full_options.backend = c.backend;
  Upscaler full(model, full_options);
  UpscaleOptions tiled_options = full_options;
  tiled_options.tile = c.tile;
  Upscaler tiled(model, tiled_options);
  Image a = full.upscale(input);
  Image b = tiled.upscale(input);
  EXPECT_EQ(full.last_stats().tiles, 1);
  EXPECT_GT(tiled.last_stats().tiles, 3);
  ASSERT_EQ(a.width, b.width);
  ASSERT_EQ(a.height, b.height);
  // Squeeze-excitation models (Real-CUGAN, CUNet) too: their frame-wide averages are gathered
  // from all tiles before the tiles run.
  EXPECT_LE(max_abs_diff(a, b), 2e-4) << c.model;
  expect_no_validation_messages();
}

INSTANTIATE_TEST_SUITE_P(Models, Tiling,
                         ::testing::Values(TileCase{"realesr-animevideov3-x2", 197, 161, 32},
                                           TileCase{"realesr-animevideov3-x4", 145, 183, 20},
                                           TileCase{"realesr-general-x4v3", 171, 153, 24},
                                           TileCase{"waifu2x-upconv7-x2", 67, 45, 16},
                                           TileCase{"realcugan-up2x-no-denoise", 91, 63, 32},
                                           TileCase{"realcugan-up3x-no-denoise", 75, 51, 24},
                                           TileCase{"realcugan-up4x-no-denoise", 53, 41, 20},
                                           TileCase{"waifu2x-cunet-x2", 81, 57, 32},
                                           TileCase{"waifu2x-cunet-noise1", 61, 47, 24},
                                           TileCase{"realesr-animevideov3-x2", 101, 77, 24, "vulkan"},
                                           TileCase{"realcugan-up2x-no-denoise", 59, 43, 24, "vulkan"},
                                           TileCase{"waifu2x-cunet-x2", 53, 45, 24, "vulkan"}),
                         [](const auto& info) {
                           return test_name_from(std::string(info.param.model) +
                                                 (info.param.backend == std::string("cpu") ? "" : "_vulkan"));
                         });

// Frame after frame (a video), the gathering parts compiled for the first frame are reused: a
// different picture next, then the first again, give what a fresh upscaler gives.
TEST(Tiling, FrameWideMeansAreGatheredAfreshEachFrame) {
  UPRES_REQUIRE_MODEL("realcugan-up2x-no-denoise");
  auto model = Model::load("realcugan-up2x-no-denoise");
  UpscaleOptions o;
  o.tile = 32;
  const Image first = make_test_pattern(71, 45, 3), second = make_test_pattern(71, 45, 8);
  Upscaler video(model, o);
  const Image a = video.upscale(first);
  const Image b = video.upscale(second);
  const Image c = video.upscale(first);
  EXPECT_GT(video.last_stats().tiles, 3);
  EXPECT_EQ(a.data, c.data);
  EXPECT_EQ(Upscaler(model, o).upscale(second).data, b.data);
  EXPECT_GT(max_abs_diff(a, b), 0.01) << "different pictures";
}

TEST(Tiling, AutomaticTilesFollowTheMemoryBudget) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x2");
  auto model = Model::load("realesr-animevideov3-x2");
  UpscaleOptions o;
  o.max_memory = 8 << 20;  // 8 MiB of activations: a 200x150 frame does not fit
  Upscaler small(model, o);
  Upscaler full(model, UpscaleOptions{});
  Image input = make_test_pattern(200, 150, 4);
  Image a = small.upscale(input);
  EXPECT_GT(small.last_stats().tiles, 1);
  EXPECT_LE(max_abs_diff(a, full.upscale(input)), 2e-4);
}

TEST(Scaling, RequestedScaleResamplesTheModelOutput) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x4");
  auto model = Model::load("realesr-animevideov3-x4");
  UpscaleOptions o;
  o.scale = 2;
  Upscaler up(model, o);
  Image input = make_test_pattern(33, 21, 2);
  Image out = up.upscale(input);
  EXPECT_EQ(out.width, 66);
  EXPECT_EQ(out.height, 42);
  EXPECT_GE(psnr_8bit(out, resize_image(input, 66, 42)), 22.0);
}

TEST(Scaling, AlphaIsUpscaledAndKept) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x2");
  Image input = make_test_pattern(20, 10, 2);
  Image rgba(20, 10, 4);
  std::copy(input.data.begin(), input.data.end(), rgba.data.begin());
  for (int y = 0; y < 10; ++y)
    for (int x = 0; x < 20; ++x) rgba.at(3, y, x) = x < 10 ? 1.f : 0.f;
  Upscaler up(Model::load("realesr-animevideov3-x2"), UpscaleOptions{});
  Image out = up.upscale(rgba);
  ASSERT_EQ(out.channels, 4);
  EXPECT_NEAR(out.at(3, 5, 2), 1.f, 1e-3);
  EXPECT_NEAR(out.at(3, 5, 37), 0.f, 1e-3);
}

// The self-ensemble (--tta) averages over all eight flips and turns, so it commutes with each of
// them: tta(turned picture) is the turned tta(picture). A wrong way back for any one of the
// eight breaks that. It stays close to the single pass, on odd non-square sizes, with alpha and
// with an exact output size.
TEST(Scaling, TheSelfEnsembleTurnsWithThePicture) {
  UPRES_REQUIRE_MODEL("upres-compact-x2");
  auto model = Model::load("upres-compact-x2");
  UpscaleOptions o;
  o.precision = Precision::f32;
  o.tta = true;
  Upscaler tta(model, o);
  o.tta = false;
  Upscaler once(model, o);
  const Image input = make_test_pattern(23, 14, 7);
  // The picture turned a quarter (transposed, then mirrored left-right).
  auto turn = [](const Image& in) {
    Image out(in.height, in.width, in.channels);
    for (int c = 0; c < in.channels; ++c)
      for (int y = 0; y < out.height; ++y)
        for (int x = 0; x < out.width; ++x) out.at(c, y, x) = in.at(c, out.width - 1 - x, y);
    return out;
  };
  auto mirror = [](const Image& in) {
    Image out(in.width, in.height, in.channels);
    for (int c = 0; c < in.channels; ++c)
      for (int y = 0; y < in.height; ++y)
        for (int x = 0; x < in.width; ++x) out.at(c, y, x) = in.at(c, y, in.width - 1 - x);
    return out;
  };
  const Image a = tta.upscale(input);
  ASSERT_EQ(a.width, 46);
  ASSERT_EQ(a.height, 28);
  for (const auto& [name, g] :
       {std::pair<const char*, std::function<Image(const Image&)>>{"turn", turn}, {"mirror", mirror}}) {
    const Image b = tta.upscale(g(input)), want = g(a);
    ASSERT_EQ(b.width, want.width) << name;
    float worst = 0;
    for (size_t i = 0; i < b.data.size(); ++i) worst = std::max(worst, std::abs(b.data[i] - want.data[i]));
    EXPECT_LT(worst, 1e-4) << name;
  }
  const Image single = once.upscale(input);
  EXPECT_GT(psnr_8bit(a, single), 35.0) << "the ensemble refines the single pass, it does not replace it";
  EXPECT_NE(a.data, single.data);
  // RGBA and an exact output size.
  Image rgba(23, 14, 4);
  std::copy(input.data.begin(), input.data.end(), rgba.data.begin());
  std::fill(rgba.plane(3), rgba.plane(3) + 23 * 14, 1.f);
  o.tta = true;
  o.output_width = 40;
  o.output_height = 25;
  Upscaler sized(model, o);
  const Image s = sized.upscale(rgba);
  EXPECT_EQ(s.width, 40);
  EXPECT_EQ(s.height, 25);
  EXPECT_EQ(s.channels, 4);
  EXPECT_NEAR(s.at(3, 12, 20), 1.f, 1e-3);
}

TEST(Limits, OutputOverTheCapIsRefusedBeforeWork) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x4");
  UpscaleOptions o;
  o.max_output_side = 100;
  Upscaler up(Model::load("realesr-animevideov3-x4"), o);
  try {
    up.upscale(make_test_pattern(30, 20));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::limit_exceeded);
    EXPECT_NE(std::string(e.what()).find("120x80"), std::string::npos) << e.what();
  }
}

TEST(Limits, BadOptionsAreRejected) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x2");
  auto model = Model::load("realesr-animevideov3-x2");
  UpscaleOptions o;
  o.tile = 3;
  EXPECT_THROW(Upscaler(model, o), Error);
  o.tile = 0;
  o.scale = 40;
  EXPECT_THROW(Upscaler(model, o), Error);
  EXPECT_THROW(check_backend_name("gpu9000"), Error);
}

}  // namespace
}  // namespace upres::test
