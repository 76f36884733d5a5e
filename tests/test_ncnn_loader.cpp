// The ncnn loader: a good file loads; every kind of broken file gives an Error that names the
// file, the line or layer, and the problem.
#include <cstring>

#include "model/ncnn_loader.hpp"
#include "test_support.hpp"
#include "upres/error.hpp"

namespace upres::test {
namespace {

// A small valid model: conv 3->4 (float16 weights) + PReLU, conv 4->12, PixelShuffle 2.
const char* kParam =
    "7767517\n"
    "5 5\n"
    "Input            in     0 1 data\n"
    "Convolution      c1     1 1 data a 0=4 1=3 4=1 5=1 6=108\n"
    "PReLU            p1     1 1 a b 0=4\n"
    "Convolution      c2     1 1 b c 0=12 1=3 4=1 5=1 6=432 9=2 -23310=1,0.1\n"
    "PixelShuffle     ps     1 1 c out 0=2\n";

void put_u32(std::vector<uint8_t>& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(uint8_t(v >> (8 * i)));
}
void put_f32(std::vector<uint8_t>& b, float f) {
  uint32_t v;
  std::memcpy(&v, &f, 4);
  put_u32(b, v);
}

std::vector<uint8_t> make_bin() {
  std::vector<uint8_t> b;
  put_u32(b, 0x01306B47);  // float16 weights follow
  for (int i = 0; i < 108; ++i) {
    b.push_back(0x00);
    b.push_back(0x2c);
  }                                               // 0.0625 in float16
  for (int i = 0; i < 4; ++i) put_f32(b, 0.1f);   // bias
  for (int i = 0; i < 4; ++i) put_f32(b, 0.25f);  // PReLU slopes
  put_u32(b, 0);                                  // float32 weights follow
  for (int i = 0; i < 432; ++i) put_f32(b, 0.01f * float(i % 7));
  for (int i = 0; i < 12; ++i) put_f32(b, 0.f);
  return b;
}

std::string load_error(const std::string& param, const std::vector<uint8_t>& bin) {
  try {
    load_ncnn_from_memory(param, bin, "m.param", "m.bin");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_model);
    return e.what();
  }
  ADD_FAILURE() << "expected an error";
  return "";
}

TEST(NcnnLoader, LoadsAValidModelWithFloat16AndFloat32Weights) {
  auto g = load_ncnn_from_memory(kParam, make_bin(), "m.param", "m.bin");
  ASSERT_EQ(g->nodes.size(), 4u);
  EXPECT_EQ(g->nodes[0].type, OpType::convolution);
  EXPECT_FLOAT_EQ(g->nodes[0].weights[0].values[0], 0.0625f);
  EXPECT_FLOAT_EQ(g->nodes[1].weights[0].values[3], 0.25f);
  EXPECT_EQ(g->nodes[2].p<ConvParams>().activation.type, Activation::leaky_relu);
  EXPECT_FLOAT_EQ(g->nodes[2].p<ConvParams>().activation.alpha, 0.1f);
  auto shapes = g->infer_shapes({3, 5, 7});
  EXPECT_EQ(shapes[size_t(g->output_blob)], (Shape{3, 10, 14}));
}

TEST(NcnnLoader, TruncatedBinNamesLayerAndFix) {
  auto bin = make_bin();
  for (size_t cut : {size_t(0), size_t(3), size_t(100), bin.size() - 1}) {
    std::string msg = load_error(kParam, std::vector<uint8_t>(bin.begin(), bin.begin() + long(cut)));
    EXPECT_NE(msg.find("m.bin"), std::string::npos) << msg;
    EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  }
}

TEST(NcnnLoader, ExtraBytesMeanMismatchedFiles) {
  auto bin = make_bin();
  bin.push_back(0);
  bin.push_back(0);
  EXPECT_NE(load_error(kParam, bin).find("belong together"), std::string::npos);
}

TEST(NcnnLoader, BadParamTextNamesLine) {
  EXPECT_NE(load_error("hello\n", {}).find("7767517"), std::string::npos);
  EXPECT_NE(load_error("", {}).find("m.param"), std::string::npos);
  EXPECT_NE(load_error("7767517\n2 2\nInput in 0 1 data\n", {}).find("ends after 1 of 2 layers"),
            std::string::npos);
  EXPECT_NE(load_error("7767517\nx y\n", {}).find("m.param:2"), std::string::npos);
  std::string unknown = "7767517\n2 2\nInput in 0 1 data\nFancyOp f 1 1 data out\n";
  std::string msg = load_error(unknown, {});
  EXPECT_NE(msg.find("m.param:4"), std::string::npos) << msg;
  EXPECT_NE(msg.find("FancyOp"), std::string::npos) << msg;
  std::string missing_blob = "7767517\n2 2\nInput in 0 1 data\nReLU r 1 1 nothing out\n";
  EXPECT_NE(load_error(missing_blob, {}).find("nothing"), std::string::npos);
  std::string bad_array = "7767517\n2 2\nInput in 0 1 data\nEltwise e 1 1 data out 0=1 -23301=3,1.0\n";
  EXPECT_NE(load_error(bad_array, {}).find("says 3 items"), std::string::npos);
  std::string bad_value = "7767517\n2 2\nInput in 0 1 data\nPixelShuffle p 1 1 data out 0=abc\n";
  EXPECT_NE(load_error(bad_value, {}).find("not a number"), std::string::npos);
  std::string twice = "7767517\n3 2\nInput in 0 1 data\nReLU a 1 1 data x\nReLU b 1 1 x x\n";
  EXPECT_NE(load_error(twice, {}).find("produced twice"), std::string::npos);
  std::string counts = "7767517\n2 2\nInput in 0 1 data\nReLU a 9 1 data x\n";
  EXPECT_NE(load_error(counts, {}).find("input/output counts"), std::string::npos);
}

TEST(NcnnLoader, WeightSizeThatDoesNotFitTheInputFailsAtShapeInference) {
  auto g = load_ncnn_from_memory(kParam, make_bin(), "m.param", "m.bin");
  try {
    g->infer_shapes({5, 8, 8});  // 5 channels in, weights made for 3
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'c1'"), std::string::npos) << e.what();
  }
}

TEST(NcnnLoader, NonFiniteWeightsAreRejected) {
  auto bin = make_bin();
  bin[5] = 0x7c;  // float16 infinity
  bin[4] = 0x00;
  EXPECT_NE(load_error(kParam, bin).find("finite"), std::string::npos);
}

TEST(NcnnLoader, MissingFilesAreNotFound) {
  try {
    load_ncnn("/nonexistent/m.param", "/nonexistent/m.bin");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::not_found);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/m.param"), std::string::npos);
  }
}

TEST(NcnnLoader, RandomCorruptionNeverCrashes) {
  // A miniature of the fuzz target (fuzz/): flip bytes of a valid pair; any outcome but a crash
  // or a non-upres exception is fine.
  const std::string param = kParam;
  const auto bin = make_bin();
  std::mt19937 rng(5);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string p = param;
    std::vector<uint8_t> b = bin;
    for (int k = 0; k < 3; ++k) {
      if (rng() % 2)
        p[rng() % p.size()] = char(rng() % 128);
      else
        b[rng() % b.size()] = uint8_t(rng());
    }
    try {
      auto g = load_ncnn_from_memory(p, b, "m.param", "m.bin");
      g->infer_shapes({3, 6, 5});
    } catch (const Error&) {
    }
  }
}

}  // namespace
}  // namespace upres::test
