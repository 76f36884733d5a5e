// Quality measures with known answers, and the evaluation loop on images the test draws.
#include <filesystem>

#include "test_support.hpp"
#include "upres/quality.hpp"

namespace upres::test {
namespace {

Image flat(int w, int h, float v) {
  Image img(w, h, 3);
  std::fill(img.data.begin(), img.data.end(), v);
  return img;
}

TEST(Quality, KnownValues) {
  const Image a = luma_8bit(flat(20, 16, 0.5f));
  EXPECT_EQ(a.channels, 1);
  EXPECT_FLOAT_EQ(a.at(0, 3, 3), std::round(16 + 219 * (128.0 / 255)));  // rgb2ycbcr of grey 128
  EXPECT_DOUBLE_EQ(psnr_y(a, a, 2), 100.0);
  EXPECT_NEAR(ssim_y(luma_8bit(make_test_pattern(40, 32)), luma_8bit(make_test_pattern(40, 32)), 2), 1.0,
              1e-12);
  Image b = a;
  for (float& v : b.data) v += 1;  // one level everywhere: MSE 1
  EXPECT_NEAR(psnr_y(a, b, 2), 20 * std::log10(255.0), 1e-9);
  Image noisy = luma_8bit(make_test_pattern(40, 32, 3)), clean = noisy;
  for (size_t i = 0; i < noisy.data.size(); i += 3) noisy.data[i] += 20;
  EXPECT_LT(ssim_y(noisy, clean, 2), 0.99);
  EXPECT_THROW(psnr_y(a, luma_8bit(flat(10, 10, 0.5f)), 2), Error);
}

TEST(Quality, EvaluatesAFolderAgainstBicubic) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x2");
  char tmpl[] = "/tmp/upres-eval-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  write_image(make_test_pattern(61, 47, 1), dir + "/a.png");
  write_image(make_test_pattern(48, 64, 2), dir + "/b.png");
  const QualityReport bicubic = evaluate_folder(dir, "bicubic", 2);
  const QualityReport model = evaluate_folder(dir, "realesr-animevideov3-x2", 2);
  std::filesystem::remove_all(dir);
  ASSERT_EQ(bicubic.rows.size(), 2u);
  EXPECT_GT(bicubic.mean_psnr, 15);
  EXPECT_LT(bicubic.mean_psnr, 60);
  EXPECT_GT(model.mean_ssim, 0.5);
  EXPECT_THROW(evaluate_folder("/nonexistent", "bicubic", 2), Error);
  const std::string tiny_dir = std::string(dir) + "-tiny";
  std::filesystem::create_directory(tiny_dir);
  write_image(make_test_pattern(12, 12, 1), tiny_dir + "/tiny.png");
  try {
    evaluate_folder(tiny_dir, "bicubic", 2);
    ADD_FAILURE() << "a picture too small to measure was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tiny.png"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(tiny_dir);
}

}  // namespace
}  // namespace upres::test
