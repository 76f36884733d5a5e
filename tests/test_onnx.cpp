// The ONNX loader: models exported by PyTorch (scripts/export-onnx-test-models.py, run once per
// version of the script into the build tree) imported and run on every backend against PyTorch's
// own output, and malformed or unsupported files refused with messages that name the problem.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>

#include <fmt/format.h>
#include <onnx/onnx_pb.h>
#include <nlohmann/json.hpp>

#include "media_inspect.hpp"
#include "model/loader.hpp"
#include "model/onnx_fold.hpp"
#include "model/onnx_loader.hpp"
#include "test_support.hpp"
#include "upres/int8.hpp"

namespace upres::test {
namespace {

namespace fs = std::filesystem;

// The exported models: made once per version of the export script (ctest runs each test in a
// process of its own, two at a time), in a folder named by the script's hash, atomically.
const fs::path& exported_models() {
  static const fs::path dir = [] {
    const std::string script = std::string(UPRES_SOURCE_DIR) + "/scripts/export-onnx-test-models.py";
    const fs::path root = fs::path(UPRES_BINARY_DIR) / "onnx-test-models";
    const fs::path made = root / file_sha256(script).substr(0, 16);
    if (fs::exists(made / "done")) return made;
    fs::create_directories(root);
    const fs::path tmp = root / fmt::format("tmp-{}", getpid());
    fs::remove_all(tmp);
    const ShellRun run = shell(fmt::format("'{}' '{}' '{}'", UPRES_TORCH_PYTHON, script, tmp.string()));
    if (run.exit_code != 0)
      throw std::runtime_error(
          fmt::format("the export script failed (exit {}): {}\n`scripts/install-deps.sh test` "
                      "installs python3-torch and python3-onnx",
                      run.exit_code, run.output));
    std::ofstream(tmp / "done") << "ok\n";
    std::error_code ec;
    fs::rename(tmp, made, ec);  // another process may have won the race: its copy is as good
    fs::remove_all(tmp);
    return made;
  }();
  return dir;
}

struct Exported {
  std::string path;
  Tensor input, output;  // C x H x W (batch of one)
};

Tensor read_f32(const fs::path& file, const std::vector<int>& nchw) {
  Tensor t(Shape{nchw[1], nchw[2], nchw[3]});
  std::ifstream in(file, std::ios::binary);
  in.read(reinterpret_cast<char*>(t.values.data()), std::streamsize(t.values.size() * 4));
  EXPECT_EQ(size_t(in.gcount()), t.values.size() * 4) << file;
  return t;
}

Exported load_exported(const std::string& name) {
  const fs::path dir = exported_models();
  nlohmann::json shapes = nlohmann::json::parse(std::ifstream(dir / (name + ".json")));
  return {(dir / (name + ".onnx")).string(), read_f32(dir / (name + ".in.f32"), shapes["input"]),
          read_f32(dir / (name + ".out.f32"), shapes["output"])};
}

// Peak signal-to-noise ratio with the reference's range as the peak.
double psnr_against(const Tensor& got, const Tensor& reference) {
  EXPECT_EQ(got.shape, reference.shape);
  if (got.shape != reference.shape) return 0;
  float lo = reference.values[0], hi = lo;
  double mse = 0;
  for (size_t i = 0; i < got.values.size(); ++i) {
    lo = std::min(lo, reference.values[i]);
    hi = std::max(hi, reference.values[i]);
    const double d = double(got.values[i]) - reference.values[i];
    mse += d * d;
  }
  mse /= double(got.values.size());
  return mse == 0 ? 200.0 : 10 * std::log10(double(hi - lo) * (hi - lo) / mse);
}

struct Case {
  const char* name;
  int scale;
};
const Case kCases[] = {
    {"compact_opset11", 2},
    {"compact_opset13", 2},
    {"compact_opset17", 2},
    {"compact_fp16", 2},
    {"compact_fixed", 2},
    {"rrdb_opset13", 4},
    {"rrdb_fp16", 4},
    {"span_opset11", 2},
    {"span_opset17", 2},
    {"realplk_opset13", 2},
    {"realplk_opset17", 2},
    {"rare_opset13", 2},
    {"rare_opset17", 2},
    {"edsr_range255", 2},
    {"compact_bgr", 2},
    {"upres_compact_x2", 2},
    // Published families, as their own code writes them (scripts/sr_families.py).
    {"plksr_opset13", 2},
    {"plksr_opset17", 2},
    {"plksr_fp16", 2},
    {"realplksr_opset13", 2},
    {"realplksr_opset17", 2},
    {"realplksr_fixed", 2},
    {"safmn_fixed", 2},
    {"safmn_fp16", 2},
    {"swinir_opset13", 2},
    {"swinir_opset17", 2},
    {"swinir_fp16", 2},
    {"mosr_opset17", 2},
    {"mosr_gps_opset13", 2},
    {"mosr_fp16", 2},
};

class OnnxExports : public ::testing::TestWithParam<Case> {
 protected:
  void TearDown() override { expect_no_validation_messages(); }
};

// Imported, the model gives PyTorch's output on every backend, at 60 dB or better in float32.
TEST_P(OnnxExports, MatchPyTorchOnEveryBackend) {
  const Exported e = load_exported(GetParam().name);
  std::shared_ptr<const Model> model = Model::load(e.path);
  EXPECT_EQ(model->source().format, "onnx");
  EXPECT_EQ(model->geometry().scale, GetParam().scale);
  const Graph& g = model->graph();
  Tensor reference = run_graph(*make_reference_backend(), g, e.input);
  EXPECT_GE(psnr_against(reference, e.output), 60.0) << "reference backend";
  for (const char* name : {"cpu", "vulkan"}) {
    if (!backend_available(name)) continue;
    // lavapipe runs the larger nets slowly; the small ones cover its kernels.
    if (std::string(name) == "vulkan" && std::string(GetParam().name).rfind("rrdb", 0) == 0) continue;
    BackendConfig config;
    config.threads = 2;
    std::unique_ptr<Backend> backend = make_backend(name, config);
    Tensor got = run_graph(*backend, *backend->prepare(g, e.input.shape), e.input);
    EXPECT_GE(psnr_against(got, e.output), 60.0) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, OnnxExports, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

// The structure the loader recovers: a pixel shuffle written as Reshape/Transpose/Reshape becomes
// one op, and a model that pads itself to a multiple of 8 asks the runtime for that alignment.
TEST(OnnxLoader, RecoversPixelShufflesAndAlignment) {
  auto count = [](const Graph& g, OpType type) {
    return std::count_if(g.nodes.begin(), g.nodes.end(), [&](const Node& n) { return n.type == type; });
  };
  std::shared_ptr<const Model> span = Model::load(load_exported("span_opset11").path);
  EXPECT_EQ(count(span->graph(), OpType::pixel_unshuffle), 1);
  EXPECT_EQ(count(span->graph(), OpType::pixel_shuffle), 1);
  EXPECT_EQ(span->geometry().alignment, 2);
  std::shared_ptr<const Model> rare = Model::load(load_exported("rare_opset13").path);
  EXPECT_EQ(rare->graph().input_alignment, 8);
  EXPECT_EQ(rare->geometry().alignment, 8);
  EXPECT_GE(count(rare->graph(), OpType::scale), 1) << "the batch norm, as a per-channel scale";
  EXPECT_TRUE(rare->geometry().has_global_pooling);
}

// Our own model exported from its PyTorch training code with fp16 weights runs like the ncnn export
// upres ships (also fp16 weights; batch norms folded by each exporter in its own order).
TEST(OnnxLoader, OurModelAsOnnxMatchesTheShippedNcnnExport) {
  std::shared_ptr<const Model> onnx = Model::load(load_exported("upres_compact_x2_fp16").path);
  std::shared_ptr<const Model> ncnn =
      Model::load(std::string(UPRES_SOURCE_DIR) + "/models/upres-compact-x2.param");
  const Image picture = make_test_pattern(61, 37, 3);
  UpscaleOptions o;
  o.backend = "cpu";
  const double db = psnr_8bit(Upscaler(onnx, o).upscale(picture), Upscaler(ncnn, o).upscale(picture));
  EXPECT_GE(db, 50.0);
  RecordProperty("psnr_db", std::to_string(db));
  EXPECT_EQ(onnx->macs_per_input_pixel(), ncnn->macs_per_input_pixel());
  // SiLU written out as x * sigmoid(x) folds like ncnn's Swish: the same ops run, at the same cost.
  auto cpu = make_backend("cpu", BackendConfig{});
  const auto fused_onnx = cpu->prepare(onnx->graph(), {3, 32, 32}),
             fused_ncnn = cpu->prepare(ncnn->graph(), {3, 32, 32});
  EXPECT_EQ(fused_onnx->nodes.size(), fused_ncnn->nodes.size());
}

// Whole pictures through the Upscaler (tiling, borders, alignment) like any model.
TEST(OnnxLoader, ImportedModelsUpscalePicturesThroughTheRuntime) {
  for (const char* name : {"compact_opset13", "rare_opset17"}) {
    std::shared_ptr<const Model> model = Model::load(load_exported(name).path);
    Image picture = make_test_pattern(45, 29);
    UpscaleOptions whole, tiled;
    whole.backend = tiled.backend = "cpu";
    tiled.tile = 16;
    Image a = Upscaler(model, whole).upscale(picture);
    Image b = Upscaler(model, tiled).upscale(picture);
    EXPECT_EQ(a.width, 90);
    EXPECT_EQ(a.height, 58);
    if (!model->geometry().has_global_pooling) {
      EXPECT_GE(psnr_8bit(a, b), 50.0) << name;
    }
  }
}

Image image_of(const Tensor& t) {  // both planar C x H x W
  Image im(t.shape.w, t.shape.h, t.shape.c);
  im.data = t.values;
  return im;
}

float max_difference(const Image& a, const Image& b) {
  EXPECT_EQ(a.data.size(), b.data.size());
  float d = 0;
  for (size_t i = 0; i < std::min(a.data.size(), b.data.size()); ++i)
    d = std::max(d, std::fabs(a.data[i] - b.data[i]));
  return d;
}

// `picture` through `model` in float32 on `backend`, whole and in tiles of `tile`.
struct WholeAndTiled {
  Image whole, tiled;
  int tiles = 0;
};
WholeAndTiled whole_and_tiled(const std::shared_ptr<const Model>& model, const Image& picture,
                              const std::string& backend, int tile) {
  UpscaleOptions whole;
  whole.backend = backend;
  whole.precision = Precision::f32;
  UpscaleOptions tiled = whole;
  tiled.tile = tile;
  Upscaler tiles(model, tiled);
  WholeAndTiled r{Upscaler(model, whole).upscale(picture), tiles.upscale(picture)};
  r.tiles = tiles.last_stats().tiles;
  return r;
}

// A model that pads its own input with reflect up to a multiple of 8 runs at a size that is not
// one (97x81) as PyTorch runs it: the runtime pads in the model's mode, not by edge replication;
// and its tiles, like those of every model whose receptive field the overlap covers, give the
// whole frame's output, on every backend.
TEST(OnnxLoader, SelfPaddingModelsMatchPyTorchAndTilesMatchTheWholeFrame) {
  const Exported e = load_exported("reflect_aligned");
  std::shared_ptr<const Model> model = Model::load(e.path);
  EXPECT_EQ(model->geometry().alignment, 8);
  EXPECT_EQ(model->border_mode(), BorderMode::reflect);
  Image reference = image_of(e.output);
  for (float& v : reference.data) v = std::clamp(v, 0.f, 1.f);  // upres clamps its output
  const Image picture = image_of(e.input);
  ASSERT_EQ(picture.width, 97);
  for (const char* backend : {"cpu", "vulkan"}) {
    if (!backend_available(backend)) continue;
    SCOPED_TRACE(backend);
    const WholeAndTiled r = whole_and_tiled(model, picture, backend, 32);
    EXPECT_GT(r.tiles, 3);
    EXPECT_LE(max_difference(r.whole, reference), 2e-4) << "the model's own output";
    EXPECT_LE(max_difference(r.whole, r.tiled), 2e-4) << "tiles against the whole frame";
  }
  // Models that pad inside (reflect before a convolution), align to 2 by a pixel unshuffle, have
  // 13x13 kernels, pool to 1/8 of the size and back (SAFMN), or normalise with frame-wide
  // statistics (RealPLKSR's GroupNorm, gathered from all tiles first): tiled at sizes that are no
  // multiple of anything.
  for (const char* name : {"span_opset17", "realplk_opset17", "compact_opset13", "plksr_opset17",
                           "realplksr_opset17", "safmn_fixed", "mosr_gps_opset13"}) {
    SCOPED_TRACE(name);
    std::shared_ptr<const Model> m = Model::load(load_exported(name).path);
    for (const auto& [w, h] : {std::pair{193, 161}, std::pair{150, 97}, std::pair{67, 130}}) {
      const WholeAndTiled r = whole_and_tiled(m, make_test_pattern(w, h), "cpu", 24);
      EXPECT_GT(r.tiles, 1);
      EXPECT_LE(max_difference(r.whole, r.tiled), 2e-4) << w << "x" << h;
    }
  }
}

// SwinIR at a size no multiple of its windows (the runtime pads in the model's place, with reflect
// as the model does) gives PyTorch's output, and tiles, whose windows the alignment keeps on the
// frame's grid, give the whole frame's output to 45 dB or better.
TEST(OnnxLoader, WindowAttentionRunsAtAnySizeAndTiled) {
  const Exported e = load_exported("swinir_odd");
  std::shared_ptr<const Model> model = Model::load(e.path);
  EXPECT_EQ(model->geometry().alignment, 4);
  EXPECT_EQ(model->border_mode(), BorderMode::reflect);
  Image reference = image_of(e.output);
  for (float& v : reference.data) v = std::clamp(v, 0.f, 1.f);
  const Image picture = image_of(e.input);
  for (const char* backend : {"cpu", "vulkan"}) {
    if (!backend_available(backend)) continue;
    SCOPED_TRACE(backend);
    const WholeAndTiled r = whole_and_tiled(model, picture, backend, 24);
    EXPECT_GT(r.tiles, 1);
    EXPECT_LE(max_difference(r.whole, reference), 2e-4) << "the model's own output";
    EXPECT_GE(psnr_8bit(r.whole, r.tiled), 45.0) << "tiles against the whole frame";
  }
}

// The published families through the command line as a user runs them: a picture on every backend
// (each agreeing with the in-process cpu run) and a video through RealPLKSR (GroupNorm, in-place
// channel slices, repeat_interleave).
TEST(OnnxLoader, FamiliesRunThroughTheCommandLineOnPicturesAndVideo) {
  const fs::path dir = fs::path(::testing::TempDir()) / fmt::format("families-{}", getpid());
  fs::create_directories(dir);
  const std::string picture = (dir / "in.png").string();
  write_image(make_test_pattern(37, 23), picture);
  for (const char* name :
       {"plksr_opset17", "realplksr_opset17", "safmn_fixed", "swinir_opset17", "mosr_opset17"}) {
    SCOPED_TRACE(name);
    const std::string model = load_exported(name).path;
    UpscaleOptions cpu;
    cpu.backend = "cpu";
    cpu.precision = Precision::f32;
    const Image expected = Upscaler(Model::load(model), cpu).upscale(read_image(picture));
    for (const char* backend : {"cpu", "reference", "vulkan"}) {
      if (!backend_available(backend)) continue;
      const std::string out = (dir / fmt::format("{}-{}.png", name, backend)).string();
      const ShellRun run =
          shell(fmt::format("'{}' image '{}' -o '{}' -m '{}' --backend {} --precision f32 2>&1",
                            UPRES_CLI_PATH, picture, out, model, backend));
      ASSERT_EQ(run.exit_code, 0) << backend << ": " << run.output;
      const Image got = read_image(out);
      EXPECT_EQ(got.width, 74);
      EXPECT_GE(psnr_8bit(got, expected), 50.0) << backend;
    }
  }
  const std::string clip = (dir / "clip.mkv").string(), video = (dir / "out.mkv").string();
  ASSERT_EQ(shell(fmt::format("'{}' sample -o '{}' --size 40x24 --frames 6", UPRES_CLI_PATH, clip)).exit_code,
            0);
  const ShellRun run = shell(fmt::format("'{}' video '{}' -o '{}' -m '{}' --backend cpu 2>&1", UPRES_CLI_PATH,
                                         clip, video, load_exported("realplksr_opset17").path));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const MediaInfo info = inspect_media(video);
  ASSERT_GE(info.video_index, 0);
  EXPECT_EQ(info.streams[size_t(info.video_index)].width, 80);
  EXPECT_EQ(info.streams[size_t(info.video_index)].pts.size(), 6u);
  fs::remove_all(dir);
}

// Malformed files: parsed, never trusted.
onnx::ModelProto tiny_model(const std::string& op) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(13);
  onnx::GraphProto* g = m.mutable_graph();
  onnx::ValueInfoProto* in = g->add_input();
  in->set_name("x");
  in->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto_DataType_FLOAT);
  auto* shape = in->mutable_type()->mutable_tensor_type()->mutable_shape();
  for (int d : {1, 3, 0, 0}) {
    auto* dim = shape->add_dim();
    if (d) dim->set_dim_value(d);
  }
  onnx::NodeProto* n = g->add_node();
  n->set_op_type(op);
  n->set_name("the_node");
  n->add_input("x");
  n->add_output("y");
  g->add_output()->set_name("y");
  return m;
}

// Import is linear in the node count: a chain of 100,000 nodes (a 2.4 MB file, well under the
// size limit) loads in seconds (it took minutes when each fold rescanned the whole graph), and a
// chain of 20,000 SiLUs written as x * sigmoid(x) folds into 20,000 Swish ops.
TEST(OnnxLoader, LongChainsLoadInLinearTime) {
  auto chain = [](int links, bool silu) {
    onnx::ModelProto m = tiny_model("Relu");
    onnx::GraphProto* g = m.mutable_graph();
    g->clear_node();
    std::string last = "x";
    for (int k = 0; k < links; ++k) {
      const std::string out = fmt::format("v{}", k);
      if (silu) {
        onnx::NodeProto* sig = g->add_node();
        sig->set_op_type("Sigmoid");
        sig->add_input(last);
        sig->add_output(out + "s");
        onnx::NodeProto* mul = g->add_node();
        mul->set_op_type("Mul");
        mul->add_input(last);
        mul->add_input(out + "s");
        mul->add_output(out);
      } else {
        onnx::NodeProto* n = g->add_node();
        n->set_op_type("Relu");
        n->add_input(last);
        n->add_output(out);
      }
      last = out;
    }
    g->mutable_output(0)->set_name(last);
    return m.SerializeAsString();
  };
  const auto start = std::chrono::steady_clock::now();
  const std::unique_ptr<Graph> relus = load_onnx_from_memory(chain(100000, false), "relus.onnx");
  EXPECT_EQ(relus->nodes.size(), 100000u);
  const std::unique_ptr<Graph> silus = load_onnx_from_memory(chain(20000, true), "silus.onnx");
  EXPECT_EQ(silus->nodes.size(), 20000u);
  EXPECT_TRUE(std::all_of(silus->nodes.begin(), silus->nodes.end(),
                          [](const Node& n) { return n.type == OpType::swish; }));
  // Not a benchmark: a bound a hundred times what a loaded machine takes, that the quadratic
  // import (minutes) could not meet.
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 120.0);
  RecordProperty("seconds", std::to_string(seconds));
}

std::string load_error(const std::string& bytes) {
  try {
    load_onnx_from_memory(bytes, "model.onnx");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_model) << e.what();
    return e.what();
  }
  return "(loaded)";
}

