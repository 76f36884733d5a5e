// Every op: known answers for the reference kernels, then each fast backend (cpu; vulkan in f32
// and f16 where a Vulkan device exists, lavapipe in the tests) against the reference on random
// inputs with odd sizes.
#include <algorithm>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "model/passes.hpp"
#include "ops/op.hpp"
#include "test_support.hpp"

namespace upres::test {
namespace {

// A backend at a precision, and how far from the reference its results may be (relative to
// max(1, |reference|)). f32 kernels differ only in summation order. f16 storage rounds each layer's
// input and output to 11 significant bits (2^-12 relative at most each); a convolution sums up to
// 576 such products with weights of 1/sqrt(fan-in) scale, which keeps the total within a few 1e-3.
// `conv`: the Vulkan convolution kernel every layer it can run takes (UPRES_VULKAN_CONV), so the
// kernels made for GPUs are tested on lavapipe too, where the default picks the direct one. The
// coopmat kernel needs tensor cores; its emulated twin runs the same indexing with plain
// arithmetic. It rounds the weights to float16 too, which stays within f16 storage's tolerance.
struct Target {
  const char* backend;
  Precision precision;
  double tolerance;
  const char* conv = nullptr;
};
const Target kTargets[] = {
    {"cpu", Precision::f32, 1e-4},
    {"vulkan", Precision::f32, 1e-4},
    {"vulkan", Precision::f16, 1e-2},
    {"vulkan", Precision::f32, 1e-4, "tiled"},
    {"vulkan", Precision::f16, 1e-2, "tiled"},
    {"vulkan", Precision::f16, 1e-2, "coopmat_emulated"},
};
// Sets UPRES_VULKAN_CONV while it lives (the Vulkan backend reads it when made).
struct ConvKernelChoice {
  explicit ConvKernelChoice(const char* kernel) {
    if (const char* was = std::getenv("UPRES_VULKAN_CONV")) before = was;
    if (kernel) setenv("UPRES_VULKAN_CONV", kernel, 1);
  }
  ~ConvKernelChoice() {
    if (before)
      setenv("UPRES_VULKAN_CONV", before->c_str(), 1);
    else
      unsetenv("UPRES_VULKAN_CONV");
  }
  std::optional<std::string> before;
};
std::unique_ptr<Backend> make_target(const Target& t) {
  if (!backend_available(t.backend)) return nullptr;
  BackendConfig config;
  config.threads = 2;
  config.precision = t.precision;
  ConvKernelChoice choice(t.conv);
  return make_backend(t.backend, config);
}
std::string target_name(const Target& t) {
  return t.conv ? fmt::format("{}_{}_{}", t.backend, t.conv, precision_name(t.precision))
                : fmt::format("{}_{}", t.backend, precision_name(t.precision));
}
void PrintTo(const Target& t, std::ostream* os) {
  *os << target_name(t);
}

// Runs each case on one target; skips when that backend is not built or has no device here.
class Parity : public ::testing::TestWithParam<Target> {
 protected:
  void SetUp() override { backend = make_target(GetParam()); }
  void TearDown() override { expect_no_validation_messages(); }

  void expect_matches_reference(const Graph& g, Shape input, uint32_t seed) {
    if (!backend) GTEST_SKIP() << GetParam().backend << " has no device here";
    Tensor x = random_tensor(input, seed);
    Tensor expected = run_graph(*make_reference_backend(), g, x);
    auto prepared = backend->prepare(g, input);
    Tensor got = run_graph(*backend, *prepared, x);
    ASSERT_EQ(got.shape, expected.shape);
    EXPECT_LE(max_relative_error(got, expected), GetParam().tolerance)
        << "input " << input.str() << " on " << target_name(GetParam());
  }

