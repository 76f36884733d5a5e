// The realesrgan-ncnn-vulkan command line, driven with the argument lists the apps use, and
// `upres models add`: the outputs compared with `upres image` on the same files.
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "test_support.hpp"

namespace upres::test {
namespace {

namespace fs = std::filesystem;

std::string quoted(const fs::path& p) {
  return fmt::format("'{}'", p.string());
}

class NcnnCompat : public TempDirTest {
 protected:
  // A models folder laid out as the original's (NAME.param and NAME.bin), from the zoo's files.
  fs::path models_folder(const std::vector<std::string>& names) {
    const fs::path models = dir / "models";
    fs::create_directories(models);
    for (const std::string& name : names) {
      const ModelSource source = model_source(*find_model_info(name));
      fs::copy_file(source.files[0], models / (name + ".param"));
      fs::copy_file(source.files[1], models / (name + ".bin"));
    }
    return models;
  }
  // A folder of small frames, as Frame extracts them.
  fs::path frames(int count, int width, int height) {
    const fs::path in = dir / "frames";
    fs::create_directories(in);
    for (int k = 0; k < count; ++k)
      write_image(make_test_pattern(width, height, uint32_t(k + 1)),
                  (in / fmt::format("{:08d}.png", k + 1)).string());
    return in;
  }
  ShellRun compat(const std::string& args) {
    return shell(fmt::format("'{}' ncnn-compat {}", UPRES_CLI_PATH, args));
  }
  ShellRun upres(const std::string& args) { return shell(fmt::format("'{}' {}", UPRES_CLI_PATH, args)); }
};

// Frame's exact call on a folder of frames: every frame comes out as `upres image` makes it.
TEST_F(NcnnCompat, FramesCallOnAFolderOfFrames) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x2");
  const fs::path models = models_folder({"realesr-animevideov3-x2"});
  const fs::path in = frames(3, 24, 18), out = dir / "out";
  fs::create_directories(out);
  const ShellRun run =
      compat(fmt::format("-v -i {} -o {} -s 2 -f png -m {} -n realesr-animevideov3-x2 -j 2:4:2 -g 0 -t 0",
                         quoted(in), quoted(out), quoted(models)));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("100.00%"), std::string::npos) << "the apps read progress from stderr";
  EXPECT_NE(run.output.find("00000002.png -> "), std::string::npos) << "-v names each file";
  // As the original makes it: in float32, the picture mirrored 10 pixels out on each side (reflect)
  // before the model, and the result cropped back.
  for (int k = 1; k <= 3; ++k) {
    const std::string name = fmt::format("{:08d}.png", k);
    const Image frame = read_image((in / name).string());
    Image padded(frame.width + 20, frame.height + 20, 3);
    auto mirror = [](int i, int n) { return i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i; };
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < padded.height; ++y)
        for (int x = 0; x < padded.width; ++x)
          padded.at(c, y, x) = frame.at(c, mirror(y - 10, frame.height), mirror(x - 10, frame.width));
    const fs::path padded_file = dir / ("padded-" + name), expected = dir / ("expected-" + name);
    write_image(padded, padded_file.string());
    const ShellRun plain = upres(fmt::format("image {} -o {} -m realesr-animevideov3-x2 --precision f32",
                                             quoted(padded_file), quoted(expected)));
    ASSERT_EQ(plain.exit_code, 0) << plain.output;
    const Image a = read_image((out / name).string()), whole = read_image(expected.string());
    EXPECT_EQ(a.width, 48);
    EXPECT_EQ(a.height, 36);
    float worst = 0;
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < a.height; ++y)
        for (int x = 0; x < a.width; ++x)
          worst = std::max(worst, std::fabs(a.at(c, y, x) - whole.at(c, y + 20, x + 20)));
    EXPECT_EQ(worst, 0.f) << name;
  }
}

