// The upres binary: successful runs and every error a user can cause, each with a clear message
// and a non-zero exit, and nothing left at the destination.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include "test_support.hpp"

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

TEST_F(Cli, UpscalesAnImage) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x2");
  std::string out = (dir / "out.webp").string();
  Result r = run_cli("image " + input + " -o " + out + " --tile 16");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  Image img = read_image(out);
  EXPECT_EQ(img.width, 48);
  EXPECT_EQ(img.height, 32);
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
      {"image " + input + " -o " + out + " --max-memory lots", "--max-memory"},
      {"image " + input + " -o " + out + " -s 99", "-s"},
      {"image " + (dir / "garbage.png").string() + " -o " + out, "not a PNG"},
  };
  {
    std::FILE* f = std::fopen((dir / "garbage.png").c_str(), "w");
    std::fputs("not an image", f);
    std::fclose(f);
  }
  for (const Case& c : cases) {
    Result r = run_cli(c.args);
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_FALSE(fs::exists(out)) << c.args;
  }
  for (const auto& entry : fs::directory_iterator(dir))
    EXPECT_EQ(entry.path().filename().string().find(".upres-"), std::string::npos) << "temporary left behind";
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
  fs::path param = cache / info->package / info->param_file, bin = cache / info->package / info->bin_file;
  fs::create_directories(param.parent_path());
  fs::copy_file(model_files(*info).param_path, param);
  fs::copy_file(model_files(*info).bin_path, bin);
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

}  // namespace
}  // namespace upres::test