TEST(OnnxLoader, MalformedAndUnsupportedModelsAreRefusedByName) {
  EXPECT_NE(load_error(tiny_model("Erf").SerializeAsString())
                .find("node 'the_node' (Erf): upres runs Erf only as part of GELU"),
            std::string::npos);
  EXPECT_NE(
      load_error(tiny_model("InstanceNormalization").SerializeAsString()).find("has no scale (input 2)"),
      std::string::npos);
  EXPECT_NE(load_error(tiny_model("LayerNormalization").SerializeAsString())
                .find("normalises over axes other than the channels of each pixel"),
            std::string::npos);
  EXPECT_NE(load_error(tiny_model("Softmax").SerializeAsString()).find("other than attention scores"),
            std::string::npos);
  EXPECT_NE(
      load_error(tiny_model("Einsum").SerializeAsString()).find("runs window attention written with MatMul"),
      std::string::npos);
  EXPECT_NE(load_error(tiny_model("MatMul").SerializeAsString()).find("has a missing input"),
            std::string::npos);
  EXPECT_EQ(load_error(tiny_model("Relu").SerializeAsString()), "(loaded)");
  // A truncated file.
  const std::string whole = load_exported("compact_opset13").path;
  std::vector<uint8_t> bytes = read_file_bytes(whole);
  EXPECT_NE(load_error(std::string(bytes.begin(), bytes.begin() + long(bytes.size() / 2)))
                .find("not a readable ONNX model"),
            std::string::npos);
  // One channel in.
  onnx::ModelProto gray = tiny_model("Relu");
  gray.mutable_graph()
      ->mutable_input(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(1)
      ->set_dim_value(1);
  EXPECT_NE(load_error(gray.SerializeAsString()).find("takes 1 channels; upres runs models that take RGB"),
            std::string::npos);
  // A Conv whose weight is missing.
  onnx::ModelProto conv = tiny_model("Conv");
  conv.mutable_graph()->mutable_node(0)->add_input("w");
  EXPECT_NE(load_error(conv.SerializeAsString()).find("reads 'w', which nothing before it produces"),
            std::string::npos);
  // A weight whose bytes do not fill its shape.
  onnx::TensorProto* w = conv.mutable_graph()->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto_DataType_FLOAT);
  for (int d : {4, 3, 3, 3}) w->add_dims(d);
  w->set_raw_data(std::string(100, '\0'));
  EXPECT_NE(load_error(conv.SerializeAsString()).find("holds 100 bytes but its 108 values need 432"),
            std::string::npos);
  // Weights kept outside the file.
  w->set_data_location(onnx::TensorProto_DataLocation_EXTERNAL);
  EXPECT_NE(load_error(conv.SerializeAsString()).find("separate file"), std::string::npos);
  // A node with no outputs, and one that writes a name twice (found by the fuzz target).
  onnx::ModelProto silent = tiny_model("Relu");
  silent.mutable_graph()->mutable_node(0)->clear_output();
  EXPECT_NE(load_error(silent.SerializeAsString()).find("(Relu): has no output"), std::string::npos);
  onnx::ModelProto twice = tiny_model("Relu");
  *twice.mutable_graph()->add_node() = twice.graph().node(0);
  EXPECT_NE(load_error(twice.SerializeAsString()).find("writes 'y', which is already defined"),
            std::string::npos);
  // Found by review: a reshape-like node with no input, repeated axes, a fixed size too large to hold.
  onnx::ModelProto no_input = tiny_model("Transpose");
  no_input.mutable_graph()->mutable_node(0)->clear_input();
  EXPECT_NE(load_error(no_input.SerializeAsString()).find("has no input"), std::string::npos);
  onnx::ModelProto twice_axes = tiny_model("Unsqueeze");
  twice_axes.mutable_opset_import(0)->set_version(11);
  onnx::AttributeProto* axes = twice_axes.mutable_graph()->mutable_node(0)->add_attribute();
  axes->set_name("axes");
  axes->set_type(onnx::AttributeProto_AttributeType_INTS);
  axes->add_ints(5);
  axes->add_ints(5);
  EXPECT_NE(load_error(twice_axes.SerializeAsString()).find("lists an axis twice"), std::string::npos);
  onnx::ModelProto huge = tiny_model("Relu");
  auto* dims = huge.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape();
  dims->mutable_dim(2)->set_dim_value(65536);
  dims->mutable_dim(3)->set_dim_value(65536);
  EXPECT_NE(load_error(huge.SerializeAsString()).find("over 16384 a side"), std::string::npos);
  // Index arrays followed at once are bounded: one 126 MB view of a fixed 1024x1024 picture, held by
  // 40 names that a last node reads (they share it: the bound counts each, so the test allocates
  // little).
  onnx::ModelProto held = tiny_model("Expand");
  auto* side = held.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape();
  side->mutable_dim(2)->set_dim_value(1024);
  side->mutable_dim(3)->set_dim_value(1024);
  onnx::TensorProto* target = held.mutable_graph()->add_initializer();
  target->set_name("shape");
  target->set_data_type(onnx::TensorProto_DataType_INT64);
  target->add_dims(5);
  for (int64_t d : {5, 1, 3, 1024, 1024}) target->add_int64_data(d);
  held.mutable_graph()->mutable_node(0)->add_input("shape");
  onnx::NodeProto* all = held.mutable_graph()->add_node();
  all->set_op_type("Concat");
  all->set_name("all");
  all->add_output("z");
  for (int k = 0; k < 40; ++k) {
    onnx::NodeProto* copy = held.mutable_graph()->add_node();
    copy->set_op_type("Identity");
    copy->set_name(fmt::format("copy{}", k));
    copy->add_input("y");
    copy->add_output(fmt::format("y{}", k));
    all->add_input(fmt::format("y{}", k));
  }
  held.mutable_graph()->mutable_node()->SwapElements(1, held.graph().node_size() - 1);  // the concat last
  held.mutable_graph()->mutable_output(0)->set_name("z");
  const std::string held_error = load_error(held.SerializeAsString());
  EXPECT_NE(held_error.find("needs more than 4 GiB to follow the picture"), std::string::npos) << held_error;
  // Nothing at all, and garbage.
  EXPECT_NE(load_error("").find("no graph"), std::string::npos);
  EXPECT_NE(load_error(std::string("\x08\x07\x12\xff\xff\xff", 6)).find("not a readable ONNX model"),
            std::string::npos);
}

