// The upres binary: successful runs and every error a user can cause, each with a clear message
// and a non-zero exit, and nothing left at the destination.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "test_support.hpp"
#include "upres/files.hpp"
#include "upres/upscaler.hpp"

namespace upres::test {
namespace {

namespace fs = std::filesystem;

struct Result {
  int exit_code;
  std::string output;
};

// Runs the CLI with `args`; `env` (e.g. "UPRES_MODEL_DIR=/x") is set for that run only.
Result run_cli(const std::string& args, const std::string& env = "") {
  std::string cmd =
      (env.empty() ? "" : "env " + env + " ") + std::string(UPRES_CLI_PATH) + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
  int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/upres-cli-XXXXXX";
    dir = mkdtemp(tmpl);
    input = (dir / "in.png").string();
    write_image(make_test_pattern(24, 16), input);
  }
  void TearDown() override { fs::remove_all(dir); }
  fs::path dir;
  std::string input;
};

// Without -m: our model for 2x (shipped, never missing), realesr-animevideov3-x4 for -s 4.
TEST_F(Cli, UpscalesAnImage) {
  std::string out = (dir / "out.webp").string();
  Result r = run_cli("image " + input + " -o " + out + " --tile 16");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("upres-compact-x2"), std::string::npos) << r.output;
  Image img = read_image(out);
  EXPECT_EQ(img.width, 48);
  EXPECT_EQ(img.height, 32);
  if (!model_installed(*find_model_info("realesr-animevideov3-x4"))) return;
  Result x4 = run_cli("image " + input + " -o " + (dir / "x4.png").string() + " -s 4");
  EXPECT_EQ(x4.exit_code, 0) << x4.output;
  EXPECT_NE(x4.output.find("realesr-animevideov3-x4"), std::string::npos) << x4.output;
  EXPECT_EQ(read_image((dir / "x4.png").string()).width, 96);
}

// Images at a target size: the model whose scale reaches it, then a resample to the exact size.
TEST_F(Cli, ImagesComeOutAtTheSizeAsked) {
  UPRES_REQUIRE_MODEL("upres-compact-x2");
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x3");
  struct Case {
    std::string args;
    int width, height;
    const char* model;
  };
  for (const Case& c : {Case{"-w 100", 100, 67, "realesr-animevideov3-x3"},
                        Case{"-h 40", 60, 40, "upres-compact-x2"}, Case{"-s 1.5", 72, 48, "upres-compact-x2"},
                        Case{"--resolution 90p", 135, 90, "realesr-animevideov3-x3"},
                        Case{"--resolution 101x33", 101, 33, "realesr-animevideov3-x3"}}) {
    const std::string out = (dir / "sized.png").string(), source = (dir / "48x32.png").string();
    write_image(make_test_pattern(48, 32, 5), source);
    Result r = run_cli("image " + source + " -o " + out + " --overwrite " + c.args);
    ASSERT_EQ(r.exit_code, 0) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.model), std::string::npos) << c.args << "\n" << r.output;
    const Image img = read_image(out);
    EXPECT_EQ(img.width, c.width) << c.args;
    EXPECT_EQ(img.height, c.height) << c.args;
  }
  Result both = run_cli("image " + input + " -o " + (dir / "x.png").string() + " -s 2 -w 100");
  EXPECT_NE(both.exit_code, 0);
  EXPECT_NE(both.output.find("not both"), std::string::npos) << both.output;
  Result word = run_cli("image " + input + " -o " + (dir / "x.png").string() + " --resolution huge");
  EXPECT_NE(word.exit_code, 0);
  EXPECT_NE(word.output.find("720p"), std::string::npos) << word.output;
}

TEST_F(Cli, UpscalesAFolder) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x4");
  fs::create_directory(dir / "in");
  write_image(make_test_pattern(12, 10, 1), (dir / "in" / "a.png").string());
  write_image(make_test_pattern(10, 12, 2), (dir / "in" / "b.jpg").string());
  Result r = run_cli("image " + (dir / "in").string() + " -o " + (dir / "out").string() +
                     " -m realesr-animevideov3-x4 -s 2 --format png");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_image((dir / "out" / "a.png").string()).width, 24);
  EXPECT_EQ(read_image((dir / "out" / "b.png").string()).height, 24);
}