  std::unique_ptr<Backend> backend;
};

// ---- reference kernels: known answers ----

TEST(ReferenceOps, OneByOneIdentityConvolutionCopiesInputPlusBias) {
  Node n = conv_node(3, 3, 1, 1, 0, 1, true, Activation::none, 1);
  n.weights[0].values = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  n.weights[1].values = {0.5f, 0, -1};
  Tensor x = random_tensor({3, 5, 7}, 2);
  Tensor y({3, 5, 7});
  op_def(OpType::convolution).run_reference(n, {x.view()}, {y.view()});
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 35; ++i)
      EXPECT_FLOAT_EQ(y.values[size_t(c * 35 + i)],
                      x.values[size_t(c * 35 + i)] + n.weights[1].values[size_t(c)]);
}

TEST(ReferenceOps, PaddedThreeByThreeBoxFilterCountsNeighbours) {
  Node n = conv_node(1, 1, 3, 1, 1, 1, false, Activation::none, 1);
  std::fill(n.weights[0].values.begin(), n.weights[0].values.end(), 1.f);
  Tensor x({1, 3, 4}, std::vector<float>(12, 1.f));
  Tensor y({1, 3, 4});
  op_def(OpType::convolution).run_reference(n, {x.view()}, {y.view()});
  EXPECT_FLOAT_EQ(y.view().at(0, 0, 0), 4);  // corner
  EXPECT_FLOAT_EQ(y.view().at(0, 0, 1), 6);  // edge
  EXPECT_FLOAT_EQ(y.view().at(0, 1, 1), 9);  // inside
}

TEST(ReferenceOps, StrideTwoDeconvolutionScattersKernelBlocks) {
  Node n = conv_node(1, 1, 2, 2, 0, 1, false, Activation::none, 1, true);
  n.weights[0].values = {1, 2, 3, 4};
  Tensor x({1, 1, 2}, {1, 10});
  auto shapes = op_def(OpType::deconvolution).infer_shapes(n, {x.shape});
  ASSERT_EQ(shapes[0], (Shape{1, 2, 4}));
  Tensor y(shapes[0]);
  op_def(OpType::deconvolution).run_reference(n, {x.view()}, {y.view()});
  EXPECT_EQ(y.values, (std::vector<float>{1, 2, 10, 20, 3, 4, 30, 40}));
}

TEST(ReferenceOps, PixelShuffleUsesPyTorchChannelOrder) {
  Node n;
  n.type = OpType::pixel_shuffle;
  n.params = PixelShuffleParams{2, false};
  Tensor x({4, 1, 1}, {0, 1, 2, 3});
  Tensor y({1, 2, 2});
  op_def(OpType::pixel_shuffle).run_reference(n, {x.view()}, {y.view()});
  EXPECT_EQ(y.values, (std::vector<float>{0, 1, 2, 3}));
}

TEST(ReferenceOps, InterpModesKnownValues) {
  Node n;
  n.type = OpType::interp;
  InterpParams p;
  p.scale_h = 1;
  p.scale_w = 2;
  Tensor x({1, 1, 2}, {0, 1});
  Tensor y({1, 1, 4});
  p.mode = InterpMode::nearest;
  n.params = p;
  op_def(OpType::interp).run_reference(n, {x.view()}, {y.view()});
  EXPECT_EQ(y.values, (std::vector<float>{0, 0, 1, 1}));
  p.mode = InterpMode::bilinear;
  n.params = p;
  op_def(OpType::interp).run_reference(n, {x.view()}, {y.view()});
  EXPECT_EQ(y.values, (std::vector<float>{0, 0.25f, 0.75f, 1}));
  p.mode = InterpMode::bicubic;
  n.params = p;
  Tensor flat({1, 1, 2}, {0.3f, 0.3f});
  op_def(OpType::interp).run_reference(n, {flat.view()}, {y.view()});
  for (float v : y.values) EXPECT_NEAR(v, 0.3f, 1e-6);
}

TEST(ReferenceOps, GlobalAveragePoolingAndPerChannelScale) {
  Node pool;
  pool.type = OpType::pooling;
  PoolingParams pp;
  pp.kind = PoolKind::average;
  pp.global = true;
  pool.params = pp;
  Tensor x({2, 1, 2}, {1, 3, 10, 20});
  Tensor m({2, 1, 1});
  op_def(OpType::pooling).run_reference(pool, {x.view()}, {m.view()});
  EXPECT_EQ(m.values, (std::vector<float>{2, 15}));
  Node scale;
  scale.type = OpType::scale;
  scale.params = ScaleParams{true, false};
  Tensor y({2, 1, 2});
  op_def(OpType::scale).run_reference(scale, {x.view(), m.view()}, {y.view()});
  EXPECT_EQ(y.values, (std::vector<float>{2, 6, 150, 300}));
}

TEST(ReferenceOps, CropByMarginsAndByReference) {
  Node n;
  n.type = OpType::crop;
  CropParams p;
  p.begin[1] = 1;
  p.begin[2] = 2;
  p.end[1] = -1;
  p.end[2] = -1;
  n.params = p;
  auto shapes = op_def(OpType::crop).infer_shapes(n, {{3, 5, 6}});
  EXPECT_EQ(shapes[0], (Shape{3, 3, 3}));
  shapes = op_def(OpType::crop).infer_shapes(n, {{3, 5, 6}, {3, 2, 2}});
  EXPECT_EQ(shapes[0], (Shape{3, 2, 2}));
  EXPECT_THROW(op_def(OpType::crop).infer_shapes(n, {{3, 5, 6}, {3, 9, 2}}), Error);
}

Node simple(OpType type, OpParams params = NoParams{}) {
  Node n;
  n.type = type;
  n.name = op_def(type).name;
  n.params = std::move(params);
  return n;
}

// ---- fast backends against the reference ----

struct ConvCase {
  int out_c, in_c, k, stride, pad, dilation;
  bool bias;
  Activation act;
  bool deconv;
  Shape input;
};
// How ctest names a case (GoogleTest would print the bytes).
void PrintTo(const ConvCase& c, std::ostream* os) {
  *os << (c.deconv ? "deconv " : "conv ") << c.in_c << "->" << c.out_c << " k" << c.k << " s" << c.stride
      << " p" << c.pad << " d" << c.dilation << " on " << c.input.str();
}

class ConvParity : public ::testing::TestWithParam<std::tuple<Target, ConvCase>> {
 protected:
  void TearDown() override { expect_no_validation_messages(); }
};

TEST_P(ConvParity, MatchesReference) {
  const auto& [target, c] = GetParam();
  auto backend = make_target(target);
  if (!backend) GTEST_SKIP() << target.backend << " has no device here";
  Node n = conv_node(c.out_c, c.in_c, c.k, c.stride, c.pad, c.dilation, c.bias, c.act, 11, c.deconv);
  OpGraph g(n);
  Tensor x = random_tensor(c.input, 3);
  Tensor expected = run_graph(*make_reference_backend(), g.graph, x);
  Tensor got = run_graph(*backend, *backend->prepare(g.graph, c.input), x);
  EXPECT_LE(max_relative_error(got, expected), target.tolerance) << "input " << c.input.str();
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ConvParity,
    ::testing::Combine(
        ::testing::ValuesIn(kTargets),
        ::testing::Values(ConvCase{64, 3, 3, 1, 1, 1, true, Activation::prelu, false, {3, 13, 27}},
                          ConvCase{64, 64, 3, 1, 1, 1, true, Activation::prelu, false, {64, 1, 1}},
                          ConvCase{48, 64, 3, 1, 1, 1, true, Activation::none, false, {64, 13, 7}},
                          ConvCase{32, 3, 3, 1, 0, 1, true, Activation::leaky_relu, false, {3, 17, 31}},
                          ConvCase{64, 32, 2, 2, 0, 1, true, Activation::leaky_relu, false, {32, 14, 22}},
                          ConvCase{12, 7, 3, 2, 1, 1, false, Activation::sigmoid, false, {7, 13, 13}},
                          ConvCase{24, 16, 3, 1, 1, 1, true, Activation::swish, false, {16, 11, 9}},
                          ConvCase{5, 6, 5, 1, 2, 2, true, Activation::clip, false, {6, 19, 11}},
                          ConvCase{16, 16, 1, 1, 0, 1, true, Activation::relu, false, {16, 127, 3}},
                          ConvCase{64, 64, 2, 2, 0, 1, true, Activation::leaky_relu, true, {64, 9, 13}},
                          ConvCase{3, 64, 4, 2, 3, 1, true, Activation::none, true, {64, 11, 7}},
                          ConvCase{8, 5, 3, 1, 1, 1, false, Activation::prelu, true, {5, 6, 9}})),
    [](const auto& info) { return fmt::format("{}_{}", target_name(std::get<0>(info.param)), info.index); });

// in -> conv -> `after` -> out, where `after` reads the convolution's output and, when
// `also_reads_input`, the graph input too.
Graph conv_then(Node conv, Node after, bool also_reads_input = false) {
  Graph g;
  g.source = "test";
  g.input_blob = g.add_blob("in");
  conv.inputs = {g.input_blob};
  conv.outputs = {g.add_blob("c")};
  after.inputs = {conv.outputs[0]};
  if (also_reads_input) after.inputs.push_back(g.input_blob);
  after.outputs = {g.add_blob("out")};
  g.output_blob = after.outputs[0];
  g.nodes = {conv, after};
  g.validate();
  return g;
}

#if UPRES_WITH_VULKAN
// UPRES_VULKAN_CONV=measure (what a hardware GPU gets by default): each layer's kernel is timed on
// the device once per shape, after the others are checked against the direct one there; the
// output stays the reference's. Kernels a layer or device cannot take are never chosen.
TEST(VulkanConvKernels, MeasuredChoiceIsRightAndMadeOncePerShape) {
  if (!backend_available("vulkan")) GTEST_SKIP() << "vulkan has no device here";
  for (const char* policy : {"measure", "coopmat"}) {
    for (Precision precision : {Precision::f32, Precision::f16}) {
      BackendConfig config;
      config.precision = precision;
      std::unique_ptr<Backend> backend;
      {
        ConvKernelChoice choice(policy);
        backend = make_backend("vulkan", config);
      }
      // A 3x3 layer with PReLU (tiled can run it), then a stride-2 one (direct only).
      Node first = conv_node(20, 6, 3, 1, 1, 1, true, Activation::prelu, 31);
      Node second = conv_node(7, 20, 3, 2, 1, 1, true, Activation::none, 32);
      Graph g = conv_then(first, second);
      const Shape input{6, 19, 13};
      auto before = vulkan::Context::get(0)->choices();
      Tensor x = random_tensor(input, 33);
      Tensor expected = run_graph(*make_reference_backend(), g, x);
      auto prepared = backend->prepare(g, input);
      EXPECT_LE(max_relative_error(run_graph(*backend, *prepared, x), expected),
                precision == Precision::f32 ? 1e-4 : 1e-2)
          << policy;
      auto after = vulkan::Context::get(0)->choices();
      auto count = [](const std::map<std::string, int>& choices, const std::string& prefix) {
        return std::count_if(choices.begin(), choices.end(),
                             [&](const auto& c) { return c.first.rfind(prefix, 0) == 0; });
      };
      if (std::string(policy) == "measure") {
        // One new choice, the first layer's (the second has only direct): direct or tiled, after
        // tiled was found to agree with direct on its weights.
        EXPECT_EQ(count(after, "conv "), count(before, "conv ") + 1);
        EXPECT_EQ(count(after, "agrees "), count(before, "agrees ") + 1);
        for (const auto& [key, value] : after) {
          if (key.rfind("conv ", 0) == 0) {
            EXPECT_TRUE(value == 0 || value == 1) << key;
          } else if (key.rfind("agrees ", 0) == 0) {
            EXPECT_EQ(value, 1) << key;
          }
        }
        run_graph(*backend, *backend->prepare(g, input), x);  // the same shape again
        EXPECT_EQ(vulkan::Context::get(0)->choices().size(), after.size());
      } else {
        EXPECT_EQ(after.size(), before.size());  // forced: nothing measured
      }
    }
  }
  expect_no_validation_messages();
}

TEST(VulkanConvKernels, UnknownChoiceIsRefusedWithTheChoices) {
  if (!backend_available("vulkan")) GTEST_SKIP() << "vulkan has no device here";
  ConvKernelChoice choice("fastest");
  try {
    make_backend("vulkan", BackendConfig{});
    FAIL() << "accepted UPRES_VULKAN_CONV=fastest";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("auto, measure, direct, tiled, coopmat or coopmat_emulated"),
              std::string::npos)
        << e.what();
  }
}
#endif