// The ops of later opsets than Debian's exporter writes (GroupNormalization from 18, Gelu from 20),
// built by hand: values as the ONNX spec defines them, and GELU's tanh form refused by name.
TEST(OnnxLoader, GroupNormalizationAndGeluAsTheSpecDefinesThem) {
  auto floats = [](onnx::GraphProto* g, const char* name, std::vector<float> v) {
    onnx::TensorProto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto_DataType_FLOAT);
    t->add_dims(int64_t(v.size()));
    for (float f : v) t->add_float_data(f);
  };
  const Tensor x = random_tensor({3, 9, 7}, 5, -2.f, 3.f);
  {
    onnx::ModelProto m = tiny_model("GroupNormalization");
    m.mutable_opset_import(0)->set_version(18);
    onnx::NodeProto* n = m.mutable_graph()->mutable_node(0);
    n->add_input("scale");
    n->add_input("bias");
    onnx::AttributeProto* groups = n->add_attribute();
    groups->set_name("num_groups");
    groups->set_type(onnx::AttributeProto_AttributeType_INT);
    groups->set_i(3);
    floats(m.mutable_graph(), "scale", {0.5f, 2.f, -1.f});
    floats(m.mutable_graph(), "bias", {0.1f, 0.f, 0.3f});
    const Tensor y =
        run_graph(*make_reference_backend(), *load_onnx_from_memory(m.SerializeAsString(), "gn.onnx"), x);
    const float scale[3] = {0.5f, 2.f, -1.f}, bias[3] = {0.1f, 0.f, 0.3f};
    for (int c = 0; c < 3; ++c) {
      double mean = 0, var = 0;
      const int64_t plane = 63;
      for (int64_t i = 0; i < plane; ++i) mean += x.view().channel(c)[i];
      mean /= plane;
      for (int64_t i = 0; i < plane; ++i) var += std::pow(x.view().channel(c)[i] - mean, 2);
      var /= plane;
      for (int64_t i = 0; i < plane; ++i)
        EXPECT_NEAR(y.view().channel(c)[i],
                    (x.view().channel(c)[i] - mean) / std::sqrt(var + 1e-5) * scale[c] + bias[c], 1e-5);
    }
  }
  for (const char* approximate : {"none", "tanh"}) {
    onnx::ModelProto m = tiny_model("Gelu");
    m.mutable_opset_import(0)->set_version(20);
    onnx::AttributeProto* a = m.mutable_graph()->mutable_node(0)->add_attribute();
    a->set_name("approximate");
    a->set_type(onnx::AttributeProto_AttributeType_STRING);
    a->set_s(approximate);
    if (std::string(approximate) == "tanh") {
      EXPECT_NE(load_error(m.SerializeAsString()).find("tanh approximation"), std::string::npos);
      continue;
    }
    const Tensor y =
        run_graph(*make_reference_backend(), *load_onnx_from_memory(m.SerializeAsString(), "gelu.onnx"), x);
    for (size_t i = 0; i < x.values.size(); ++i)
      EXPECT_NEAR(y.values[i], 0.5 * x.values[i] * (1 + std::erf(x.values[i] / std::sqrt(2.0))), 1e-6);
  }
}