// A folder run tries every file: a damaged one is reported at the end and the exit status says
// so; subfolders are named as left out, or taken with --recursive into the same subfolders of the
// output; --skip-existing finishes an interrupted run without redoing what is there.
TEST_F(Cli, FolderRunsGoOnPastFailuresAndSayWhatTheySkipped) {
  UPRES_REQUIRE_MODEL("upres-compact-x2");
  const fs::path in = dir / "in", out = dir / "out";
  fs::create_directories(in / "sub");
  write_image(make_test_pattern(12, 10, 1), (in / "a.png").string());
  std::ofstream(in / "b.png") << "not a picture";
  write_image(make_test_pattern(10, 12, 2), (in / "c.jpg").string());
  write_image(make_test_pattern(8, 8, 3), (in / "sub" / "d.png").string());
  const std::string base =
      "image " + in.string() + " -o " + out.string() + " -m upres-compact-x2 --format png";
  Result r = run_cli(base);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(fs::exists(out / "a.png"));
  EXPECT_TRUE(fs::exists(out / "c.png")) << "the file after the damaged one is done too";
  EXPECT_FALSE(fs::exists(out / "b.png"));
  EXPECT_FALSE(fs::exists(out / "sub"));
  EXPECT_NE(r.output.find("3 images: 2 done, 0 skipped, 1 failed"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("failed: " + (in / "b.png").string()), std::string::npos) << r.output;
  EXPECT_NE(r.output.find((in / "sub").string() + ": a subfolder, left out"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find((in / "b.png").string() + ": " + (in / "b.png").string()), std::string::npos)
      << "the path is said once: " << r.output;
  // A rerun with --recursive and --skip-existing: only the subfolder's picture is new.
  fs::remove(in / "b.png");
  const auto before = fs::last_write_time(out / "a.png");
  Result again = run_cli(base + " --recursive --skip-existing");
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("3 images: 1 done, 2 skipped, 0 failed"), std::string::npos) << again.output;
  EXPECT_EQ(fs::last_write_time(out / "a.png"), before);
  EXPECT_EQ(read_image((out / "sub" / "d.png").string()).width, 16);
  // Without --skip-existing the outputs there are errors, each named, unless --overwrite.
  Result exists = run_cli(base + " --recursive");
  EXPECT_EQ(exists.exit_code, 1);
  EXPECT_NE(exists.output.find("3 images: 0 done, 0 skipped, 3 failed"), std::string::npos) << exists.output;

  // Videos alike, and a JSON final line for the damaged one.
  const fs::path vin = dir / "vin", vout = dir / "vout";
  fs::create_directories(vin / "sub");
  ASSERT_EQ(run_cli("sample -o " + (vin / "a.mp4").string() + " --size 32x24 --frames 2").exit_code, 0);
  std::ofstream(vin / "b.mp4") << "not a video";
  ASSERT_EQ(run_cli("sample -o " + (vin / "sub" / "c.mkv").string() + " --size 32x24 --frames 2").exit_code,
            0);
  Result v = run_cli("video " + vin.string() + " -o " + vout.string() + " --mode none --progress json");
  EXPECT_EQ(v.exit_code, 1) << v.output;
  EXPECT_TRUE(fs::exists(vout / "a.mp4"));
  EXPECT_NE(v.output.find("2 videos: 1 done, 0 skipped, 1 failed"), std::string::npos) << v.output;
  EXPECT_NE(v.output.find(R"("phase":"failed")"), std::string::npos) << v.output;
  EXPECT_NE(v.output.find((vin / "sub").string() + ": a subfolder, left out"), std::string::npos) << v.output;
  Result vr =
      run_cli("video " + vin.string() + " -o " + vout.string() + " --mode none --recursive --skip-existing");
  EXPECT_EQ(vr.exit_code, 1) << vr.output;
  EXPECT_NE(vr.output.find("3 videos: 1 done, 1 skipped, 1 failed"), std::string::npos) << vr.output;
  EXPECT_TRUE(fs::exists(vout / "sub" / "c.mkv"));
}

TEST_F(Cli, UserErrorsAreClearAndLeaveNothingBehind) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x2");
  const std::string out = (dir / "out.png").string();
  struct Case {
    std::string args, expect;
  } cases[] = {
      {"image /nonexistent.png -o " + out, "no such file"},
      {"image " + input + " -o " + out + " -m realesrgan-x9", "upres models list"},
      {"image " + input + " -o /nonexistent-dir/out.png", "cannot write /nonexistent-dir/out.png"},
      {"image " + input + " -o " + out + " --max-size 40", "over the cap"},
      {"image " + input + " -o " + (dir / "out.gif").string(), "use .png"},
      {"image " + input + " -o " + out + " --frobnicate", "frobnicate"},
      {"image " + input + " -o " + out + " --backend gpu9000", "unknown backend"},
      {"image " + input + " -o " + out + " --precision fp4", "unknown precision 'fp4'"},
      {"image " + input + " -o " + out + " -m " + (dir / "uncalibrated.param").string() + " --precision int8",
       "upres models calibrate"},
      {"image " + input + " -o " + out + " --max-memory lots", "--max-memory"},
      {"image " + input + " -o " + out + " -s 99", "-s"},
      {"image " + (dir / "garbage.png").string() + " -o " + out, "not a PNG"},
      // Numbers out of range name the range.
      {"image " + input + " -o " + out + " --threads 100000", "0..256"},
      {"image " + input + " -o " + out + " --tile 5", "16..65536"},
      {"image " + input + " -o " + out + " --tile-overlap 999", "-1..256"},
      {"image " + input + " -o " + out + " --max-memory 1K", "1M..16T"},
      {"image " + input + " -o " + out + " --max-size 4", "16..65536"},
      {"image " + input + " -o " + out + " --quality 0", "100"},
      // Never over the input itself.
      {"image " + input + " -o " + input + " --overwrite", "input itself"},
  };
  {
    std::FILE* f = std::fopen((dir / "garbage.png").c_str(), "w");
    std::fputs("not an image", f);
    std::fclose(f);
  }
  // A model known by path has no table until its user makes one.
  copy_model_with_other_weights(std::string(UPRES_SOURCE_DIR) + "/models/upres-compact-x2.param",
                                std::string(UPRES_SOURCE_DIR) + "/models/upres-compact-x2.bin",
                                dir / "uncalibrated.param", dir / "uncalibrated.bin");
  for (const Case& c : cases) {
    Result r = run_cli(c.args);
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_FALSE(fs::exists(out)) << c.args;
  }
  for (const auto& entry : fs::directory_iterator(dir))
    EXPECT_EQ(entry.path().filename().string().find(".upres-"), std::string::npos) << "temporary left behind";
}

