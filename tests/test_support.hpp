// Helpers shared by the tests: random tensors, one-op graphs, backend comparisons.
#pragma once

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "backend/backend.hpp"
#if UPRES_WITH_VULKAN
#include "backend/vulkan/vulkan_context.hpp"
#endif
#include "image/test_pattern.hpp"
#include "media/test_video.hpp"
#include "ops/graph.hpp"
#include "upres/error.hpp"
#include "upres/files.hpp"
#include "upres/image.hpp"
#include "upres/model.hpp"
#include "upres/quality.hpp"
#include "upres/video.hpp"

namespace upres::test {

// A fixture with a fresh folder under /tmp, removed with everything in it after the test.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/upres-test-XXXXXX";
    const char* made = mkdtemp(tmpl);
    ASSERT_NE(made, nullptr);
    dir = made;
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::filesystem::path dir;
};

inline Tensor random_tensor(Shape s, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  Tensor t(s);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  for (float& v : t.values) v = u(rng);
  return t;
}

// A convolution (or deconvolution) node with random weights of a sensible size.
inline Node conv_node(int out_c, int in_c, int k, int stride, int pad, int dilation, bool bias,
                      Activation act, uint32_t seed, bool deconv = false) {
  Node n;
  n.type = deconv ? OpType::deconvolution : OpType::convolution;
  n.name = "conv";
  ConvParams p;
  p.out_channels = out_c;
  p.kernel_w = p.kernel_h = k;
  p.stride_w = p.stride_h = stride;
  p.dilation_w = p.dilation_h = dilation;
  p.pad_left = p.pad_right = p.pad_top = p.pad_bottom = pad;
  p.bias = bias || act == Activation::prelu;
  p.activation.type = act;
  if (act == Activation::leaky_relu) p.activation.alpha = 0.1f;
  if (act == Activation::clip) p.activation = {Activation::clip, -0.2f, 0.3f};
  n.params = p;
  const float bound = 1.f / std::sqrt(float(in_c * k * k));
  n.weights.push_back(random_tensor({out_c * in_c * k * k, 1, 1}, seed, -bound, bound));
  if (p.bias) n.weights.push_back(random_tensor({out_c, 1, 1}, seed + 1));
  if (act == Activation::prelu) n.weights.push_back(random_tensor({out_c, 1, 1}, seed + 2, 0.f, 0.5f));
  return n;
}

// A graph whose input feeds `node`; when `second_input` is given, a 1x1 convolution of the input
// with that many channels and shape is made first and fed as the node's second input.
struct OpGraph {
  Graph graph;
  explicit OpGraph(Node node, int second_channels = 0, uint32_t seed = 7, int input_channels = 0) {
    graph.source = "test";
    graph.input_blob = graph.add_blob("in");
    std::vector<int> inputs{graph.input_blob};
    if (second_channels > 0) {
      Node conv;
      conv.type = OpType::convolution;
      conv.name = "side";
      ConvParams p;
      p.out_channels = second_channels;
      conv.params = p;
      conv.weights.push_back(random_tensor({second_channels * input_channels, 1, 1}, seed));
      conv.inputs = {graph.input_blob};
      conv.outputs = {graph.add_blob("side")};
      inputs.push_back(conv.outputs[0]);
      graph.nodes.push_back(conv);
    }
    node.inputs = inputs;
    node.outputs = {graph.add_blob("out")};
    graph.output_blob = node.outputs[0];
    graph.nodes.push_back(std::move(node));
    graph.validate();
  }
};

inline Tensor run_graph(Backend& backend, const Graph& g, const Tensor& input) {
  auto exec = backend.compile(g, input.shape);
  Tensor out(exec->output_shape());
  exec->run(input.view(), out.view());
  return out;
}

// Whether `name` is a registered backend with a device on this machine (vulkan: any Vulkan
// driver, lavapipe included).
inline bool backend_available(const std::string& name) {
  for (const std::string& n : backend_names())
    if (n == name) return !find_backend(name).devices().empty();
  return false;
}

// The Khronos validation layer is on in the tests (UPRES_VULKAN_VALIDATION=1, tests/CMakeLists.txt)
// and must stay silent.
inline void expect_no_validation_messages() {
#if UPRES_WITH_VULKAN
  EXPECT_EQ(vulkan::vulkan_validation_messages(), 0)
      << "the Vulkan validation layer reported problems (above)";
#endif
}

// Largest |a - b| relative to max(1, |b|).
inline double max_relative_error(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape, b.shape);
  double worst = 0;
  for (size_t i = 0; i < a.values.size() && i < b.values.size(); ++i)
    worst = std::max(
        worst, std::fabs(double(a.values[i]) - b.values[i]) / std::max(1.0, std::fabs(double(b.values[i]))));
  return worst;
}

// A shell command's exit code and what it printed (stdout and stderr together).
struct ShellRun {
  int exit_code;
  std::string output;
};
inline ShellRun shell(const std::string& command) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// Partial output files anywhere under `dir` (upres/files.hpp), with their paths.
inline std::vector<std::string> partial_files_under(const std::filesystem::path& dir) {
  std::vector<std::string> found;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (is_partial_output(e.path().string())) found.push_back(e.path().string());
  return found;
}

// Skips the current test unless the zoo model is installed (`make models` installs them).
#define UPRES_REQUIRE_MODEL(name)                                                                 \
  do {                                                                                            \
    const ModelInfo* info_ = find_model_info(name);                                               \
    ASSERT_NE(info_, nullptr) << name;                                                            \
    if (!model_installed(*info_)) GTEST_SKIP() << name << " is not installed; run `make models`"; \
  } while (0)

// Copies an ncnn model with its last weight changed in its lowest bit: the same network, but weights
// upres does not know (a copy of a zoo model's files would be recognised by their sha256 and get
// the zoo model's settings and shipped int8 table).
inline void copy_model_with_other_weights(const std::string& param_from, const std::string& bin_from,
                                          const std::filesystem::path& param_to,
                                          const std::filesystem::path& bin_to) {
  std::filesystem::copy_file(param_from, param_to);
  auto bytes = upres::read_file_bytes(bin_from);
  bytes[bytes.size() - 4] ^= 1;  // the lowest mantissa bit of the last float32
  std::ofstream(bin_to, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

// A name GoogleTest accepts for a parameterised case: every character but letters and digits
// becomes '_'.
inline std::string test_name_from(std::string text) {
  for (char& c : text)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return text;
}

inline std::string shared_media_dir() {
  return std::string(UPRES_SOURCE_DIR) + "/../shared/media";
}

// A clip long enough (90 frames of 320x180, about 15 s of work) to be still running when a
// service test acts on it, yet quick to stop: cancellation is checked between frames.
inline void write_long_test_clip(const std::string& path) {
  TestVideoSpec spec;
  spec.width = 320;
  spec.height = 180;
  spec.frames = 90;
  write_test_video(path, spec);
}

}  // namespace upres::test
