// The backend registry and the inference boundary: a backend registered from a test in one line
// runs models through the Upscaler like a built-in one; a backend that cannot run an op is
// refused before any work, naming the op; buffers and tickets behave.
#include <algorithm>

#include "test_support.hpp"
#include "upres/upscaler.hpp"

namespace upres::test {
namespace {

// The registration a new backend needs: one statement.
const BackendRegistrar kTestBackend{{"test-reference", "the reference kernels, registered by a test",
                                     [](const BackendConfig& c) { return make_reference_backend(c.int8); },
                                     [] { return std::vector<DeviceInfo>{host_device("test-reference")}; }}};

// Runs everything but convolutions: the Upscaler must refuse it, naming the op.
class NoConvolutions final : public Backend {
 public:
  const char* name() const override { return "test-no-conv"; }
  DeviceInfo device() const override { return host_device("test-no-conv"); }
  bool supports(const Node& node, Precision) const override { return node.type != OpType::convolution; }
  std::unique_ptr<Executor> compile(const Graph& graph, Shape input,
                                    const std::vector<int>& observed) override {
    return inner_->compile(graph, input, observed);
  }

 private:
  std::unique_ptr<Backend> inner_ = make_reference_backend();
};
const BackendRegistrar kNoConvolutions{
    {"test-no-conv", "refuses convolutions",
     [](const BackendConfig&) { return std::make_unique<NoConvolutions>(); },
     [] { return std::vector<DeviceInfo>{}; }}};

Image random_image(int w, int h, uint32_t seed) {
  Image img(w, h, 3);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (float& v : img.data) v = u(rng);
  return img;
}

// The cpu backend with a cap on each tensor, as a GPU's binding range caps it (lavapipe: 128 MiB).
class SmallTensors final : public Backend {
 public:
  const char* name() const override { return "test-small-tensors"; }
  DeviceInfo device() const override { return host_device("test-small-tensors"); }
  int64_t max_tensor_bytes() const override { return int64_t(64) * 140 * 140 * 4; }
  std::unique_ptr<Executor> compile(const Graph& graph, Shape input,
                                    const std::vector<int>& observed) override {
    const std::vector<Shape> shapes = graph.infer_shapes(input);
    for (const Shape& s : shapes) EXPECT_LE(s.size() * 4, max_tensor_bytes()) << "a blob over the cap";
    return inner_->compile(graph, input, observed);
  }
  std::unique_ptr<Graph> prepare(const Graph& graph, Shape probe) const override {
    return inner_->prepare(graph, probe);
  }