// Grouped and depthwise convolutions, with and without a fused activation.
TEST_P(Parity, GroupedAndDepthwiseConvolutions) {
  struct Case {
    int out_c, in_c, groups, k;
    Activation act;
  };
  for (const Case& c : {Case{8, 12, 4, 3, Activation::mish}, Case{6, 6, 6, 3, Activation::none},
                        Case{10, 5, 5, 5, Activation::tanh}, Case{4, 6, 2, 1, Activation::prelu}}) {
    Node n = conv_node(c.out_c, c.in_c / c.groups, c.k, 1, c.k / 2, 1, true, c.act, 21);
    n.p<ConvParams>().groups = c.groups;
    expect_matches_reference(OpGraph(n).graph, {c.in_c, 11, 7}, 22);
  }
}

// PixelUnshuffle is PixelShuffle's inverse in both channel orders.
TEST(ReferenceOps, PixelUnshuffleUndoesPixelShuffle) {
  for (bool dcr : {false, true}) {
    Graph g;
    g.source = "test";
    g.input_blob = g.add_blob("in");
    Node shuffle = simple(OpType::pixel_shuffle, PixelShuffleParams{3, dcr});
    shuffle.inputs = {g.input_blob};
    shuffle.outputs = {g.add_blob("s")};
    Node unshuffle = simple(OpType::pixel_unshuffle, PixelShuffleParams{3, dcr});
    unshuffle.inputs = shuffle.outputs;
    unshuffle.outputs = {g.add_blob("out")};
    g.output_blob = unshuffle.outputs[0];
    g.nodes = {shuffle, unshuffle};
    g.validate();
    Tensor x = random_tensor({18, 5, 4}, 3);
    Tensor y = run_graph(*make_reference_backend(), g, x);
    EXPECT_EQ(y.values, x.values);
  }
}

