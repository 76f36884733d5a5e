// int8 inference: the plan's decisions, the cpu backend's int8 convolutions against the
// reference emulation on random inputs with odd sizes, calibration tables, and zoo models.
#include <algorithm>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "model/int8_plan.hpp"
#include "ops/op.hpp"
#include "test_support.hpp"
#include "upres/int8.hpp"
#include "upres/quality.hpp"

namespace upres::test {
namespace {

// A convolution with a bias, and weights large enough that values grow through a chain.
Node int8_conv(int out_c, int in_c, int k, int pad, Activation act, uint32_t seed, int stride = 1,
               int dilation = 1) {
  Node n = conv_node(out_c, in_c, k, stride, pad, dilation, true, act, seed);
  n.name = fmt::format("conv{}", seed);
  for (float& w : n.weights[0].values) w *= 1.5f;
  for (float& b : n.weights[1].values) b *= 0.3f;
  return n;
}

// A chain of convolutions on blobs b0 (the input), b1, ...; node i reads b(i) and writes b(i+1).
Graph chain(std::vector<Node> convs) {
  Graph g;
  g.source = "test";
  g.input_blob = g.add_blob("b0");
  int blob = g.input_blob;
  for (size_t i = 0; i < convs.size(); ++i) {
    convs[i].inputs = {blob};
    blob = g.add_blob(fmt::format("b{}", i + 1));
    convs[i].outputs = {blob};
    g.nodes.push_back(std::move(convs[i]));
  }
  g.output_blob = blob;
  g.validate();
  return g;
}

// A table for every blob of `g`: each threshold `fraction` of the largest |value| the float
// graph produces there on `x`, so some values are clamped.
std::shared_ptr<Int8Calibration> table_for(const Graph& g, const Tensor& x, float fraction = 0.8f) {
  auto table = std::make_shared<Int8Calibration>();
  Tensor out(g.infer_shapes(x.shape)[size_t(g.output_blob)]);
  run_reference_observed(g, x.view(), out.view(), [&](int blob, const TensorView& v) {
    float largest = 0;
    std::vector<float>& channels = table->channel_thresholds[g.blob_names[size_t(blob)]];
    for (int c = 0; c < v.shape.c; ++c) {
      float channel_largest = 0;
      for (int64_t i = 0; i < int64_t(v.shape.h) * v.shape.w; ++i)
        channel_largest = std::max(channel_largest, std::abs(v.channel(c)[i]));
      channels.push_back(std::max(1e-3f, channel_largest * fraction));
      largest = std::max(largest, channel_largest);
    }
    table->thresholds[g.blob_names[size_t(blob)]] = std::max(1e-3f, largest * fraction);
  });
  return table;
}

// The cpu backend's int8 result against the reference emulation of the same plan. Values are
// compared in steps of the output's scale: an int8 step is the resolution of the arithmetic, and
// a float's last-bit difference may move a rounding by one step.
// Deep chains may let a rare one-step rounding difference (oneDNN's swish and sigmoid use their
// own exp) spread to the values downstream of it, a patch a few pixels wide: `spread` is the
// share of values allowed to differ there. A systematic error would touch most of them.
void expect_int8_parity(const Graph& g, Shape input, uint32_t seed, double spread = 0,
                        double equalization = 0) {
  Tensor x = random_tensor(input, seed);
  auto table = table_for(g, x);
  table->equalization = equalization;
  auto ref = make_reference_backend(table);
  auto cpu = make_cpu_backend(2, table);
  auto prepared = cpu->prepare(g, input);
  ASSERT_GT(plan_int8(*prepared, *table).int8_convs, 0) << "nothing runs in int8";
  Tensor expected = run_graph(*ref, *prepared, x);
  Tensor got = run_graph(*cpu, *prepared, x);
  ASSERT_EQ(got.shape, expected.shape);
  // The resolution of the last int8 convolution: its output step, or for a float output its
  // input step times its largest weight step.
  const Int8Plan plan = plan_int8(*prepared, *table);
  auto last =
      std::find_if(plan.convs.rbegin(), plan.convs.rend(), [](const auto& c) { return c.has_value(); });
  float resolution = (*last)->dst_step;
  if (resolution == 0)
    for (float w : (*last)->weight_steps) resolution = std::max(resolution, (*last)->src_step * w);
  double worst = 0, total = 0;
  int64_t off = 0, far = 0;
  for (size_t i = 0; i < got.values.size(); ++i) {
    const double steps = std::abs(double(got.values[i]) - expected.values[i]) / resolution;
    worst = std::max(worst, steps);
    total += steps;
    off += steps > 0.01;
    far += steps > 1.01;
  }
  const std::string counts =
      fmt::format("input {}: {} of {} values differ, {} by more than a step, mean {:.4f}", input.str(), off,
                  got.values.size(), far, total / double(got.values.size()));
  if (spread == 0)
    EXPECT_LE(worst, 1.01) << counts;
  else
    EXPECT_LE(double(off) / double(got.values.size()), spread) << counts;
}

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::none: return "none";
    case Activation::relu: return "relu";
    case Activation::leaky_relu: return "leaky_relu";
    case Activation::clip: return "clip";
    case Activation::sigmoid: return "sigmoid";
    case Activation::prelu: return "prelu";
    case Activation::swish: return "swish";
    case Activation::tanh: return "tanh";
    case Activation::mish: return "mish";
    case Activation::gelu: return "gelu";
  }
  return "?";
}

