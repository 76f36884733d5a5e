// The loader table: a format registered from a test in one line loads through Model::load like
// ncnn; files no loader takes are refused naming the formats; ncnn is found from either file.
#include <filesystem>
#include <fstream>

#include "model/loader.hpp"
#include "test_support.hpp"
#include "upres/upscaler.hpp"

namespace upres::test {
namespace {

namespace fs = std::filesystem;

// A toy format: "upres-tiny N" is a model that scales by N with nearest neighbours.
std::unique_ptr<Graph> load_tiny(const ModelSource& source) {
  std::ifstream in(source.files[0]);
  std::string magic;
  int scale = 0;
  in >> magic >> scale;
  if (scale < 1 || scale > 8) throw Error(ErrorCode::invalid_model, source.files[0] + ": bad scale");
  auto g = std::make_unique<Graph>();
  g->source = source.files[0];
  g->input_blob = g->add_blob("in");
  Node n;
  n.type = OpType::interp;
  n.name = "nearest";
  InterpParams p;
  p.scale_h = p.scale_w = float(scale);
  n.params = p;
  n.inputs = {g->input_blob};
  n.outputs = {g->add_blob("out")};
  g->output_blob = n.outputs[0];
  g->nodes.push_back(std::move(n));
  g->validate();
  return g;
}

// The registration a new format needs: one statement.
const ModelLoaderRegistrar kTiny{
    {"tiny", "a text file starting 'upres-tiny'",
     [](const std::string& path, const std::string& head) -> std::optional<ModelSource> {
       if (head.rfind("upres-tiny", 0) != 0) return std::nullopt;
       return ModelSource{"tiny", {path}};
     },
     load_tiny}};

class Loaders : public TempDirTest {
 protected:
};

TEST_F(Loaders, ARegisteredFormatLoadsThroughModelLoad) {
  const fs::path path = dir / "triple.tiny";
  std::ofstream(path) << "upres-tiny 3\n";
  auto model = Model::load(path.string());
  EXPECT_EQ(model->name(), "triple");
  EXPECT_EQ(model->source().format, "tiny");
  EXPECT_EQ(model->geometry().scale, 3);
  Image input(5, 4, 3);
  for (size_t i = 0; i < input.data.size(); ++i) input.data[i] = float(i % 7) / 7.f;
  UpscaleOptions o;
  o.backend = "reference";
  const Image out = Upscaler(model, o).upscale(input);
  ASSERT_EQ(out.width, 15);
  ASSERT_EQ(out.height, 12);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 12; ++y)
      for (int x = 0; x < 15; ++x) ASSERT_EQ(out.at(c, y, x), input.at(c, y / 3, x / 3));
}

TEST_F(Loaders, AFileNoLoaderTakesIsRefusedNamingTheFormats) {
  const fs::path path = dir / "mystery.model";
  std::ofstream(path) << "\x08\x07 not a model";
  try {
    Model::load(path.string());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_model);
    const std::string what = e.what();
    EXPECT_NE(what.find("mystery.model is not a model file"), std::string::npos) << what;
    EXPECT_NE(what.find("onnx (an .onnx file)"), std::string::npos) << what;
    EXPECT_NE(what.find("ncnn (a .param file with its .bin beside it)"), std::string::npos) << what;
    EXPECT_NE(what.find("tiny ("), std::string::npos) << what;
  }
  EXPECT_THROW(Model::load((dir / "absent.param").string()), Error);
}

TEST_F(Loaders, NcnnIsFoundFromEitherFile) {
  const std::string models = std::string(UPRES_SOURCE_DIR) + "/models/";
  fs::copy_file(models + "upres-compact-x2.param", dir / "m.param");
  fs::copy_file(models + "upres-compact-x2.bin", dir / "m.bin");
  for (const char* file : {"m.param", "m.bin"}) {
    const ModelSource source = sniff_model_file((dir / file).string());
    EXPECT_EQ(source.format, "ncnn");
    ASSERT_EQ(source.files.size(), 2u);
    EXPECT_EQ(source.files[0], (dir / "m.param").string());
    EXPECT_EQ(source.weights_file(), (dir / "m.bin").string());
  }
  // A .bin whose .param is missing is not taken.
  fs::remove(dir / "m.param");
  EXPECT_THROW(sniff_model_file((dir / "m.bin").string()), Error);
}

}  // namespace
}  // namespace upres::test