TEST(ReferenceOps, PadModesKnownValues) {
  Tensor x({1, 1, 3}, {1, 2, 3});
  auto padded = [&](PadMode mode) {
    return run_graph(*make_reference_backend(),
                     OpGraph(simple(OpType::pad, PadParams{mode, 0, 0, 2, 2, 9})).graph, x)
        .values;
  };
  EXPECT_EQ(padded(PadMode::constant), (std::vector<float>{9, 9, 1, 2, 3, 9, 9}));
  EXPECT_EQ(padded(PadMode::reflect), (std::vector<float>{3, 2, 1, 2, 3, 2, 1}));
  EXPECT_EQ(padded(PadMode::edge), (std::vector<float>{1, 1, 1, 2, 3, 3, 3}));
  // Reflection cannot reach past the opposite edge.
  EXPECT_THROW(
      OpGraph(simple(OpType::pad, PadParams{PadMode::reflect, 0, 0, 3, 0, 0})).graph.infer_shapes({1, 1, 3}),
      Error);
}

TEST_P(Parity, FusedResidualAddWithCoefficients) {
  // conv -> Eltwise(0.2 * conv + 1.0 * x): the RRDB residual, fused into the convolution.
  Node add;
  add.type = OpType::eltwise;
  add.name = "add";
  add.params = EltwiseParams{EltwiseKind::sum, {0.2f, 1.0f}};
  const Graph g = conv_then(conv_node(8, 8, 3, 1, 1, 1, true, Activation::none, 5), add, true);
  Graph fused = g;
  fuse_conv_epilogues(fused, {8, 9, 9});
  ASSERT_EQ(fused.nodes.size(), 1u) << "the add should fold into the convolution";
  EXPECT_EQ(fused.nodes[0].inputs.size(), 2u);
  expect_matches_reference(g, {8, 15, 9}, 4);
}