TEST_F(Cli, CalibratesAModelAndUpscalesInInt8) {
  fs::copy_file(std::string(UPRES_SOURCE_DIR) + "/models/upres-compact-x2.param", dir / "mine.param");
  fs::copy_file(std::string(UPRES_SOURCE_DIR) + "/models/upres-compact-x2.bin", dir / "mine.bin");
  fs::create_directories(dir / "pictures" / "more");
  write_image(make_test_pattern(40, 36, 1), (dir / "pictures" / "a.png").string());
  write_image(make_test_pattern(36, 40, 2), (dir / "pictures" / "more" / "b.jpg").string());
  const std::string model = (dir / "mine.param").string(), pictures = (dir / "pictures").string();
  Result r = run_cli("models calibrate " + model + " --images " + pictures + " --crop 32");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("on 2 pictures"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(dir / "mine.int8.json"));
  r = run_cli("models calibrate " + model + " --images " + pictures);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--overwrite"), std::string::npos) << r.output;
  r = run_cli("models calibrate " + model + " --overwrite --images " + (dir / "nowhere").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("no such folder"), std::string::npos) << r.output;

  const std::string out = (dir / "out.png").string();
  r = run_cli("image " + input + " -o " + out + " -m " + model + " --precision int8");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_GE(psnr_8bit(read_image(out), Upscaler(Model::load(model), {}).upscale(read_image(input))), 33.0);
}

TEST_F(Cli, RefusesToOverwriteUnlessAsked) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x2");
  const std::string out = (dir / "out.png").string();
  ASSERT_EQ(run_cli("image " + input + " -o " + out).exit_code, 0);
  Result again = run_cli("image " + input + " -o " + out);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("--overwrite"), std::string::npos);
  EXPECT_EQ(run_cli("image " + input + " -o " + out + " --overwrite").exit_code, 0);
}

// The version is CMake's project(upres VERSION ...), nowhere else.
TEST_F(Cli, VersionIsTheProjects) {
  Result r = run_cli("--version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, std::string("upres ") + UPRES_PROJECT_VERSION + "\n");
}

// `upres devices` lists every backend's devices, as text and as JSON lines.
TEST_F(Cli, DevicesListsEveryBackend) {
  Result text = run_cli("devices");
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_EQ(text.output.rfind("cpu ", 0), 0u) << text.output;
  EXPECT_NE(text.output.find("\nreference "), std::string::npos) << text.output;
  Result lines = run_cli("devices --json");
  ASSERT_EQ(lines.exit_code, 0) << lines.output;
  std::istringstream in(lines.output);
  std::set<std::string> backends;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    const std::string backend = j.at("backend");
    backends.insert(backend);
    EXPECT_GT(j.at("memory_bytes").get<int64_t>(), 0) << line;
    if (backend == "vulkan") {  // lavapipe here: a software GPU with 16-bit floats
      EXPECT_NE(j.at("kind"), "cpu") << line;
      EXPECT_GT(j.at("subgroup_size").get<int>(), 0) << line;
      EXPECT_TRUE(j.contains("fast_f16") && j.contains("cooperative_matrix")) << line;
      continue;
    }
    EXPECT_EQ(j.at("kind"), "cpu") << line;
    EXPECT_GT(j.at("threads").get<int>(), 0) << line;
  }
  std::set<std::string> expected{"cpu", "reference"};
  if (backend_available("vulkan")) {
    expected.insert("vulkan");
    EXPECT_NE(text.output.find("\nvulkan "), std::string::npos) << text.output;
  }
  EXPECT_EQ(backends, expected);
}