struct ConvCase {
  Activation act;
  int in_c, out_c, k, pad, stride, dilation;
  Shape input;
};
void PrintTo(const ConvCase& c, std::ostream* os) {
  *os << activation_name(c.act) << " " << c.in_c << "->" << c.out_c << " k" << c.k << " on " << c.input.str();
}

class Int8ConvParity : public ::testing::TestWithParam<ConvCase> {};

TEST_P(Int8ConvParity, CpuMatchesReferenceEmulation) {
  const ConvCase c = GetParam();
  expect_int8_parity(chain({int8_conv(c.out_c, c.in_c, c.k, c.pad, c.act, 3, c.stride, c.dilation)}), c.input,
                     11);
}

INSTANTIATE_TEST_SUITE_P(
    Convs, Int8ConvParity,
    ::testing::Values(ConvCase{Activation::none, 19, 21, 3, 1, 1, 1, {19, 13, 17}},
                      ConvCase{Activation::relu, 16, 16, 3, 1, 1, 1, {16, 1, 1}},
                      ConvCase{Activation::leaky_relu, 33, 7, 3, 0, 1, 1, {33, 9, 11}},
                      ConvCase{Activation::prelu, 24, 13, 3, 1, 1, 1, {24, 5, 127}},
                      ConvCase{Activation::swish, 17, 19, 1, 0, 1, 1, {17, 13, 7}},
                      ConvCase{Activation::sigmoid, 20, 5, 3, 1, 2, 1, {20, 15, 9}},
                      ConvCase{Activation::clip, 18, 9, 3, 2, 1, 2, {18, 11, 13}},
                      ConvCase{Activation::gelu, 16, 12, 3, 1, 1, 1, {16, 9, 13}},
                      // The shape of SRVGGNetCompact's body, where oneDNN picks its brgemm kernels.
                      ConvCase{Activation::prelu, 64, 64, 3, 1, 1, 1, {64, 37, 253}},
                      ConvCase{Activation::none, 64, 48, 3, 1, 1, 1, {64, 37, 253}}),
    [](const auto& info) {
      const ConvCase& c = info.param;
      return fmt::format("{}_{}to{}_k{}_s{}_d{}", activation_name(c.act), c.in_c, c.out_c, c.k, c.stride,
                         c.dilation);
    });

// Two convolutions: the first one's output is stored as int8 (its only reader is an int8
// convolution), so its activation runs in int8 arithmetic.
class Int8ChainParity : public ::testing::TestWithParam<Activation> {};

TEST_P(Int8ChainParity, CpuMatchesReferenceEmulation) {
  Graph g = chain({int8_conv(21, 19, 3, 1, GetParam(), 5), int8_conv(17, 21, 3, 1, Activation::none, 9)});
  Tensor x = random_tensor({19, 23, 29}, 3);
  const Int8Plan plan = plan_int8(g, *table_for(g, x));
  EXPECT_GT(plan.stored_step[1], 0.f) << "b1 should be stored as int8";
  expect_int8_parity(g, {19, 23, 29}, 3);
}