TEST_P(Parity, StandaloneActivationsFoldIntoConvolution) {
  Node prelu;
  prelu.type = OpType::prelu;
  prelu.weights.push_back(random_tensor({16, 1, 1}, 9, 0.f, 0.3f));
  Node swish;
  swish.type = OpType::swish;
  for (const auto& [after, activation] :
       {std::pair{prelu, Activation::prelu}, std::pair{swish, Activation::swish}}) {
    const Graph g = conv_then(conv_node(16, 3, 3, 1, 1, 1, true, Activation::none, 5), after);
    Graph fused = g;
    fuse_conv_epilogues(fused, {3, 8, 8});
    ASSERT_EQ(fused.nodes.size(), 1u);
    EXPECT_EQ(fused.nodes[0].p<ConvParams>().activation.type, activation);
    expect_matches_reference(g, {3, 13, 1}, 6);
  }
}

TEST_P(Parity, ElementwiseAndLayoutOps) {
  const Shape odd{5, 13, 7};
  {
    Node n = simple(OpType::prelu);
    n.weights.push_back(random_tensor({5, 1, 1}, 1));
    expect_matches_reference(OpGraph(n).graph, odd, 1);
  }
  expect_matches_reference(OpGraph(simple(OpType::relu, ReluParams{0.2f})).graph, odd, 2);
  expect_matches_reference(OpGraph(simple(OpType::sigmoid)).graph, odd, 3);
  expect_matches_reference(OpGraph(simple(OpType::swish)).graph, odd, 3);
  expect_matches_reference(OpGraph(simple(OpType::clip, ClipParams{-0.1f, 0.4f})).graph, odd, 4);
  expect_matches_reference(OpGraph(simple(OpType::pixel_shuffle, PixelShuffleParams{3, false})).graph,
                           {18, 5, 3}, 5);
  expect_matches_reference(OpGraph(simple(OpType::pixel_shuffle, PixelShuffleParams{2, true})).graph,
                           {8, 1, 7}, 5);
  for (InterpMode mode : {InterpMode::nearest, InterpMode::bilinear, InterpMode::bicubic}) {
    InterpParams p;
    p.mode = mode;
    p.scale_h = 4;
    p.scale_w = 4;
    expect_matches_reference(OpGraph(simple(OpType::interp, p)).graph, {3, 7, 13}, 6);
    p.scale_h = p.scale_w = 0.5f;
    expect_matches_reference(OpGraph(simple(OpType::interp, p)).graph, {3, 27, 13}, 7);
    p.out_h = 11;  // a fixed size, corners aligned
    p.out_w = 5;
    p.align_corners = true;
    expect_matches_reference(OpGraph(simple(OpType::interp, p)).graph, {2, 9, 17}, 8);
  }
  expect_matches_reference(OpGraph(simple(OpType::tanh)).graph, odd, 12);
  expect_matches_reference(OpGraph(simple(OpType::mish)).graph, odd, 13);
  for (bool dcr : {false, true}) {
    expect_matches_reference(OpGraph(simple(OpType::pixel_unshuffle, PixelShuffleParams{3, dcr})).graph,
                             {2, 15, 9}, 14);
    expect_matches_reference(OpGraph(simple(OpType::pixel_unshuffle, PixelShuffleParams{2, dcr})).graph,
                             {5, 14, 2}, 15);
  }
  for (PadMode mode : {PadMode::constant, PadMode::reflect, PadMode::edge})
    expect_matches_reference(OpGraph(simple(OpType::pad, PadParams{mode, 2, 0, 3, 1, -0.5f})).graph, odd, 16);
  PoolingParams gp;
  gp.kind = PoolKind::average;
  gp.global = true;
  expect_matches_reference(OpGraph(simple(OpType::pooling, gp)).graph, odd, 8);
  gp.kind = PoolKind::max;
  expect_matches_reference(OpGraph(simple(OpType::pooling, gp)).graph, odd, 9);
  PoolingParams wp;
  wp.kernel_w = wp.kernel_h = 2;
  wp.stride_w = wp.stride_h = 2;
  expect_matches_reference(OpGraph(simple(OpType::pooling, wp)).graph, odd, 10);
  CropParams cp;
  cp.begin[0] = 1;
  cp.begin[1] = 2;
  cp.end[2] = -3;
  expect_matches_reference(OpGraph(simple(OpType::crop, cp)).graph, odd, 11);
}