// What the apps saw go wrong: the input replaced by its own upscale, a device that does not exist
// taken for the CPU, progress stuck at 0 while tiles ran, lossy WebP and JPEG where the original
// writes lossless WebP and JPEG at quality 100.
TEST_F(NcnnCompat, OutputsProgressAndDevicesAsTheOriginal) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x2");
  const fs::path models = models_folder({"realesr-animevideov3-x2"});
  const std::string model = fmt::format("-s 2 -m {} -n realesr-animevideov3-x2", quoted(models));
  const fs::path picture = dir / "in.png";
  write_image(make_test_pattern(100, 90), picture.string());
  const auto before = read_image(picture.string()).data;
  // -o the input itself: refused, the input untouched.
  ShellRun run = compat(fmt::format("-i {} -o {} {}", quoted(picture), quoted(picture), model));
  EXPECT_EQ(run.exit_code, 255) << run.output;
  EXPECT_NE(run.output.find("input itself"), std::string::npos) << run.output;
  EXPECT_EQ(read_image(picture.string()).data, before);
  // A folder into itself: every file refused, none replaced.
  const fs::path folder = dir / "same";
  fs::create_directories(folder);
  fs::copy_file(picture, folder / "a.png");
  run = compat(fmt::format("-i {} -o {} -f png {}", quoted(folder), quoted(folder), model));
  EXPECT_NE(run.output.find("input itself"), std::string::npos) << run.output;
  EXPECT_EQ(read_image((folder / "a.png").string()).data, before);
  // -j load:proc, as the original reads it; -g 0 is this machine's device.
  run = compat(fmt::format("-i {} -o {} -j 1:2 -g 0 {}", quoted(picture), quoted(dir / "j.png"), model));
  EXPECT_EQ(run.exit_code, 0) << run.output;
  // Tiles of 32 on 100x90 (a 4 x 3 grid, with the padding): a progress line for each.
  run = compat(fmt::format("-i {} -o {} -t 32 {}", quoted(picture), quoted(dir / "tiled.png"), model));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::set<std::string> percentages;
  std::istringstream lines(run.output);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line.back() == '%') percentages.insert(line);
  EXPECT_GE(percentages.size(), 10u) << run.output;
  EXPECT_TRUE(percentages.count("0.00%") && percentages.count("100.00%")) << run.output;
  // Lossless WebP: the PNG's pixels exactly; JPEG at quality 100: close to them.
  for (const char* ext : {"png", "webp", "jpg"}) {
    run = compat(
        fmt::format("-i {} -o {} {}", quoted(picture), quoted(dir / (std::string("f.") + ext)), model));
    ASSERT_EQ(run.exit_code, 0) << run.output;
  }
  const Image png = read_image((dir / "f.png").string());
  EXPECT_EQ(read_image((dir / "f.webp").string()).data, png.data) << "WebP must be lossless";
  EXPECT_GE(psnr_8bit(read_image((dir / "f.jpg").string()), png), 45.0) << "JPEG at quality 100";
}

// Upscayl's kind of call: one file, the family name with the scale, jpg and webp outputs by -f or by
// the output's name; a scale other than the model's comes out at that scale.
TEST_F(NcnnCompat, SingleFilesFamiliesFormatsAndScales) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x4");
  const fs::path models = models_folder({"realesr-animevideov3-x4"});
  const fs::path picture = dir / "in.png";
  write_image(make_test_pattern(20, 14), picture.string());
  ShellRun run = compat(fmt::format("-i {} -o {} -s 4 -m {} -n realesr-animevideov3", quoted(picture),
                                    quoted(dir / "out.jpg"), quoted(models)));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(read_image((dir / "out.jpg").string()).width, 80);
  run = compat(fmt::format("-i {} -o {} -s 2 -f png -m {} -n realesr-animevideov3-x4 -x", quoted(picture),
                           quoted(dir / "half.webp"), quoted(models)));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const Image half = read_image((dir / "half.webp").string());  // a file's name says its format
  EXPECT_EQ(half.width, 40);
  EXPECT_EQ(half.height, 28);
  // A name not in the folder falls back to upres's own models.
  run = compat(fmt::format("-i {} -o {} -s 4 -m {} -n realesr-animevideov3", quoted(picture),
                           quoted(dir / "zoo.png"), quoted(dir / "nowhere")));
  EXPECT_EQ(run.exit_code, 0) << run.output;
}