// Load-time arithmetic as ONNX defines it, on the cases review found wrong or unbounded.
TEST(OnnxFold, CastWhereAndSizesAsTheSpecSays) {
  using namespace onnx_fold;
  const Fail fail = [](const std::string& problem) { throw Error(ErrorCode::invalid_model, problem); };
  FoldContext cx;
  cx.fail = fail;
  Attributes attrs;
  int64_t to = 9;
  attrs.i = [&](const char* name, int64_t fallback) { return std::string(name) == "to" ? to : fallback; };
  attrs.ints = [](const char*) { return std::vector<int64_t>{}; };
  attrs.tensor = [](const char*) -> const Const* { return nullptr; };
  auto constant = [](std::vector<double> v, bool integer = false) {
    Const c;
    c.integer = integer;
    c.at.push_back(Array::vector(std::move(v)));
    return c;
  };
  std::vector<Const> out;
  const Const half = constant({0.5, 0, -2});
  ASSERT_TRUE(fold("Cast", {&half}, attrs, cx, out));
  EXPECT_EQ(out[0].at[0].v, (std::vector<double>{1, 0, 1})) << "non-zero is true";
  const Const cond = constant({1, 0, 1}, true), a = constant({NAN, 5, 6}), b = constant({7, NAN, 9});
  ASSERT_TRUE(fold("Where", {&cond, &a, &b}, attrs, cx, out));
  EXPECT_TRUE(std::isnan(out[0].at[0].v[0])) << "a NaN picked from a stays";
  EXPECT_TRUE(std::isnan(out[0].at[0].v[1]));
  EXPECT_EQ(out[0].at[0].v[2], 6);
  const Const scalar_cond = constant({0}, true);
  ASSERT_TRUE(fold("Where", {&scalar_cond, &a, &b}, attrs, cx, out));
  EXPECT_EQ(out[0].at[0].v[2], 9) << "a condition broadcasts";
  // Shapes whose product overflows, and broadcasts too large to hold, are refused before allocating.
  const Const shape = constant({4294967296.0, 4294967296.0}, true);
  EXPECT_THROW(fold("ConstantOfShape", {&shape}, attrs, cx, out), Error);
  const Const column = constant({65536, 1}, true), row = constant({1, 65536}, true);
  std::vector<Const> ones_column, ones_row;
  ASSERT_TRUE(fold("ConstantOfShape", {&column}, attrs, cx, ones_column));
  ASSERT_TRUE(fold("ConstantOfShape", {&row}, attrs, cx, ones_row));
  EXPECT_THROW(fold("Add", {&ones_column[0], &ones_row[0]}, attrs, cx, out), Error);
  const Const empty = constant({});
  EXPECT_THROW(fold("Range", {&empty, &empty, &empty}, attrs, cx, out), Error);
}