// With no Vulkan driver at all (the loader pointed at none), --backend vulkan says what to install,
// exits non-zero and writes nothing; auto quietly takes the cpu.
TEST_F(Cli, VulkanWithoutADriverSaysWhatToInstall) {
  const std::vector<std::string> names = backend_names();
  if (std::find(names.begin(), names.end(), "vulkan") == names.end())
    GTEST_SKIP() << "built without the Vulkan backend";
  write_image(make_test_pattern(20, 14), (dir / "in.png").string());
  const std::string no_driver = "VK_ICD_FILENAMES=/nonexistent.json VK_DRIVER_FILES=/nonexistent.json";
  Result r = run_cli(
      "image " + (dir / "in.png").string() + " -o " + (dir / "out.png").string() + " --backend vulkan",
      no_driver);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("no Vulkan device found"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("mesa-vulkan-drivers"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "out.png"));
  Result devices = run_cli("devices", no_driver);
  EXPECT_EQ(devices.exit_code, 0) << devices.output;
  EXPECT_NE(devices.output.find("vulkan     -  none"), std::string::npos) << devices.output;
  Result automatic =
      run_cli("image " + (dir / "in.png").string() + " -o " + (dir / "auto.png").string(), no_driver);
  EXPECT_EQ(automatic.exit_code, 0) << automatic.output;
}

#if !UPRES_WITH_SERVER || !UPRES_WITH_MCP
// A service front end switched off at build time (UPRES_BUILD_SERVER, UPRES_BUILD_MCP) says so
// instead of starting.
TEST_F(Cli, ServiceFrontEndsNotBuiltInSaySo) {
  if (!UPRES_WITH_SERVER) {
    Result r = run_cli("serve --port 0 --root " + dir.string());
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("built without the HTTP service"), std::string::npos) << r.output;
  }
  if (!UPRES_WITH_MCP) {
    Result r = run_cli("mcp --root " + dir.string() + " </dev/null");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("built without the MCP server"), std::string::npos) << r.output;
  }
}
#endif

TEST_F(Cli, ModelsListAndVerify) {
  Result list = run_cli("models list");
  EXPECT_EQ(list.exit_code, 0);
  EXPECT_NE(list.output.find("realesr-animevideov3-x4"), std::string::npos);
  EXPECT_NE(list.output.find("LICENSE"), std::string::npos);
  UPRES_REQUIRE_MODEL("waifu2x-upconv7-x2");
  Result verify = run_cli("models verify waifu2x-upconv7-x2 realesr-animevideov3-x2");
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_NE(verify.output.find("2 checked, 0 failed"), std::string::npos) << verify.output;
}

TEST_F(Cli, VerifyCatchesACorruptModel) {
  UPRES_REQUIRE_MODEL("waifu2x-upconv7-x2");
  // A private cache holding a truncated copy of one model.
  const ModelInfo* info = find_model_info("waifu2x-upconv7-x2");
  fs::path cache = dir / "cache";
  fs::path param = cache / info->package / info->source.files[0],
           bin = cache / info->package / info->source.files[1];
  fs::create_directories(param.parent_path());
  fs::copy_file(model_source(*info).files[0], param);
  fs::copy_file(model_source(*info).files[1], bin);
  fs::resize_file(bin, fs::file_size(bin) / 2);
  const std::string env = "UPRES_MODEL_DIR=" + cache.string();
  Result verify = run_cli("models verify waifu2x-upconv7-x2", env);
  EXPECT_NE(verify.exit_code, 0);
  EXPECT_NE(verify.output.find("checksum mismatch"), std::string::npos) << verify.output;
  Result load = run_cli("image " + input + " -o " + (dir / "o.png").string() + " -m waifu2x-upconv7-x2", env);
  EXPECT_NE(load.exit_code, 0);
  EXPECT_NE(load.output.find("truncated"), std::string::npos) << load.output;
  EXPECT_FALSE(fs::exists(dir / "o.png"));
}