// The same with channel equalisation: the first convolution carries narrow channels at a larger
// scale, the second divides it out.
TEST_P(Int8ChainParity, EqualisedChannelsMatchTheEmulation) {
  Node first = int8_conv(21, 19, 3, 1, GetParam(), 5);
  for (size_t o = 0; o < 21; ++o)  // channels of very different ranges
    for (size_t k = 0; k < 19 * 9; ++k) first.weights[0].values[o * 19 * 9 + k] *= 1.f / float(1 + o);
  Graph g = chain({first, int8_conv(17, 21, 3, 1, Activation::none, 9)});
  Tensor x = random_tensor({19, 23, 29}, 3);
  auto table = table_for(g, x);
  table->equalization = 1;
  const Int8Plan plan = plan_int8(g, *table);
  if (activation_is_homogeneous(GetParam())) {
    ASSERT_EQ(plan.channel_scales[1].size(), 21u);
    EXPECT_FLOAT_EQ(*std::min_element(plan.channel_scales[1].begin(), plan.channel_scales[1].end()), 1.f);
    EXPECT_GT(plan.channel_scales[1].back(), 4.f) << "the narrowest channel is carried larger";
  } else {
    EXPECT_TRUE(plan.channel_scales[1].empty()) << "swish, sigmoid and clip do not commute with scaling";
  }
  expect_int8_parity(g, {19, 23, 29}, 3, 0, /*equalization=*/1);
}

INSTANTIATE_TEST_SUITE_P(Activations, Int8ChainParity,
                         ::testing::Values(Activation::none, Activation::relu, Activation::leaky_relu,
                                           Activation::prelu, Activation::swish, Activation::sigmoid,
                                           Activation::clip),
                         [](const auto& info) { return std::string(activation_name(info.param)); });

}  // namespace
}  // namespace upres::test