TEST_P(Parity, TwoInputOps) {
  const Shape odd{4, 11, 9};
  for (BinaryOpKind k : {BinaryOpKind::add, BinaryOpKind::sub, BinaryOpKind::mul, BinaryOpKind::max,
                         BinaryOpKind::min, BinaryOpKind::rsub}) {
    BinaryOpParams p;
    p.kind = k;
    expect_matches_reference(OpGraph(simple(OpType::binary_op, p), 4, 1, 4).graph, odd, 12);
  }
  BinaryOpParams scalar{BinaryOpKind::mul, true, 0.7f};
  expect_matches_reference(OpGraph(simple(OpType::binary_op, scalar)).graph, odd, 13);
  expect_matches_reference(
      OpGraph(simple(OpType::eltwise, EltwiseParams{EltwiseKind::sum, {0.5f, -2}}), 4, 2, 4).graph, odd, 14);
  expect_matches_reference(
      OpGraph(simple(OpType::eltwise, EltwiseParams{EltwiseKind::prod, {}}), 4, 3, 4).graph, odd, 15);
  expect_matches_reference(
      OpGraph(simple(OpType::eltwise, EltwiseParams{EltwiseKind::max, {}}), 4, 3, 4).graph, odd, 15);
  for (int axis : {0, 1, 2})
    expect_matches_reference(
        OpGraph(simple(OpType::concat, ConcatParams{axis}), axis == 0 ? 7 : 4, 4, 4).graph, odd, 16);
  // Per-channel broadcast: x * inner_product(global_pool(x)), the squeeze-excitation pattern.
  Graph g;
  g.source = "se";
  g.input_blob = g.add_blob("in");
  PoolingParams gp;
  gp.kind = PoolKind::average;
  gp.global = true;
  Node pool = simple(OpType::pooling, gp);
  pool.inputs = {g.input_blob};
  pool.outputs = {g.add_blob("pool")};
  Node fc = simple(OpType::inner_product, InnerProductParams{4, true, {Activation::sigmoid, 0, 0}});
  fc.weights = {random_tensor({16, 1, 1}, 3), random_tensor({4, 1, 1}, 4)};
  fc.inputs = pool.outputs;
  fc.outputs = {g.add_blob("fc")};
  Node mul = simple(OpType::binary_op, BinaryOpParams{BinaryOpKind::mul, false, 0});
  mul.inputs = {g.input_blob, fc.outputs[0]};
  mul.outputs = {g.add_blob("out")};
  g.output_blob = mul.outputs[0];
  g.nodes = {pool, fc, mul};
  g.validate();
  expect_matches_reference(g, odd, 17);
  Node sc = simple(OpType::scale, ScaleParams{false, true});
  sc.weights = {random_tensor({4, 1, 1}, 5), random_tensor({4, 1, 1}, 6)};
  expect_matches_reference(OpGraph(sc).graph, odd, 18);
}

// The normalisations and GELU of the large-kernel and transformer families: GELU alone and fused
// into a convolution, LayerNorm over each pixel's channels (with an offset far from zero, where a
// one-pass variance would cancel), and GroupNorm from frame-wide moments of its input.
TEST_P(Parity, NormalisationsAndGelu) {
  const Shape odd{12, 13, 7};
  expect_matches_reference(OpGraph(simple(OpType::gelu)).graph, odd, 31);
  expect_matches_reference(
      conv_then(conv_node(8, 5, 3, 1, 1, 1, true, Activation::none, 32), simple(OpType::gelu)), {5, 11, 9},
      33);
  for (bool affine : {false, true}) {
    Node norm = simple(OpType::channel_norm, ChannelNormParams{1e-6f, affine});
    if (affine) norm.weights = {random_tensor({12, 1, 1}, 34), random_tensor({12, 1, 1}, 35)};
    Graph g = OpGraph(norm).graph;
    expect_matches_reference(g, odd, 36);
    // Values around 3 with a spread of 0.01: the mean must come off before squaring. (float16
    // storage rounds 3.004 to steps of 0.002 itself, so only float32 can be held to this.)
    if (GetParam().precision == Precision::f16) continue;
    Node shift = simple(OpType::binary_op, BinaryOpParams{BinaryOpKind::mul, true, 0.01f});
    Node add = simple(OpType::binary_op, BinaryOpParams{BinaryOpKind::add, true, 3.f});
    Graph h;
    h.source = "offset";
    h.input_blob = h.add_blob("in");
    shift.inputs = {h.input_blob};
    shift.outputs = {h.add_blob("small")};
    add.inputs = shift.outputs;
    add.outputs = {h.add_blob("offset")};
    norm.inputs = add.outputs;
    norm.outputs = {h.add_blob("out")};
    h.output_blob = norm.outputs[0];
    h.nodes = {shift, add, norm};
    h.validate();
    expect_matches_reference(h, odd, 37);
  }
  for (int groups : {1, 4, 12}) {
    Graph g;
    g.source = "group_norm";
    g.input_blob = g.add_blob("in");
    PoolingParams gp;
    gp.kind = PoolKind::average;
    gp.global = true;
    Node square = simple(OpType::binary_op, BinaryOpParams{BinaryOpKind::mul, false, 0});
    square.inputs = {g.input_blob, g.input_blob};
    square.outputs = {g.add_blob("square")};
    Node mean = simple(OpType::pooling, gp);
    mean.inputs = {g.input_blob};
    mean.outputs = {g.add_blob("mean")};
    Node mean_square = simple(OpType::pooling, gp);
    mean_square.inputs = square.outputs;
    mean_square.outputs = {g.add_blob("mean_square")};
    Node norm = simple(OpType::group_norm, GroupNormParams{groups, 1e-5f, groups != 1});
    if (groups != 1) norm.weights = {random_tensor({12, 1, 1}, 38), random_tensor({12, 1, 1}, 39)};
    norm.inputs = {g.input_blob, mean.outputs[0], mean_square.outputs[0]};
    norm.outputs = {g.add_blob("out")};
    g.output_blob = norm.outputs[0];
    g.nodes = {square, mean, mean_square, norm};
    g.validate();
    expect_matches_reference(g, odd, 40 + uint32_t(groups));
  }
}