// The help the apps run to check the program, the exit codes, and the name `make install` links.
TEST_F(NcnnCompat, HelpExitCodesAndTheInstalledName) {
  const fs::path prefix = dir / "prefix";
  const ShellRun install =
      shell(fmt::format("'{}' --install '{}' --prefix {}", UPRES_CMAKE, UPRES_BINARY_DIR, quoted(prefix)));
  ASSERT_EQ(install.exit_code, 0) << install.output;
  const fs::path link = prefix / "bin" / "realesrgan-ncnn-vulkan";
  ASSERT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(fs::read_symlink(link), "upres");
  ShellRun help = shell(quoted(link) + " -h");
  EXPECT_EQ(help.exit_code, 255) << "the original's help exits with its -1";
  EXPECT_EQ(help.output.rfind("Usage: realesrgan-ncnn-vulkan -i infile -o outfile [options]...", 0), 0u)
      << help.output;
  for (const char* flag : {"-i input-path", "-o output-path", "-s scale", "-t tile-size", "-m model-path",
                           "-n model-name", "-g gpu-id", "-j load:proc:save", "-x ", "-f format", "-v "})
    EXPECT_NE(help.output.find(flag), std::string::npos) << flag;
  const fs::path picture = dir / "in.png", folder = dir / "folder";
  write_image(make_test_pattern(8, 8), picture.string());
  fs::create_directories(folder);
  struct Bad {
    std::string args, says;
  };
  const std::string in = " -i " + quoted(picture) + " ";
  for (const Bad& bad :
       {Bad{"", "-i and -o are required"}, Bad{in, "-i and -o are required"},
        Bad{"-q 1", "unknown option '-q'"}, Bad{"-s x" + in + "-o b.png", "-s x is not a scale"},
        Bad{"-t 8" + in + "-o b.png", "invalid tilesize argument"},
        Bad{"-t 0,0" + in + "-o b.png", "one per -g device"},
        Bad{"-j 1" + in + "-o b.png", "invalid thread count argument"},
        Bad{"-g 5" + in + "-o b.png", "invalid gpu device"},
        Bad{"-g -3" + in + "-o b.png", "invalid gpu device"},
        Bad{"-j 1:2,2:2" + in + "-o b.png", "invalid jobs_proc thread count argument"},
        Bad{in + "-o b", "invalid outputpath extension type"},
        Bad{"-f gif -i " + quoted(folder) + " -o " + quoted(folder), "invalid format argument"},
        Bad{in + "-o " + quoted(folder), "must be either file or directory at the same time"},
        Bad{in + "-o " + quoted(dir / "o.png") + " -m " + quoted(dir) + " -n nosuchmodel",
            "model 'nosuchmodel' not found"}}) {
    const ShellRun run = shell(quoted(link) + " " + bad.args);
    EXPECT_EQ(run.exit_code, 255) << bad.args;
    EXPECT_NE(run.output.find(bad.says), std::string::npos) << bad.args << "\n" << run.output;
  }
}

// Folders as the original walks them: every file tried, one that is not a picture reported and
// skipped (the run still exits 0), names that differ only in extension kept apart, and a picture
// with alpha asked for as JPEG written as PNG beside it.
TEST_F(NcnnCompat, FoldersNamesAndAlphaAsTheOriginal) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x2");
  const fs::path in = dir / "in", out = dir / "out";
  fs::create_directories(in);
  fs::create_directories(out);
  write_image(make_test_pattern(12, 10, 1), (in / "a.png").string());
  write_image(make_test_pattern(12, 10, 2), (in / "a.webp").string());
  Image alpha = make_test_pattern(10, 8, 3);
  Image rgba(alpha.width, alpha.height, 4);
  for (int y = 0; y < alpha.height; ++y)
    for (int x = 0; x < alpha.width; ++x) {
      for (int c = 0; c < 3; ++c) rgba.at(c, y, x) = alpha.at(c, y, x);
      rgba.at(3, y, x) = float(x) / float(alpha.width);
    }
  write_image(rgba, (in / "b.png").string());
  std::ofstream(in / "notes.txt") << "not a picture";
  const ShellRun run =
      compat(fmt::format("-i {} -o {} -s 2 -f jpg -n realesr-animevideov3-x2", quoted(in), quoted(out)));
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("decode image"), std::string::npos) << run.output;
  EXPECT_TRUE(fs::exists(out / "a.jpg"));
  EXPECT_TRUE(fs::exists(out / "a.webp.jpg")) << run.output;
  EXPECT_TRUE(fs::exists(out / "b.jpg.png")) << run.output;
  EXPECT_EQ(read_image((out / "b.jpg.png").string()).channels, 4);
  EXPECT_FALSE(fs::exists(out / "notes.jpg"));
  // One picture that cannot be read is a failed run.
  const ShellRun one = compat(fmt::format("-i {} -o {} -n realesr-animevideov3-x2 -s 2",
                                          quoted(in / "notes.txt"), quoted(dir / "one.png")));
  EXPECT_EQ(one.exit_code, 255) << one.output;
  EXPECT_NE(one.output.find("decode image"), std::string::npos) << one.output;
}