// Without -m, the default 2x model is ours (shipped in the repository, so never missing).
TEST_F(Cli, VideoWithFfmpegSpellingsJsonProgressAndProbe) {
  const std::string clip = (dir / "clip.mkv").string(), out = (dir / "out.mp4").string();
  ASSERT_EQ(run_cli("sample -o " + clip + " --size 48x32 --frames 12").exit_code, 0);

  Result probe = run_cli("probe " + clip + " --json");
  ASSERT_EQ(probe.exit_code, 0) << probe.output;
  const auto plan = nlohmann::json::parse(probe.output);
  EXPECT_EQ(plan["output_width"], 96);
  EXPECT_EQ(plan["output_height"], 64);
  EXPECT_EQ(plan["options"]["input"], clip);
  EXPECT_EQ(plan["model"], "upres-compact-x2");
  EXPECT_EQ(plan["streams"].size(), 3u);
  EXPECT_EQ(plan["streams"][2]["action"], "convert to mov_text");
  EXPECT_FALSE(fs::exists(out)) << "probing writes nothing";
  // The estimate comes from timed runs: the median between the fastest and the slowest.
  const double estimate = plan["estimated_seconds"], low = plan["estimated_seconds_low"],
               high = plan["estimated_seconds_high"];
  EXPECT_GT(estimate, 0);
  EXPECT_LE(low, estimate);
  EXPECT_LE(estimate, high);
  Result text = run_cli("probe " + clip + " --resolution 100p");
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("resampled"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("timed runs gave"), std::string::npos) << text.output;
  // A plan that is refused still shows the streams, then why.
  Result refused = run_cli("probe " + clip + " --max-size 40");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("#0 video"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("--max-size"), std::string::npos) << refused.output;

  Result r = run_cli("video " + clip + " -o " + out +
                     " -c:v libx264 -crf 30 -preset ultrafast -g 6 --progress json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::istringstream lines(r.output);
  std::string line, last_phase;
  int progress_lines = 0;
  nlohmann::json result;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '{') continue;
    const auto j = nlohmann::json::parse(line);
    if (j["phase"] == "result")
      result = j;
    else
      ++progress_lines, last_phase = j["phase"];
  }
  EXPECT_GE(progress_lines, 2);
  EXPECT_EQ(last_phase, "done");
  EXPECT_EQ(result["frames"], 12);
  EXPECT_EQ(result["width"], 96);
  EXPECT_TRUE(fs::exists(out));
}

TEST_F(Cli, VideoErrorsAndFolders) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x2");
  fs::create_directory(dir / "in");
  ASSERT_EQ(run_cli("sample -o " + (dir / "in" / "a.mp4").string() + " --size 32x24 --frames 3").exit_code,
            0);
  ASSERT_EQ(run_cli("sample -o " + (dir / "in" / "b.webm").string() + " --size 24x32 --frames 3").exit_code,
            0);
  const std::string clip = (dir / "in" / "a.mp4").string(), out = (dir / "out.mp4").string();
  struct Case {
    std::string args, expect;
  } cases[] = {
      {"video /nonexistent.mp4 -o " + out, "no such file"},
      {"video " + clip + " -o " + (dir / "out.gif").string(), "GIF"},
      {"video " + clip + " -o " + out + " -c:v nope264", "libx264"},
      {"video " + clip + " -o " + out + " --crf high", "is not a whole number"},
      {"video " + clip + " -o " + out + " --preset no-such", "no preset"},
      {"video " + clip + " -o " + out + " --audio-tracks 0,x", "--audio-tracks"},
      {"video " + clip + " -o " + out + " --max-size 40", "--max-size"},
      {"video " + clip + " -o " + out + " --progress loud", "--progress"},
      {"video " + clip + " -o " + out + " --volume 50", "-c:a aac"},
      {"video " + clip + " -o " + (dir / "out.webm").string() + " -c:v libx264",
       "a .webm file cannot hold h264 video (what libx264 makes)"},
      {"video " + clip + " -o " + out + " -s abc", "is not a number"},
      {"video " + clip + " -o " + out + " --frames 1.5", "is not a whole number"},
      {"video " + clip + " -o " + out + " --audio-tracks 3", "audio tracks 0..0"},
      {"video " + clip + " -o " + out + " --resolution big", "720p"},
      {"video " + clip + " -o " + out + " -s 2 -w 100", "not both"},
  };
  for (const Case& c : cases) {
    Result r = run_cli(c.args);
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_FALSE(fs::exists(out)) << c.args;
  }
  // x265 prints through its own logger; only its errors may reach the terminal.
  Result quiet = run_cli("video " + clip + " -o " + (dir / "quiet.mkv").string() +
                         " -c:v libx265 --mode none --progress none");
  EXPECT_EQ(quiet.exit_code, 0) << quiet.output;
  EXPECT_EQ(quiet.output.find("x265 ["), std::string::npos) << quiet.output;
  // A folder of videos, with a preset file and typed options over it.
  std::ofstream(dir / "mine.json") << R"({"c:v": "libx264", "preset": "ultrafast", "crf": 30})";
  Result batch = run_cli("video " + (dir / "in").string() + " -o " + (dir / "out").string() + " --preset " +
                         (dir / "mine.json").string() + " --format mkv");
  ASSERT_EQ(batch.exit_code, 0) << batch.output;
  EXPECT_NE(batch.output.find("2 videos: 2 done, 0 skipped, 0 failed"), std::string::npos) << batch.output;
  EXPECT_TRUE(fs::exists(dir / "out" / "a.mkv"));
  EXPECT_TRUE(fs::exists(dir / "out" / "b.mkv"));
}