// The loader table takes .onnx files by name or by their first bytes, beside ncnn.
TEST(OnnxLoader, SniffedByTheLoaderTable) {
  const std::string path = load_exported("compact_opset17").path;
  EXPECT_EQ(sniff_model_file(path).format, "onnx");
  const fs::path renamed = fs::temp_directory_path() / fmt::format("upres-onnx-sniff-{}.model", getpid());
  fs::copy_file(path, renamed, fs::copy_options::overwrite_existing);
  EXPECT_EQ(sniff_model_file(renamed.string()).format, "onnx");
  fs::remove(renamed);
}

}  // namespace
}  // namespace upres::test

namespace upres::test {
namespace {

// int8 calibration and inference work on an imported model like on an ncnn one; and `models add`
// registers an ONNX file by name.
class OnnxModelFiles : public TempDirTest {};

TEST_F(OnnxModelFiles, CalibrateForInt8AndRegisterByName) {
  const fs::path model_path = dir / "toy.onnx";
  fs::copy_file(load_exported("compact_opset17").path, model_path);
  std::vector<Image> pictures;
  for (uint32_t seed = 1; seed <= 4; ++seed) pictures.push_back(make_test_pattern(64, 48, seed));
  const Int8Calibration table = calibrate_int8(*Model::load(model_path.string()), pictures);
  write_calibration(table, calibration_path_for(model_path.string()));
  EXPECT_EQ(calibration_path_for(model_path.string()), (dir / "toy.int8.json").string());
  std::shared_ptr<const Model> model = Model::load(model_path.string());
  ASSERT_NE(model->int8_calibration(), nullptr) << model->int8_calibration_note();
  UpscaleOptions f32, int8;
  f32.backend = int8.backend = "cpu";
  int8.precision = Precision::int8;
  Upscaler fast(model, int8);
  EXPECT_EQ(fast.precision(), Precision::int8);
  const Image picture = make_test_pattern(40, 30, 9);
  EXPECT_GE(psnr_8bit(fast.upscale(picture), Upscaler(model, f32).upscale(picture)), 30.0);

  const std::string saved = std::getenv("UPRES_MODEL_DIR") ? std::getenv("UPRES_MODEL_DIR") : "";
  setenv("UPRES_MODEL_DIR", (dir / "cache").c_str(), 1);
  const UserModel added = add_user_model(model_path.string(), "", false);
  EXPECT_EQ(added.name, "toy");
  EXPECT_EQ(added.source.format, "onnx");
  EXPECT_EQ(added.scale, 2);
  EXPECT_TRUE(fs::exists(dir / "cache" / "user" / "toy" / "toy.int8.json")) << "its table comes along";
  std::shared_ptr<const Model> by_name = Model::load("toy");
  EXPECT_EQ(by_name->geometry().scale, 2);
  EXPECT_NE(by_name->int8_calibration(), nullptr);
  if (saved.empty())
    unsetenv("UPRES_MODEL_DIR");
  else
    setenv("UPRES_MODEL_DIR", saved.c_str(), 1);
}

}  // namespace
}  // namespace upres::test