// Attention inside windows, shifted and masked or not, square and rectangular, Q, K and V from
// channel runs of one picture or three.
TEST_P(Parity, WindowAttention) {
  struct Case {
    int heads, dim, wh, ww, sy, sx;
    bool masked, one_picture;
  };
  uint32_t seed = 50;
  for (const Case& c : {Case{2, 3, 4, 4, 0, 0, false, true}, Case{3, 2, 4, 4, 2, 2, true, true},
                        Case{1, 5, 2, 6, 1, 3, true, false}, Case{2, 4, 8, 4, 0, 0, false, false}}) {
    Graph g;
    g.source = "attention";
    g.input_blob = g.add_blob("in");
    const int channels = c.heads * c.dim;
    WindowAttentionParams p;
    p.heads = c.heads;
    p.head_dim = c.dim;
    p.window_h = c.wh;
    p.window_w = c.ww;
    p.shift_y = c.sy;
    p.shift_x = c.sx;
    p.scale = 1.f / std::sqrt(float(c.dim));
    p.masked = c.masked;
    p.mask_value = -100.f;
    Node n = simple(OpType::window_attention, p);
    const int tokens = c.wh * c.ww;
    n.weights = {random_tensor({c.heads * tokens * tokens, 1, 1}, seed++, -0.5f, 0.5f)};
    if (c.one_picture) {  // Q, K, V as three channel runs of the input, as a qkv layer gives them
      n.p<WindowAttentionParams>().k_channel = channels;
      n.p<WindowAttentionParams>().v_channel = 2 * channels;
      n.inputs = {g.input_blob, g.input_blob, g.input_blob};
    } else {  // three pictures: the input, and two scaled copies of it
      std::vector<int> made;
      for (float f : {0.7f, -1.3f}) {
        Node scale = simple(OpType::binary_op, BinaryOpParams{BinaryOpKind::mul, true, f});
        scale.inputs = {g.input_blob};
        scale.outputs = {g.add_blob(fmt::format("x{}", f))};
        made.push_back(scale.outputs[0]);
        g.nodes.push_back(scale);
      }
      n.inputs = {g.input_blob, made[0], made[1]};
    }
    n.outputs = {g.add_blob("out")};
    g.output_blob = n.outputs[0];
    g.nodes.push_back(n);
    g.validate();
    const Shape input{c.one_picture ? 3 * channels : channels, 3 * c.wh, 2 * c.ww};
    expect_matches_reference(g, input, seed++);
  }
}

TEST_P(Parity, ExecutorIsReusableAcrossRuns) {
  if (!backend) GTEST_SKIP() << GetParam().backend << " has no device here";
  Node n = conv_node(16, 3, 3, 1, 1, 1, true, Activation::prelu, 21);
  OpGraph g(n);
  auto ref = make_reference_backend();
  auto exec = backend->compile(g.graph, {3, 9, 11});
  for (uint32_t seed = 0; seed < 3; ++seed) {
    Tensor x = random_tensor({3, 9, 11}, seed);
    Tensor out(exec->output_shape());
    exec->run(x.view(), out.view());
    EXPECT_LE(max_relative_error(out, run_graph(*ref, g.graph, x)), GetParam().tolerance);
  }
}

// Two runs in flight, as the runtime keeps tiles: the second is submitted before the first is
// waited for, and each ticket's output is that run's.
TEST_P(Parity, TwoRunsInFlightEachGetTheirOwnOutput) {
  if (!backend) GTEST_SKIP() << GetParam().backend << " has no device here";
  OpGraph g(conv_node(8, 3, 3, 1, 1, 1, true, Activation::relu, 3));
  auto exec = backend->compile(g.graph, {3, 9, 7});
  const Tensor a = random_tensor({3, 9, 7}, 1), b = random_tensor({3, 9, 7}, 2);
  Tensor out_a(exec->output_shape()), out_b(exec->output_shape());
  Ticket first = exec->submit(a.view(), out_a.view());
  Ticket second = exec->submit(b.view(), out_b.view());
  first.wait();
  second.wait();
  auto ref = make_reference_backend();
  EXPECT_LE(max_relative_error(out_a, run_graph(*ref, g.graph, a)), GetParam().tolerance);
  EXPECT_LE(max_relative_error(out_b, run_graph(*ref, g.graph, b)), GetParam().tolerance);
}