TEST_F(Cli, VideoNumbersOutOfRangeAndTheInputItselfAreRefused) {
  const std::string clip = (dir / "clip.mp4").string(), out = (dir / "out.mp4").string();
  ASSERT_EQ(run_cli("sample -o " + clip + " --size 64x48 --frames 4").exit_code, 0);
  struct Case {
    std::string args, expect;
  } cases[] = {
      {"--threads 100000", "0..256"},
      {"-crf 99", "0..51"},
      {"-c:v libvpx-vp9 -crf 64", "0..63"},
      {"--fps 5000", "0.01..1000"},
      {"--frames -1", "0..1000000000"},
      {"-c:a aac --volume 2000", "0..1000"},
      {"-b:v 1", "1000..2000000000"},
      {"-c:a aac -b:a 9G", "1000..4000000"},
      {"-g -3", "0..100000"},
      {"--tile 5", "16..65536"},
      {"--audio-tracks 5000", "0..1023"},
      {"-s 99", "0..16"},
      {"--max-memory 10", "1M..16T"},
      {"--ss 1e9", "0..100000000"},
  };
  for (const Case& c : cases) {
    const std::string target = c.args.find("vp9") != std::string::npos ? (dir / "out.webm").string() : out;
    Result r = run_cli("video " + clip + " -o " + target + " " + c.args);
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.args << "\n" << r.output;
  }
  Result self = run_cli("video " + clip + " -o " + clip + " --overwrite");
  EXPECT_NE(self.exit_code, 0);
  EXPECT_NE(self.output.find("input itself"), std::string::npos) << self.output;
  EXPECT_TRUE(fs::exists(clip));
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    EXPECT_TRUE(name == "clip.mp4" || name == "in.png") << "left behind: " << name;
  }
}

// Sizes and offsets past 32 bits are refused, never wrapped into small valid-looking ones, and a
// size is digits: "1e3x1e3" is not 1000x1000 (nor 1x1).
TEST_F(Cli, SizesPast32BitsAndNonDigitsAreRefused) {
  const std::string clip = (dir / "clip.mp4").string(), out = (dir / "out.mp4").string();
  ASSERT_EQ(run_cli("sample -o " + clip + " --size 64x48 --frames 2").exit_code, 0);
  struct Case {
    std::string args, expect;
  } cases[] = {
      {"--mode none --crop 4294967328x32+0+0", "--crop '4294967328x32+0+0' is not"},
      {"--mode none --crop 32x32+4294967296+0", "is not WIDTHxHEIGHT+X+Y"},
      {"--mode none --crop 32x-32+0+0", "is not WIDTHxHEIGHT+X+Y"},
      {"--mode none --crop 1e1x32+0+0", "is not WIDTHxHEIGHT+X+Y"},
      {"--resolution 4294967424x4294967392", "sides must be 16..65536"},
      {"--resolution 128x4294967392", "sides must be 16..65536"},
      {"--resolution 1e3x1e3", "is not a size"},
      {"--resolution 0x10p", "is not a size"},
      {"--resolution 4294967776p", "sides must be 16..65536"},
      {"-w 4294967328", "4294967328"},
      {"-h 4294967328", "4294967328"},
      {"--audio-tracks 4294967296", "0..1023"},
      {"--max-memory 1e30", "too large"},
      {"--preset " + (dir / "p.json").string(), "an integer of a sensible size"},
  };
  std::ofstream(dir / "p.json") << R"({"width": 4294967328})";
  for (const Case& c : cases) {
    Result r = run_cli("video " + clip + " -o " + out + " " + c.args);
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_FALSE(fs::exists(out)) << c.args;
  }
  Result image =
      run_cli("image " + input + " -o " + (dir / "o.png").string() + " --resolution 4294967328x32");
  EXPECT_NE(image.exit_code, 0);
  EXPECT_NE(image.output.find("sides must be 16..65536"), std::string::npos) << image.output;
  Result sample = run_cli("sample -o " + (dir / "s.png").string() + " --size 4294967328x32");
  EXPECT_NE(sample.exit_code, 0);
  EXPECT_NE(sample.output.find("is not WIDTHxHEIGHT"), std::string::npos) << sample.output;
}

// A model "file" that is a device or a pipe is refused at once, never read until memory runs out
// or waited on for ever.
TEST_F(Cli, ModelPathsThatAreNotRegularFilesAreRefused) {
  const fs::path zero = dir / "zero.onnx", fifo = dir / "fifo.onnx";
  fs::create_symlink("/dev/zero", zero);
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  const std::string env = "UPRES_MODEL_DIR=" + (dir / "cache").string();
  for (const fs::path& model : {zero, fifo}) {
    // `timeout` ends a run that hangs: a hang fails the test rather than the suite.
    Result r = run_cli("image " + input + " -o " + (dir / "o.png").string() + " -m " + model.string(),
                       env + " timeout 60");
    EXPECT_EQ(r.exit_code, 1) << model << "\n" << r.output;
    EXPECT_NE(r.output.find("not a file"), std::string::npos) << r.output;
    r = run_cli("models add " + model.string() + " --name dev", env + " timeout 60");
    EXPECT_EQ(r.exit_code, 1) << model << "\n" << r.output;
    EXPECT_NE(r.output.find("not a file"), std::string::npos) << r.output;
  }
  EXPECT_FALSE(fs::exists(dir / "o.png"));
}

