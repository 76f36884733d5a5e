// upres's own compact x2 model: the exported files run in upres exactly as the exporter's
// PyTorch rendering of them does (a parity pair written by training/export_ncnn.py), on both
// backends, within the cost budget of its class.
#include <cstring>
#include <fstream>

#include "test_support.hpp"
#include "upres/upscaler.hpp"

namespace upres::test {
namespace {

std::vector<float> read_f32(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), {});
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

TEST(CompactModel, MatchesPyTorchOnTheExportedModel) {
  const ModelInfo* info = find_model_info("upres-compact-x2");
  if (!info) GTEST_SKIP() << "no trained upres-compact-x2 in models/manifest.json yet";
  ASSERT_EQ(info->package, "repo");
  auto model = Model::load("upres-compact-x2");
  EXPECT_LE(model->parameter_count(), 460000);
  EXPECT_LE(model->macs_per_input_pixel(), 460000.0);
  EXPECT_EQ(model->geometry().scale, 2);

  const std::string stem = std::string(UPRES_SOURCE_DIR) + "/models/upres-compact-x2";
  const std::vector<float> in = read_f32(stem + ".parity-in.f32"), want = read_f32(stem + ".parity-out.f32");
  const int w = 23, h = 17;
  ASSERT_EQ(in.size(), size_t(3 * w * h));
  ASSERT_EQ(want.size(), size_t(3 * 4 * w * h));
  Image input(w, h, 3);
  std::copy(in.begin(), in.end(), input.data.begin());
  for (const char* backend : {"cpu", "reference"}) {
    UpscaleOptions o;
    o.backend = backend;
    const Image got = Upscaler(model, o).upscale(input);
    ASSERT_EQ(got.width, 2 * w);
    ASSERT_EQ(got.height, 2 * h);
    double worst = 0;
    for (size_t i = 0; i < want.size(); ++i)
      worst = std::max(worst, double(std::fabs(got.data[i] - want[i])));
    EXPECT_LT(worst, 2e-4) << backend;
  }
}

}  // namespace
}  // namespace upres::test