namespace upres::test {
namespace {

// ---- the plan ----

TEST(Int8Plan, NarrowAndUncalibratedConvolutionsStayFloat) {
  Graph g = chain({int8_conv(32, 3, 3, 1, Activation::relu, 1), int8_conv(32, 32, 3, 1, Activation::relu, 2),
                   int8_conv(8, 32, 3, 1, Activation::none, 3)});
  Int8Calibration table;
  table.thresholds = {{"b1", 2.f}, {"b2", 3.f}};  // b0 (the RGB input) is not needed: 3 channels
  Int8Plan plan = plan_int8(g, table);
  EXPECT_FALSE(plan.convs[0]) << "3 input channels";
  ASSERT_TRUE(plan.convs[1]);
  ASSERT_TRUE(plan.convs[2]);
  EXPECT_EQ(plan.int8_convs, 2);
  EXPECT_FLOAT_EQ(plan.convs[1]->src_step, 2.f / 127);
  EXPECT_FLOAT_EQ(plan.stored_step[2], 3.f / 127) << "b2 is read only by an int8 convolution";
  EXPECT_FLOAT_EQ(plan.convs[1]->dst_step, 3.f / 127);
  EXPECT_EQ(plan.stored_step[1], 0.f) << "made by a float convolution";
  EXPECT_EQ(plan.stored_step[3], 0.f) << "the graph output";
  table.thresholds.erase("b2");
  plan = plan_int8(g, table);
  EXPECT_FALSE(plan.convs[2]) << "no threshold for its input";
  EXPECT_EQ(plan.convs[1]->dst_step, 0.f);
}

TEST(Int8Plan, WeightsGetAStepPerOutputChannelAndBiasMovesToAccumulatorUnits) {
  Node n = int8_conv(2, 16, 1, 0, Activation::none, 4);
  for (size_t i = 0; i < 16; ++i) {
    n.weights[0].values[i] = 0.5f * float(i) / 15;       // channel 0: largest 0.5
    n.weights[0].values[16 + i] = -2.f * float(i) / 15;  // channel 1: largest |-2|
  }
  n.weights[1].values = {1.f, -1.f};
  Graph g = chain({n});
  Int8Calibration table;
  table.thresholds = {{"b0", 4.f}};
  const Int8ConvPlan q = *plan_int8(g, table).convs[0];
  EXPECT_FLOAT_EQ(q.weight_steps[0], 0.5f / 127);
  EXPECT_FLOAT_EQ(q.weight_steps[1], 2.f / 127);
  EXPECT_EQ(q.weights[15], 127);
  EXPECT_EQ(q.weights[31], -127);
  EXPECT_EQ(q.weights[1], int8_t(std::nearbyint(0.5f / 15 / (0.5f / 127))));
  EXPECT_FLOAT_EQ(q.bias[0], 1.f / (4.f / 127 * 0.5f / 127));
  EXPECT_FLOAT_EQ(q.bias[1], -1.f / (4.f / 127 * 2.f / 127));
}

TEST(Int8Plan, ResidualsAndSecondReadersKeepBlobsFloat) {
  // b1 feeds conv A as its main input, and convs B and C as a fused residual; C is float (PReLU
  // with a fused residual does not run in int8 at all), so b1 and B's sum b3 stay float, and A
  // quantises a copy of b1.
  Graph g;
  g.source = "test";
  g.input_blob = g.add_blob("in");
  Node head = int8_conv(16, 3, 3, 1, Activation::none, 1);
  head.inputs = {g.input_blob};
  head.outputs = {g.add_blob("b1")};
  Node a = int8_conv(16, 16, 3, 1, Activation::swish, 2);
  a.inputs = {head.outputs[0]};
  a.outputs = {g.add_blob("b2")};
  Node b = int8_conv(16, 16, 3, 1, Activation::none, 3);
  b.inputs = {a.outputs[0], head.outputs[0]};
  b.outputs = {g.add_blob("b3")};
  Node c = int8_conv(16, 16, 3, 1, Activation::prelu, 4);
  c.inputs = {b.outputs[0], head.outputs[0]};
  c.outputs = {g.add_blob("b4")};
  g.nodes = {head, a, b, c};
  g.output_blob = c.outputs[0];
  g.validate();
  Int8Calibration table;
  table.thresholds = {{"b1", 1.f}, {"b2", 1.f}, {"b3", 1.f}};
  Int8Plan plan = plan_int8(g, table);
  EXPECT_TRUE(plan.convs[1] && plan.convs[2]);
  EXPECT_FALSE(plan.convs[3]) << "PReLU and a residual";
  EXPECT_EQ(plan.stored_step[1], 0.f) << "read as a residual";
  EXPECT_GT(plan.stored_step[2], 0.f);
  EXPECT_EQ(plan.stored_step[3], 0.f) << "read by a float convolution";
  expect_int8_parity(g, {3, 17, 19}, 8);
}

TEST(Int8Parity, ResidualBlocksOnTheCpuMatchTheEmulation) {
  // The compact model's block: conv-SiLU-conv plus the block input, twice.
  Graph g;
  g.source = "test";
  g.input_blob = g.add_blob("in");
  Node head = int8_conv(24, 3, 3, 1, Activation::none, 1);
  head.inputs = {g.input_blob};
  head.outputs = {g.add_blob("f0")};
  g.nodes.push_back(head);
  int trunk = head.outputs[0];
  for (int block = 0; block < 2; ++block) {
    Node a = int8_conv(24, 24, 3, 1, Activation::swish, 10 + block);
    a.inputs = {trunk};
    a.outputs = {g.add_blob(fmt::format("s{}", block))};
    Node b = int8_conv(24, 24, 3, 1, Activation::none, 20 + block);
    b.inputs = {a.outputs[0], trunk};
    b.outputs = {g.add_blob(fmt::format("f{}", block + 1))};
    trunk = b.outputs[0];
    g.nodes.push_back(a);
    g.nodes.push_back(b);
  }
  Node tail = int8_conv(12, 24, 3, 1, Activation::none, 30);
  tail.inputs = {trunk};
  tail.outputs = {g.add_blob("out")};
  g.nodes.push_back(tail);
  g.output_blob = tail.outputs[0];
  g.validate();
  // The residual stream stays int8 from block to block: f1 and f2 are stored as int8, and each
  // sum adds its residual in the residual's own steps: block 1 reads f1 as stored, block 0 rounds
  // the float f0 (made by the 3-channel head) to its calibrated steps on the way in.
  const Shape input{3, 31, 37};
  const auto table = table_for(g, random_tensor(input, 5));
  const Int8Plan plan = plan_int8(g, *table);
  auto step_of = [&](const std::string& name) {
    return plan.stored_step[size_t(std::find(g.blob_names.begin(), g.blob_names.end(), name) -
                                   g.blob_names.begin())];
  };
  EXPECT_EQ(step_of("f0"), 0.f) << "made by a float convolution";
  for (const char* name : {"f1", "f2", "s0", "s1"}) EXPECT_GT(step_of(name), 0.f) << name;
  EXPECT_FLOAT_EQ(plan.convs[2]->residual_step, table->thresholds.at("f0") / 127.f);
  EXPECT_FLOAT_EQ(plan.convs[4]->residual_step, step_of("f1"));
  // Without a threshold for f0, block 0 cannot add it in int8 steps and its sum stays float.
  Int8Calibration without_f0 = *table;
  without_f0.thresholds.erase("f0");
  const Int8Plan partial = plan_int8(g, without_f0);
  EXPECT_EQ(partial.convs[2]->dst_step, 0.f);
  EXPECT_EQ(partial.convs[2]->residual_step, 0.f);
  EXPECT_EQ(partial.stored_step[size_t(g.nodes[2].outputs[0])], 0.f);
  expect_int8_parity(g, input, 5, /*spread=*/0.05);
}

TEST(Int8Parity, ASumThatCancelsItsResidualKeepsTheResidualsRange) {
  // Block B adds f0 to a convolution of f0 that cancels it, so its sum is far narrower
  // than f0. The sum is stored as int8 (C reads it), and f0 must be added in its own steps:
  // rounded to the sum's, it would be clamped to the sum's range first.
  Graph g;
  g.source = "test";
  g.input_blob = g.add_blob("in");
  Node head = int8_conv(16, 3, 3, 1, Activation::none, 1);
  for (float& w : head.weights[0].values) w *= 4.f;
  head.inputs = {g.input_blob};
  head.outputs = {g.add_blob("f0")};
  Node b = int8_conv(16, 16, 3, 1, Activation::none, 2);
  // -identity (exact in int8 steps), so the sum is the bias alone.
  std::fill(b.weights[0].values.begin(), b.weights[0].values.end(), 0.f);
  for (size_t o = 0; o < 16; ++o) b.weights[0].values[(o * 16 + o) * 9 + 4] = -1.f;
  b.inputs = {head.outputs[0], head.outputs[0]};
  b.outputs = {g.add_blob("sum")};
  Node c = int8_conv(4, 16, 3, 1, Activation::none, 3);
  c.inputs = {b.outputs[0]};
  c.outputs = {g.add_blob("out")};
  g.nodes = {head, b, c};
  g.output_blob = c.outputs[0];
  g.validate();
  const Shape input{3, 19, 23};
  const Tensor x = random_tensor(input, 4);
  const auto table = table_for(g, x, 1.f);
  ASSERT_LT(table->thresholds.at("sum") * 5, table->thresholds.at("f0")) << "the sum should be narrow";
  const Int8Plan plan = plan_int8(g, *table);
  ASSERT_GT(plan.stored_step[size_t(b.outputs[0])], 0.f);
  auto reference = make_reference_backend();
  const Tensor expected = run_graph(*reference, g, x);
  const Tensor emulated = run_graph(*make_reference_backend(table), g, x);
  float range = 0, worst = 0;
  for (size_t i = 0; i < expected.values.size(); ++i) {
    range = std::max(range, std::abs(expected.values[i]));
    worst = std::max(worst, std::abs(emulated.values[i] - expected.values[i]));
  }
  EXPECT_LT(worst, 0.05f * range) << "int8 against float32";
  expect_int8_parity(g, input, 4);
}

// ---- tables ----

TEST(Int8Tables, JsonRoundTripsAndGarbageIsNamed) {
  Int8Calibration t;
  t.model = "m";
  t.weights_sha256 = std::string(64, 'a');
  t.measured_on = "two pictures";
  t.pictures = 2;
  t.thresholds = {{"x", 1.5f}, {"y", 0.25f}};
  Int8Calibration back = calibration_from_json(calibration_to_json(t), "t.json");
  EXPECT_EQ(back.model, "m");
  EXPECT_EQ(back.weights_sha256, t.weights_sha256);
  EXPECT_EQ(back.pictures, 2);
  EXPECT_EQ(back.thresholds, t.thresholds);
  for (std::string bad : {"", "[]", "{\"format\": \"other\"}",
                          R"({"format":"upres-int8-calibration","version":1,"model":"m","weights_sha256":"x",
                              "thresholds":{"x":-1}})",
                          R"({"format":"upres-int8-calibration","version":9})"}) {
    try {
      calibration_from_json(bad, "bad.json");
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
      EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(calibration_path_for("dir/model.param"), "dir/model.int8.json");
}

TEST(Int8Tables, ShippedTablesNameZooModelsAndTheirWeights) {
  // A retrained model whose table was not made again would silently lose int8: caught here.
  int shipped = 0;
  for (const ModelInfo& m : model_zoo()) {
    if (!model_installed(m)) continue;
    auto model = Model::load(m.name);
    if (!model->int8_calibration()) continue;
    ++shipped;
    EXPECT_EQ(model->int8_calibration()->weights_sha256, m.sha256.back()) << m.name;
    EXPECT_FALSE(model->int8_calibration()->thresholds.empty()) << m.name;
  }
  EXPECT_GE(shipped, 1) << "upres-compact-x2 (in the repository) ships a table";
  ASSERT_TRUE(Model::load("upres-compact-x2")->int8_calibration());
}

// The CLI loads calibration_picture_count(N) pictures so that calibrate_int8 samples exactly N
// and tunes on the rest, which calibration_tuning_pictures names.
// Of the pictures calibration gets, the judging share (which decides the layers kept in float32)
// is none that sampling or tuning used.
TEST(Int8Tables, PictureCountsLeaveTheRequestedSampleATuningAndAJudgingShare) {
  for (size_t sampled : {1, 2, 3, 4, 8, 9, 24, 32, 64, 100}) {
    SCOPED_TRACE(sampled);
    const size_t count = calibration_picture_count(sampled);
    std::vector<Image> pictures;
    for (size_t i = 0; i < count; ++i) {
      pictures.emplace_back(4, 4, 3);
      pictures.back().data[0] = float(i);
    }
    const std::vector<Image> tuning = calibration_tuning_pictures(pictures),
                             judging = calibration_judging_pictures(pictures);
    if (count < 4) {
      EXPECT_EQ(count, sampled);
      EXPECT_EQ(tuning.size(), count) << "too few to hold any back: all are tuned on";
      EXPECT_TRUE(judging.empty());
      continue;
    }
    EXPECT_EQ(count - tuning.size() - judging.size(), sampled);
    EXPECT_GE(tuning.size(), 1u);
    EXPECT_LE(tuning.size(), 8u);
    if (count >= 8) {
      EXPECT_GE(judging.size(), 2u);
    }
    EXPECT_LE(judging.size(), 16u);
    std::set<float> used;
    for (size_t i = 0; i < sampled; ++i) used.insert(pictures[i].data[0]);
    for (const Image& t : tuning) EXPECT_TRUE(used.insert(t.data[0]).second) << "tuned on a sampled picture";
    for (const Image& j : judging)
      EXPECT_FALSE(used.count(j.data[0])) << "judged on a picture calibration used";
  }
}

// The loss budget decides which layers stay float32: a generous one keeps every layer int8, a
// tight one keeps the costliest in float32 until the loss on the judging pictures is within it,
// and the table says which and what the loss came to.
TEST(Int8Tables, CalibrationKeepsTheCostliestLayersFloatWithinTheLossBudget) {
  auto model = Model::load("upres-compact-x2");
  std::vector<Image> pictures;  // 12: 6 sampled, 3 tuned on, 3 judging
  for (uint32_t seed = 1; seed <= 12; ++seed) pictures.push_back(make_test_pattern(96, 80, seed));
  ASSERT_EQ(calibration_judging_pictures(pictures).size(), 3u);
  CalibrationOptions generous;
  generous.crop = 64;
  generous.max_loss_db = 100;
  const Int8Calibration all_int8 = calibrate_int8(*model, pictures, generous);
  EXPECT_TRUE(all_int8.float_layers.empty());
  EXPECT_GE(all_int8.loss_db, 0.0) << "judged";
  // The judging pictures at a budget a third of what int8 everywhere loses on them.
  const std::vector<Image> judges = calibration_judging_pictures(pictures);
  Int8Calibration everywhere = all_int8;
  keep_float_within_budget(*model, everywhere, judges, generous);
  ASSERT_GT(everywhere.loss_db, 0.0) << "int8 loses something on these pictures";
  CalibrationOptions tight = generous;
  tight.max_loss_db = everywhere.loss_db / 3;
  Int8Calibration kept = all_int8;
  keep_float_within_budget(*model, kept, judges, tight);
  EXPECT_LE(kept.loss_db, tight.max_loss_db);
  ASSERT_FALSE(kept.float_layers.empty());
  for (const std::string& layer : kept.float_layers) EXPECT_EQ(kept.thresholds.count(layer), 0u) << layer;
  EXPECT_EQ(kept.thresholds.size() + kept.float_layers.size(), all_int8.thresholds.size());
  const Int8Calibration back = calibration_from_json(calibration_to_json(kept), "kept");
  EXPECT_EQ(back.float_layers, kept.float_layers);
  EXPECT_DOUBLE_EQ(back.loss_db, kept.loss_db);
}

TEST(Int8Tables, ModelsWithoutATableSayHowToMakeOne) {
  char tmpl[] = "/tmp/upres-int8-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  auto repo = Model::load("upres-compact-x2");
  const std::string param = dir + "/mine.param", bin = dir + "/mine.bin";
  copy_model_with_other_weights(std::string(UPRES_SOURCE_DIR) + "/models/upres-compact-x2.param",
                                repo->weights_path(), param, bin);
  UpscaleOptions o;
  o.precision = Precision::int8;
  try {
    Upscaler(Model::load(param), o);
    ADD_FAILURE() << "int8 without a table";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unsupported);
    EXPECT_NE(std::string(e.what()).find("upres models calibrate"), std::string::npos) << e.what();
  }
  // A table beside the model is used; one made for other weights is not, and the message says so.
  std::vector<Image> pictures{make_test_pattern(40, 30, 1), make_test_pattern(33, 41, 2)};
  CalibrationOptions co;
  co.crop = 32;
  Int8Calibration table = calibrate_int8(*Model::load(param), pictures, co);
  EXPECT_EQ(table.pictures, 2);
  // Every activation an int8 convolution reads (two pictures are too few to judge a loss on, so
  // none is kept float32); the shipped table keeps some float32 by choice.
  const auto& shipped = *repo->int8_calibration();
  EXPECT_EQ(table.thresholds.size(), shipped.thresholds.size() + shipped.float_layers.size());
  EXPECT_EQ(table.thresholds.count("f6"), 1u);
  EXPECT_TRUE(table.float_layers.empty());
  EXPECT_LT(table.loss_db, 0) << "not judged";
  write_calibration(table, calibration_path_for(param));
  EXPECT_TRUE(Model::load(param)->int8_calibration());
  Upscaler(Model::load(param), o);
  table.weights_sha256 = std::string(64, '0');
  write_calibration(table, calibration_path_for(param));
  auto stale = Model::load(param);
  EXPECT_FALSE(stale->int8_calibration());
  EXPECT_NE(stale->int8_calibration_note().find("other weights"), std::string::npos)
      << stale->int8_calibration_note();
  std::filesystem::remove_all(dir);
}

TEST(Int8Tables, AutomaticPrecisionPicksInt8OnlyWhereItWorksAndPays) {
  UpscaleOptions o;
  o.precision = Precision::automatic;
  const Precision fast = make_cpu_backend(2)->device().fast_int8 ? Precision::int8 : Precision::f32;
  EXPECT_EQ(Upscaler(Model::load("upres-compact-x2"), o).precision(), fast) << "a table ships with it";
  o.backend = "reference";
  EXPECT_EQ(Upscaler(Model::load("upres-compact-x2"), o).precision(), Precision::f32) << "no gain there";
  o.backend = "cpu";
  char tmpl[] = "/tmp/upres-auto-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  // The same files elsewhere are recognised by their weights, and get the table shipped for them.
  std::filesystem::copy_file(std::string(UPRES_SOURCE_DIR) + "/models/upres-compact-x2.param",
                             dir + "/zoo.param");
  std::filesystem::copy_file(std::string(UPRES_SOURCE_DIR) + "/models/upres-compact-x2.bin",
                             dir + "/zoo.bin");
  EXPECT_EQ(Upscaler(Model::load(dir + "/zoo.param"), o).precision(), fast) << "a zoo model's weights";
  copy_model_with_other_weights(std::string(UPRES_SOURCE_DIR) + "/models/upres-compact-x2.param",
                                std::string(UPRES_SOURCE_DIR) + "/models/upres-compact-x2.bin",
                                dir + "/m.param", dir + "/m.bin");
  EXPECT_EQ(Upscaler(Model::load(dir + "/m.param"), o).precision(), Precision::f32) << "no table";
  EXPECT_EQ(Upscaler(Model::load(dir + "/m.param"), UpscaleOptions{}).precision(), Precision::f32)
      << "the library's default is exact";
  std::filesystem::remove_all(dir);
  EXPECT_EQ(precision_from_name("auto"), Precision::automatic);
  EXPECT_STREQ(precision_name(Precision::automatic), "auto");
}

// The default (automatic precision: int8 on this cpu) loses at most 0.15 dB Y-PSNR against
// float32 with our model on photographs. The table keeps the last convolution, whose output is
// the detail added to the enlarged picture, in float32: in int8 its rounding alone cost 0.22 dB
// on bsd68 (docs/BENCHMARKS.md).
TEST(Int8Tables, TheDefaultKeepsOurModelWithinAFifthOfADecibelOfFloat) {
  const auto table = Model::load("upres-compact-x2")->int8_calibration();
  ASSERT_TRUE(table);
  EXPECT_EQ(table->thresholds.count("f6"), 0u) << "the tail convolution's input stays float32";
  const std::string photos = shared_media_dir() + "/images/bsd68";
  if (!std::filesystem::exists(photos))
    GTEST_SKIP() << photos << " is absent (../shared is not beside the repo)";
  UpscaleOptions o;
  o.precision = Precision::f32;
  const double f32 = evaluate_folder(photos, "upres-compact-x2", 2, o).mean_psnr;
  o.precision = Precision::automatic;
  const double automatic = evaluate_folder(photos, "upres-compact-x2", 2, o).mean_psnr;
  EXPECT_LE(f32 - automatic, 0.15) << "f32 " << f32 << " dB, auto " << automatic << " dB";
}

// ---- zoo models with shipped tables ----

std::vector<std::string> calibrated_zoo_names() {
  std::vector<std::string> names;
  for (const ModelInfo& m : model_zoo())
    if (model_installed(m) && Model::load(m.name)->int8_calibration()) names.push_back(m.name);
  return names;
}

class Int8Zoo : public ::testing::TestWithParam<std::string> {};

// The cpu backend's int8 output against the reference emulation, int8 against float32 (a table
// that clamps the wrong places would show here), and tiles against the full frame.
TEST_P(Int8Zoo, MatchesTheEmulationStaysCloseToFloatAndTilesExactly) {
  auto model = Model::load(GetParam());
  Image input = make_test_pattern(37, 29, 5);
  UpscaleOptions int8;
  int8.precision = Precision::int8;
  UpscaleOptions reference = int8;
  reference.backend = "reference";
  Image got = Upscaler(model, int8).upscale(input);
  const Image emulated = Upscaler(model, reference).upscale(input);
  float worst = 0;
  int off = 0;
  for (size_t i = 0; i < got.data.size(); ++i) {
    worst = std::max(worst, std::abs(got.data[i] - emulated.data[i]));
    off += std::abs(got.data[i] - emulated.data[i]) * 255 > 0.5f;
  }
  const double vs_float = psnr_8bit(got, Upscaler(model, UpscaleOptions{}).upscale(input));
  EXPECT_GE(vs_float, 30.0) << "int8 vs float32 (a broken table lands far below)";
  // The two differ only where float rounding (oneDNN's f32 scale and swish arithmetic against the
  // emulation's) tips an activation across a rounding boundary; in a deep chain of stored int8
  // activations, or an int8 residual stream, such a flip spreads through the receptive field and
  // on down the stream (upres-compact-x2 with an earlier table: 52.8 dB, at most 5 steps, int8
  // itself 41.3 dB from float32; with the shipped one: 71.0 dB, 12 values apart by under one
  // 8-bit step, int8 itself 40.6 dB). A wrong scale, clamp or
  // layout would land at or below int8's own error, so the gap must stay a good way above it
  // (10 dB) and at 50 dB or more.
  EXPECT_GE(psnr_8bit(got, emulated), std::max(50.0, vs_float + 10.0))
      << "cpu int8 vs its emulation; largest difference " << worst * 255 << " steps, " << off << " of "
      << got.data.size() << " values a step or more apart; int8 vs float32 " << vs_float << " dB";
  UpscaleOptions tiled = int8;
  tiled.tile = 16;
  EXPECT_GE(psnr_8bit(Upscaler(model, tiled).upscale(input), got), 60.0) << "tiled vs full frame";
}

INSTANTIATE_TEST_SUITE_P(Shipped, Int8Zoo, ::testing::ValuesIn(calibrated_zoo_names()),
                         [](const auto& info) { return test_name_from(info.param); });

}  // namespace
}  // namespace upres::test