// Runs started together on one new work folder: exactly one owns the plan and runs; the others
// are refused, and no output holds segments made with other options. Repeated, as races are.
TEST_F(Cli, OneRunOwnsAWorkFolder) {
  const std::string clip = (dir / "clip.mp4").string();
  ASSERT_EQ(run_cli("sample -o " + clip + " --size 64x48 --frames 75").exit_code, 0);
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    const fs::path work = dir / fmt::format("w{}", round);
    std::string script;
    for (int crf : {10, 20, 30})
      script += fmt::format(
          "('{0}' video '{1}' -o '{2}/r{3}-{4}.mp4' --work-dir '{5}' --segment-seconds 1 "
          "--mode none -crf {3} --progress none > '{2}/log{3}' 2>&1; echo $? > '{2}/rc{3}') & ",
          UPRES_CLI_PATH, clip, dir.string(), crf, round, work.string());
    shell(script + "wait");
    int winners = 0, winner = 0;
    for (int crf : {10, 20, 30}) {
      std::ifstream rc(dir / fmt::format("rc{}", crf));
      int code = -1;
      rc >> code;
      std::ifstream log_file(dir / fmt::format("log{}", crf));
      const std::string log((std::istreambuf_iterator<char>(log_file)), std::istreambuf_iterator<char>());
      const fs::path output = dir / fmt::format("r{}-{}.mp4", crf, round);
      if (code == 0) {
        ++winners;
        winner = crf;
        EXPECT_TRUE(fs::exists(output));
      } else {
        EXPECT_TRUE(log.find("was planned with crf") != std::string::npos ||
                    log.find("in use by another") != std::string::npos)
            << log;
        EXPECT_FALSE(fs::exists(output)) << log;
      }
    }
    EXPECT_EQ(winners, 1);
    std::ifstream manifest(work / "manifest.json");
    const auto plan = nlohmann::json::parse(manifest);
    EXPECT_EQ(plan["plan"]["options"]["crf"], winner);
    // A later run with another crf is refused too.
    Result later = run_cli("video " + clip + " -o " + (dir / "later.mp4").string() + " --work-dir " +
                           work.string() + " --segment-seconds 1 --mode none -crf 40");
    EXPECT_NE(later.exit_code, 0);
    EXPECT_NE(later.output.find("was planned with crf"), std::string::npos) << later.output;
  }
}

// The commands upres prints for the user to paste next quote a work folder's name: one named
// with $(...) is pasted as a name, not run.
TEST_F(Cli, CommandsToRunNextAreShellQuoted) {
  const std::string clip = (dir / "clip.mp4").string();
  ASSERT_EQ(run_cli("sample -o " + clip + " --size 64x48 --frames 4").exit_code, 0);
  const fs::path work = dir / "w $(touch pwned) 'x'";
  std::string quoted_work = "'";  // as typed at a shell prompt: the test must not run it either
  for (char c : work.string()) quoted_work += c == '\'' ? std::string("'\\''") : std::string(1, c);
  quoted_work += "'";
  Result r = run_cli("video " + clip + " -o " + (dir / "o.mp4").string() +
                     " --mode none --plan-only --work-dir " + quoted_work);
  EXPECT_FALSE(fs::exists(dir / "pwned"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string line = r.output.substr(r.output.find("upres segment join "));
  const std::string command = line.substr(0, line.find('`'));
  // Paste exactly what was printed into a shell, with `echo` in place of upres.
  const std::string echoed =
      shell("cd '" + dir.string() + "' && echo " + command.substr(std::string("upres ").size())).output;
  EXPECT_FALSE(fs::exists(dir / "pwned")) << command;
  EXPECT_NE(echoed.find(work.string()), std::string::npos) << command << "\n" << echoed;
}

// File names are bytes, not always UTF-8: JSON progress still comes out (with U+FFFD for them).
TEST_F(Cli, FileNamesThatAreNotUtf8StillGiveJsonProgress) {
  const std::string clip = (dir / "clip\xff.mp4").string(), out = (dir / "out\xfe.mp4").string();
  ASSERT_EQ(run_cli("sample -o '" + clip + "' --size 64x48 --frames 3").exit_code, 0);
  Result r = run_cli("video '" + clip + "' -o '" + out + "' --progress json");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"phase\":\"result\""), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(out));
}