// `upres models add`: ncnn and ONNX models registered under a name, listed as the user's, run by
// name; bad names, clashes and broken files refused with nothing left behind.
TEST_F(NcnnCompat, ModelsAddRegistersUsersModels) {
  const std::string env = "env UPRES_MODEL_DIR=" + quoted(dir / "cache") + " ";
  const fs::path ours = fs::path(UPRES_SOURCE_DIR) / "models" / "upres-compact-x2.param";
  ASSERT_TRUE(fs::exists(ours));
  auto cli = [&](const std::string& args) {
    return shell(env + fmt::format("'{}' {}", UPRES_CLI_PATH, args));
  };
  ShellRun run = cli("models add " + quoted(ours) + " --name mine");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("added mine: ncnn model, 2x"), std::string::npos) << run.output;
  run = cli("models list");
  EXPECT_NE(run.output.find("mine"), std::string::npos);
  EXPECT_NE(run.output.find("yours"), std::string::npos);
  const fs::path picture = dir / "in.png";
  write_image(make_test_pattern(20, 12), picture.string());
  run = cli(fmt::format("image {} -o {} -m mine", quoted(picture), quoted(dir / "mine.png")));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  run = cli(fmt::format("image {} -o {} -m {}", quoted(picture), quoted(dir / "direct.png"), quoted(ours)));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(read_image((dir / "mine.png").string()).data, read_image((dir / "direct.png").string()).data);
  // The record: format, sha256 of the weights, geometry.
  std::ifstream record(dir / "cache" / "user" / "mine" / "upres-model.json");
  const std::string text((std::istreambuf_iterator<char>(record)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find(file_sha256((fs::path(UPRES_SOURCE_DIR) / "models" / "upres-compact-x2.bin").string())),
            std::string::npos);
  EXPECT_NE(text.find("\"scale\": 2"), std::string::npos) << text;

  // The service and the MCP tool list them beside the zoo's (one list for both).
  const std::string requests =
      R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{}}})"
      "\n"
      R"({"jsonrpc":"2.0","method":"notifications/initialized"})"
      "\n"
      R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_models","arguments":{}}})"
      "\n";
  std::ofstream(dir / "requests.jsonl") << requests;
  run = shell(env + fmt::format("'{}' mcp --root {} < {}", UPRES_CLI_PATH, quoted(dir),
                                quoted(dir / "requests.jsonl")));
  EXPECT_NE(run.output.find("\"name\":\"mine\""), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("upres-compact-x2"), std::string::npos) << run.output;

  run = cli("models verify mine");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("mine"), std::string::npos);
  EXPECT_NE(run.output.find("ok (yours)"), std::string::npos) << run.output;

  run = cli("models add " + quoted(ours) + " --name mine");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("already added; use --replace"), std::string::npos) << run.output;
  EXPECT_EQ(cli("models add " + quoted(ours) + " --name mine --replace").exit_code, 0);
  run = cli("models add " + quoted(ours) + " --name upres-compact-x2");
  EXPECT_NE(run.output.find("is the name of a zoo model"), std::string::npos) << run.output;
  run = cli("models add " + quoted(ours) + " --name 'a/b'");
  EXPECT_NE(run.output.find("cannot name a model"), std::string::npos) << run.output;
  // An add killed mid-copy left its staging folder: the next add sweeps it.
  // The PID of a process that has exited and been reaped: surely not running.
  const pid_t gone = fork();
  if (gone == 0) _exit(0);
  ASSERT_GT(gone, 0);
  waitpid(gone, nullptr, 0);
  const fs::path abandoned = dir / "cache" / "user" / fmt::format(".adding-old-{}", gone);
  fs::create_directories(abandoned);
  EXPECT_EQ(cli("models add " + quoted(ours) + " --name other").exit_code, 0);
  EXPECT_FALSE(fs::exists(abandoned));
  const fs::path broken = dir / "broken.onnx";
  std::ofstream(broken) << "\x08\x07\x12 not really";
  run = cli("models add " + quoted(broken));
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("not a readable ONNX model"), std::string::npos) << run.output;
  for (const auto& e : fs::directory_iterator(dir / "cache" / "user"))
    EXPECT_TRUE(e.path().filename() == "mine" || e.path().filename() == "other")
        << "left behind: " << e.path();
}

}  // namespace
}  // namespace upres::test