 private:
  std::unique_ptr<Backend> inner_ = make_cpu_backend(2);
};
const BackendRegistrar kSmallTensors{{"test-small-tensors", "caps each tensor",
                                      [](const BackendConfig&) { return std::make_unique<SmallTensors>(); },
                                      [] { return std::vector<DeviceInfo>{}; }}};

TEST(BackendRegistry, BuiltInsAndRegisteredOnesAreListed) {
  const std::vector<std::string> names = backend_names();
  ASSERT_GE(names.size(), 3u);
  EXPECT_EQ(names[0], "cpu");
  EXPECT_EQ(names[1], "reference");
  EXPECT_NE(std::find(names.begin(), names.end(), "test-reference"), names.end());
  bool cpu = false, test = false;
  for (const DeviceInfo& d : list_devices()) {
    cpu = cpu || (d.backend == "cpu" && d.kind == DeviceKind::host && d.memory_bytes > 0 && d.threads > 0);
    test = test || d.backend == "test-reference";
  }
  EXPECT_TRUE(cpu);
  EXPECT_TRUE(test);
}

TEST(BackendRegistry, UnknownNamesAreRefusedWithTheList) {
  try {
    check_backend_name("gpu9000");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("'gpu9000'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cpu ("), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("reference ("), std::string::npos) << e.what();
  }
  UpscaleOptions o;
  o.backend = "nope";
  EXPECT_THROW(check_upscale_options(o), Error);
}

TEST(BackendRegistry, ARegisteredBackendRunsModelsLikeABuiltIn) {
  auto model = Model::load("upres-compact-x2");
  const Image input = random_image(37, 23, 4);
  UpscaleOptions reference, registered;
  reference.backend = "reference";
  registered.backend = "test-reference";
  const Image a = Upscaler(model, reference).upscale(input);
  const Image b = Upscaler(model, registered).upscale(input);
  ASSERT_EQ(a.data.size(), b.data.size());
  EXPECT_TRUE(std::equal(a.data.begin(), a.data.end(), b.data.begin()));
}

TEST(BackendRegistry, AGraphTheBackendCannotRunIsRefusedNamingTheOp) {
  auto model = Model::load("upres-compact-x2");
  UpscaleOptions o;
  o.backend = "test-no-conv";
  try {
    Upscaler upscaler(model, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unsupported);
    EXPECT_NE(std::string(e.what()).find("test-no-conv backend cannot run"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Convolution"), std::string::npos) << e.what();
  }
}

// auto takes a hardware GPU when there is one and never a software driver (lavapipe is far
// slower than the cpu backend); with neither, the cpu backend.
TEST(BackendRegistry, AutoPicksAHardwareGpuElseTheCpu) {
  std::string gpu_backend;
  for (const DeviceInfo& d : list_devices())
    if (d.kind == DeviceKind::gpu && gpu_backend.empty()) gpu_backend = d.backend;
  EXPECT_EQ(resolve_backend_name("auto"), gpu_backend.empty() ? "cpu" : gpu_backend);
  EXPECT_EQ(resolve_backend_name("reference"), "reference");
  EXPECT_NO_THROW(check_backend_name("auto"));
  auto model = Model::load("upres-compact-x2");
  UpscaleOptions o;
  o.precision = Precision::f32;
  EXPECT_EQ(Upscaler(model, o).backend(), gpu_backend.empty() ? "cpu" : gpu_backend);
}

// Precisions a backend does not run are refused before any work, saying what to use instead.
TEST(BackendRegistry, PrecisionsABackendCannotRunAreRefused) {
  auto model = Model::load("upres-compact-x2");
  UpscaleOptions o;
  o.backend = "cpu";
  o.precision = Precision::f16;
  try {
    Upscaler upscaler(model, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unsupported);
    EXPECT_NE(std::string(e.what()).find("cpu backend does not run f16; use --precision f32"),
              std::string::npos)
        << e.what();
  }
  if (!backend_available("vulkan")) return;
  o.backend = "vulkan";
  o.precision = Precision::int8;
  EXPECT_THROW(Upscaler(model, o), Error);
  o.precision = Precision::automatic;  // f16 where the device stores 16-bit floats, never int8
  const Upscaler automatic(model, o);
  bool fast_f16 = false;
  for (const DeviceInfo& d : list_devices())
    fast_f16 = fast_f16 || (d.backend == "vulkan" && d.index == 0 && d.fast_f16);
  EXPECT_EQ(automatic.precision(), fast_f16 ? Precision::f16 : Precision::f32);
}

TEST(BackendRegistry, AMissingDeviceIsNamed) {
  if (!backend_available("vulkan")) GTEST_SKIP() << "no Vulkan device here";
  BackendConfig config;
  config.device = 99;
  try {
    make_backend("vulkan", config);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("no Vulkan device 99"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("upres devices"), std::string::npos) << e.what();
  }
}

// A backend's cap on one tensor tiles frames whose largest blob would not fit, like the budget.
TEST(BackendRegistry, FramesAreTiledToTheBackendsLargestTensor) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x2");
  auto model = Model::load("realesr-animevideov3-x2");
  const Image input = random_image(257, 193, 6);
  UpscaleOptions capped, plain;
  capped.backend = "test-small-tensors";
  plain.backend = "cpu";
  plain.precision = capped.precision = Precision::f32;
  Upscaler tiled(model, capped);
  const Image a = tiled.upscale(input);
  EXPECT_GT(tiled.last_stats().tiles, 1);
  const Image b = Upscaler(model, plain).upscale(input);
  ASSERT_EQ(a.data.size(), b.data.size());
  for (size_t i = 0; i < a.data.size(); ++i) ASSERT_NEAR(a.data[i], b.data[i], 2e-4) << i;
}

TEST(DeviceBuffers, HostBuffersAreAlignedOwnedAndMovable) {
  auto backend = make_cpu_backend(1);
  DeviceBuffer a = backend->allocate({{3, 5, 7}});
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.handle()) % 64, 0u);
  EXPECT_EQ(a.desc().bytes(), 3 * 5 * 7 * 4);
  a.view().at(2, 4, 6) = 1.5f;
  DeviceBuffer b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from buffers are empty
  EXPECT_EQ(b.view().at(2, 4, 6), 1.5f);
  b.reset();
  EXPECT_TRUE(b.empty());
}

TEST(Tickets, WaitRunsTheCompletionOnce) {
  int waits = 0;
  Ticket t([&] { ++waits; });
  t.wait();
  t.wait();
  EXPECT_EQ(waits, 1);
  Ticket done;
  done.wait();  // host backends hand back finished tickets
}

TEST(Executors, DescribeTheirInputAndOutput) {
  OpGraph g(conv_node(4, 3, 3, 1, 1, 1, true, Activation::relu, 3));
  for (const char* name : {"cpu", "reference"}) {
    auto exec = make_backend(name)->compile(g.graph, {3, 9, 11});
    EXPECT_EQ(exec->input_desc(), (TensorDesc{{3, 9, 11}})) << name;
    EXPECT_EQ(exec->output_desc().shape, (Shape{4, 9, 11})) << name;
    EXPECT_EQ(exec->output_desc().dtype, DType::f32) << name;
    EXPECT_EQ(exec->output_desc().device, DeviceKind::host) << name;
  }
}

}  // namespace
}  // namespace upres::test