// Starts `upres video` on a clip long enough to interrupt; returns once frames are flowing.
struct RunningVideo {
  pid_t pid = -1;
  FILE* out = nullptr;
  RunningVideo(const std::string& clip, const std::string& output) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    pid = fork();
    if (pid == 0) {
      dup2(fds[1], 1);
      dup2(fds[1], 2);
      close(fds[0]);
      execl(UPRES_CLI_PATH, "upres", "video", clip.c_str(), "-o", output.c_str(), "--progress", "json",
            "-preset", "ultrafast", "--threads", "1", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    out = fdopen(fds[0], "r");
    char buf[4096];
    while (std::fgets(buf, sizeof buf, out))
      if (std::string(buf).find("\"frame\":2") != std::string::npos) break;
  }
  // Sends `sig`; returns the exit code (-1 when killed) and what the process printed.
  std::pair<int, std::string> stop(int sig) {
    kill(pid, sig);
    std::string rest;
    char buf[4096];
    while (std::fgets(buf, sizeof buf, out)) rest += buf;
    std::fclose(out);
    int status = 0;
    waitpid(pid, &status, 0);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, rest};
  }
};

std::vector<std::string> partial_files(const fs::path& dir) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().find(".upres-") != std::string::npos)
      found.push_back(entry.path().filename().string());
  return found;
}

// A killed run leaves a partial file: a folder run does not take it for a video, and the next run
// to the same destination removes it.
TEST_F(Cli, PartialFilesOfAKilledRunAreSkippedAndCleanedUp) {
  const std::string clip = (dir / "clip.mp4").string(), out = (dir / "out.mp4").string();
  ASSERT_EQ(run_cli("sample -o " + clip + " --size 160x90 --frames 300").exit_code, 0);
  RunningVideo video(clip, out);
  video.stop(SIGKILL);
  ASSERT_EQ(partial_files(dir).size(), 1u) << "kill -9 should leave its partial file for this test";
  EXPECT_TRUE(is_partial_output((dir / partial_files(dir)[0]).string()));
  Result folder = run_cli("video " + dir.string() + " -o " + (dir / "all").string() + " --frames 2");
  EXPECT_EQ(folder.exit_code, 0) << folder.output;
  EXPECT_NE(folder.output.find("1 videos: 1 done, 0 skipped, 0 failed"), std::string::npos) << folder.output;
  Result again = run_cli("video " + clip + " -o " + out + " --frames 2");
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_TRUE(fs::exists(out));
  EXPECT_TRUE(partial_files(dir).empty()) << partial_files(dir)[0];
}

// True once process `pid` has a handler for `sig` (its SigCgt mask in /proc), within 60 s.
bool catches_signal(pid_t pid, int sig) {
  for (int i = 0; i < 1200; ++i) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line))
      if (line.rfind("SigCgt:", 0) == 0 && (std::stoull(line.substr(7), nullptr, 16) >> (sig - 1) & 1))
        return true;
    usleep(50'000);
  }
  return false;
}

// A signal during an image run ends it at once (exit 130) and leaves nothing at the destination.
TEST_F(Cli, ImageRunsStopOnSignalsWithNothingLeft) {
  const std::string big = (dir / "big.png").string(), out = (dir / "big-2x.png").string();
  write_image(make_test_pattern(400, 300), big);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    if (pid == 0) {
      dup2(fds[1], 2);
      close(fds[0]);
      // The reference backend takes seconds on this picture: time enough to interrupt it.
      execl(UPRES_CLI_PATH, "upres", "image", big.c_str(), "-o", out.c_str(), "--backend", "reference",
            "--threads", "1", "--precision", "f32", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    ASSERT_TRUE(catches_signal(pid, sig)) << "the image run never installed its handler";
    usleep(200'000);
    kill(pid, sig);
    int status = 0;
    waitpid(pid, &status, 0);
    close(fds[0]);
    EXPECT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 130) << strsignal(sig);
    EXPECT_FALSE(fs::exists(out)) << strsignal(sig);
    EXPECT_TRUE(partial_files(dir).empty()) << strsignal(sig);
  }
}

// Ctrl-C, kill and a closed terminal all stop the job and remove its partial output.
TEST_F(Cli, InterruptTerminateAndHangUpRemoveThePartialVideo) {
  const std::string clip = (dir / "clip.mp4").string(), out = (dir / "out.mp4").string();
  ASSERT_EQ(run_cli("sample -o " + clip + " --size 160x90 --frames 300").exit_code, 0);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    RunningVideo video(clip, out);
    auto [code, rest] = video.stop(sig);
    EXPECT_EQ(code, 130) << strsignal(sig) << ": " << rest;
    EXPECT_NE(rest.find("cancelled"), std::string::npos) << rest;
    EXPECT_FALSE(fs::exists(out));
    EXPECT_TRUE(partial_files(dir).empty()) << strsignal(sig) << " left " << partial_files(dir)[0];
  }
}

}  // namespace
}  // namespace upres::test