// run_observed (calibration) shows every blob asked for, the input included, as the reference
// computes it, although the executor reuses those blobs' memory for later ones.
TEST_P(Parity, ObservedBlobsMatchTheReference) {
  if (!backend) GTEST_SKIP() << GetParam().backend << " has no device here";
  Node relu = simple(OpType::relu, ReluParams{0.1f});
  const Graph g = conv_then(conv_node(8, 3, 3, 1, 1, 1, true, Activation::none, 5), relu);
  const Tensor x = random_tensor({3, 11, 9}, 2);
  std::map<int, Tensor> want, got;
  Tensor out(g.infer_shapes(x.shape)[size_t(g.output_blob)]);
  run_reference_observed(g, x.view(), out.view(), [&](int b, const TensorView& v) {
    want[b] = Tensor(v.shape, std::vector<float>(v.data, v.data + v.shape.size()));
  });
  const std::vector<int> observed{g.input_blob, g.nodes[0].outputs[0], g.output_blob};
  auto exec = backend->compile(g, x.shape, observed);
  exec->run_observed(x.view(), out.view(), [&](int b, const TensorView& v) {
    got[b] = Tensor(v.shape, std::vector<float>(v.data, v.data + v.shape.size()));
  });
  for (int b : observed) {
    ASSERT_TRUE(got.count(b)) << "blob " << b << " was not shown";
    EXPECT_LE(max_relative_error(got[b], want[b]), GetParam().tolerance) << "blob " << b;
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, Parity, ::testing::ValuesIn(kTargets),
                         [](const auto& info) { return target_name(info.param); });

// The two hooks tiled squeeze-excitation runs use: a run that stops at a global average pooling
// and shows its input, and means handed in from outside. Both backends, one graph:
// conv -> global average -> scale the conv output by those averages.
TEST(TiledSplit, GraphUntilThePoolingAndMeansHandedIn) {
  Graph g;
  g.source = "test";
  g.input_blob = g.add_blob("in");
  Node conv = conv_node(5, 3, 3, 1, 1, 1, true, Activation::none, 4);
  conv.inputs = {g.input_blob};
  conv.outputs = {g.add_blob("features")};
  Node pool;
  pool.type = OpType::pooling;
  pool.name = "gap";
  PoolingParams pp;
  pp.kind = PoolKind::average;
  pp.global = true;
  pool.params = pp;
  pool.inputs = conv.outputs;
  pool.outputs = {g.add_blob("means")};
  Node mul;
  mul.type = OpType::binary_op;
  mul.name = "scale";
  BinaryOpParams bp;
  bp.kind = BinaryOpKind::mul;
  mul.params = bp;
  mul.inputs = {conv.outputs[0], pool.outputs[0]};
  mul.outputs = {g.add_blob("out")};
  g.nodes = {conv, pool, mul};
  g.output_blob = mul.outputs[0];
  g.validate();
  const Tensor x = random_tensor({3, 9, 11}, 5);
  const Tensor features = run_graph(
      *make_reference_backend(),
      [&] {
        Graph only_conv = g;
        only_conv.nodes.resize(1);
        only_conv.output_blob = conv.outputs[0];
        return only_conv;
      }(),
      x);
  const std::vector<float> means{0.5f, -1.f, 2.f, 0.f, 3.f};
  std::vector<std::unique_ptr<Backend>> backends;
  backends.push_back(make_reference_backend());
  backends.push_back(make_cpu_backend(2));
  // The runtime's split for tiled runs: the graph up to the pooling's input, and the graph with
  // the pooling replaced by means handed in. Both run on every backend without its help.
  const std::vector<std::vector<float>> given{means};
  const Graph until = graph_until(g, pool.inputs[0]);
  EXPECT_EQ(until.nodes.size(), 1u);
  const Graph with_means = graph_with_given_poolings(g, {1}, given, x.shape);
  for (const auto& backend : backends) {
    const Tensor visited = run_graph(*backend, until, x);
    ASSERT_EQ(visited.shape, features.shape);
    for (int64_t i = 0; i < visited.shape.size(); ++i)
      EXPECT_NEAR(visited.values[size_t(i)], features.values[size_t(i)], 1e-5);
    const Tensor out = run_graph(*backend, with_means, x);
    for (int c = 0; c < 5; ++c)
      EXPECT_NEAR(out.view().at(c, 4, 5), features.view().at(c, 4, 5) * means[size_t(c)], 1e-5)
          << backend->name();
    const Tensor plain = run_graph(*backend, g, x);
    double mean0 = 0;
    for (int i = 0; i < 99; ++i) mean0 += features.values[size_t(i)] / 99;
    EXPECT_NEAR(plain.view().at(0, 4, 5), features.view().at(0, 4, 5) * mean0, 1e-4) << backend->name();
  }
}

}  // namespace
}  // namespace upres::test
