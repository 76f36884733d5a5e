// The rules every front end shares (upres/policy.hpp): containers, output names, overwriting,
// the progress throttle and the version.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "test_support.hpp"
#include "upres/policy.hpp"

namespace upres::test {
namespace {

namespace fs = std::filesystem;

// Runs `call`, which must throw upres::Error with `code` and a message containing `part`.
template <class Call>
void expect_error(Call call, ErrorCode code, const std::string& part) {
  try {
    call();
    ADD_FAILURE() << "no error; expected one containing: " << part;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

struct TempDir {
  fs::path path;
  TempDir() {
    char pattern[] = "/tmp/upres-policy-XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

TEST(Policy, VideoContainersUpresWrites) {
  for (const char* path : {"a.mp4", "a.m4v", "a.mkv", "a.webm", "a.mov", "dir/A.MP4", "x.y.MkV", "/abs/.mov"})
    EXPECT_TRUE(is_video_output_path(path)) << path;
  for (const char* path :
       {"a.avi", "a.ts", "a.gif", "a.mp3", "a.png", "mp4", "a.mp4/b", "a.", "", "dir.mkv/clip"})
    EXPECT_FALSE(is_video_output_path(path)) << path;

  EXPECT_EQ(video_format_names(), (std::vector<std::string>{"mp4", "mkv", "webm", "mov"}));
  for (const std::string& name : video_format_names()) EXPECT_TRUE(is_video_output_path("x." + name)) << name;

  EXPECT_EQ(video_muxer_for_path("a.mp4"), "mp4");
  EXPECT_EQ(video_muxer_for_path("a.M4V"), "mp4");
  EXPECT_EQ(video_muxer_for_path("a.mkv"), "matroska");
  EXPECT_EQ(video_muxer_for_path("a.webm"), "webm");
  EXPECT_EQ(video_muxer_for_path("a.mov"), "mov");
  // Refusals say what to write instead.
  expect_error([] { video_muxer_for_path("a.gif"); }, ErrorCode::invalid_argument,
               "GIF output is not supported");
  expect_error([] { video_muxer_for_path("a.mp3"); }, ErrorCode::invalid_argument,
               ".mp3 is an audio-only format");
  expect_error([] { video_muxer_for_path("a.avi"); }, ErrorCode::invalid_argument,
               "unknown output container '.avi': use .mp4, .mkv, .webm or .mov");
  expect_error([] { video_muxer_for_path("noext"); }, ErrorCode::invalid_argument,
               "unknown output container");
}

TEST(Policy, VideoInputsAndContentTypes) {
  for (const char* path : {"a.mp4", "a.m4v", "a.mkv", "a.webm", "a.mov", "a.avi", "a.TS", "a.m2ts", "a.mts",
                           "a.flv", "a.wmv", "a.mpg", "a.mpeg", "a.ogv", "a.3gp"})
    EXPECT_TRUE(is_video_input_path(path)) << path;
  for (const char* path : {"a.png", "a.mp3", "a.gif", "a.txt", "avi", ""})
    EXPECT_FALSE(is_video_input_path(path)) << path;

  EXPECT_STREQ(video_content_type("/w/out.mp4"), "video/mp4");
  EXPECT_STREQ(video_content_type("out.m4v"), "video/mp4");
  EXPECT_STREQ(video_content_type("out.mkv"), "video/x-matroska");
  EXPECT_STREQ(video_content_type("out.WEBM"), "video/webm");
  EXPECT_STREQ(video_content_type("out.mov"), "video/quicktime");
  EXPECT_STREQ(video_content_type("out.avi"), "application/octet-stream");
  EXPECT_STREQ(video_content_type("out"), "application/octet-stream");
}

TEST(Policy, OutputSizesUsersAskFor) {
  auto size = [](OutputSizeRequest r, int w, int h, bool even = true) {
    return requested_output_size(r, w, h, even);
  };
  using P = std::pair<int, int>;
  OutputSizeRequest r;
  r.resolution = "1080p";
  EXPECT_EQ(size(r, 1280, 720), P(1920, 1080)) << "720p -> 1080p, which a whole scale cannot give";
  EXPECT_EQ(size(r, 720, 1280), P(1080, 1920)) << "the short side: a portrait video";
  EXPECT_EQ(size(r, 640, 480), P(1440, 1080));
  r.resolution = "4K";
  EXPECT_EQ(size(r, 1920, 1080), P(3840, 2160));
  r.resolution = "720p";
  EXPECT_EQ(size(r, 480, 360), P(960, 720));
  EXPECT_EQ(size(r, 636, 360), P(1272, 720));
  EXPECT_EQ(size(r, 638, 360, true).first % 2, 0) << "4:2:0 needs even sides";
  r.resolution = "1001x563";
  EXPECT_EQ(size(r, 320, 240, false), P(1001, 563)) << "WxH is exact";
  EXPECT_EQ(size(r, 320, 240, true), P(1002, 564)) << "or even, for 4:2:0 video";
  r = {};
  r.width = 1000;
  EXPECT_EQ(size(r, 640, 360), P(1000, 562));
  EXPECT_EQ(size(r, 640, 360, false), P(1000, 563));
  r = {};
  r.height = 1000;
  EXPECT_EQ(size(r, 640, 360), P(1778, 1000));
  r.width = 900;
  EXPECT_EQ(size(r, 640, 360), P(900, 1000)) << "both: exactly";
  r = {};
  r.scale = 1.5;
  EXPECT_EQ(size(r, 1280, 720), P(1920, 1080));
  EXPECT_EQ(model_scale_for(1280, 720, 1920, 1080), 2);
  EXPECT_EQ(model_scale_for(640, 360, 1920, 1080), 3);
  EXPECT_EQ(model_scale_for(640, 360, 2000, 1125), 4);
  EXPECT_EQ(model_scale_for(320, 180, 3840, 2160), 4) << "beyond x4 the resample does the rest";
  // Bad requests name the option.
  struct Bad {
    OutputSizeRequest r;
    const char* expect;
  };
  OutputSizeRequest two;
  two.resolution = "720p";
  two.width = 100;
  OutputSizeRequest word;
  word.resolution = "big";
  OutputSizeRequest tiny;
  tiny.width = 4;
  OutputSizeRequest huge;
  huge.scale = 40;
  for (const Bad& b : {Bad{two, "not several"}, Bad{word, "720p"}, Bad{tiny, "-w"}, Bad{huge, "-s 40"}}) {
    try {
      size(b.r, 640, 360);
      ADD_FAILURE() << b.expect;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(b.expect), std::string::npos) << e.what();
    }
  }
}

TEST(Policy, ImageFormatNames) {
  for (ImageFormat f : {ImageFormat::png, ImageFormat::jpeg, ImageFormat::webp})
    EXPECT_EQ(image_format_from_name(image_format_name(f)), f);
  EXPECT_EQ(image_format_from_name("jpg"), ImageFormat::jpeg);
  EXPECT_STREQ(image_content_type(ImageFormat::png), "image/png");
  EXPECT_STREQ(image_content_type(ImageFormat::jpeg), "image/jpeg");
  EXPECT_STREQ(image_content_type(ImageFormat::webp), "image/webp");
  expect_error([] { image_format_from_name("gif"); }, ErrorCode::invalid_argument,
               "format 'gif' is not png, jpeg or webp");
  expect_error([] { image_format_from_name("PNG"); }, ErrorCode::invalid_argument, "not png, jpeg or webp");
}

TEST(Policy, OutputExtensionOfAVideo) {
  EXPECT_EQ(video_output_extension("clip.mkv"), ".mkv");
  EXPECT_EQ(video_output_extension("dir/Clip.MOV"), ".mov");  // lower case
  EXPECT_EQ(video_output_extension("clip.m4v"), ".m4v");
  EXPECT_EQ(video_output_extension("clip.avi"), ".mp4");  // read, not written
  EXPECT_EQ(video_output_extension("clip"), ".mp4");
  EXPECT_EQ(video_output_extension("dir.webm/clip"), ".mp4");
  EXPECT_EQ(video_output_extension(""), ".mp4");
}

TEST(Policy, UpscaledNames) {
  EXPECT_EQ(upscaled_file_name("clips/show.mkv", 2, ".mkv"), "show-upres-x2.mkv");
  EXPECT_EQ(upscaled_file_name("my clip.mp4", 4, ".mp4"), "my clip-upres-x4.mp4");
  EXPECT_EQ(upscaled_file_name("a.b.c.png", 3, ".png"),
            "a.b.c-upres-x3.png");  // only the last extension goes
  EXPECT_EQ(upscaled_file_name("noext", 2, ".mp4"), "noext-upres-x2.mp4");
  EXPECT_EQ(upscaled_file_name(".hidden", 2, ".png"), ".hidden-upres-x2.png");  // a dot file is all stem
  EXPECT_EQ(upscaled_file_name(".hidden.png", 2, ".png"), ".hidden-upres-x2.png");
  EXPECT_EQ(upscaled_file_name("trailing.", 2, ".png"), "trailing-upres-x2.png");
  EXPECT_EQ(upscaled_file_name("caf\xc3\xa9 \xff.mov", 2, ".mov"),
            "caf\xc3\xa9 \xff-upres-x2.mov");  // bytes kept
  EXPECT_EQ(upscaled_file_name("", 2, ".mp4"), "output-upres-x2.mp4");
  EXPECT_EQ(upscaled_file_name("folder/", 2, ".mp4", "video"), "video-upres-x2.mp4");
  EXPECT_EQ(upscaled_file_name("x.mp4", 16, ""), "x-upres-x16");

  EXPECT_EQ(upscaled_path_beside("clips/show.mkv", 2, ".mkv"), "clips/show-upres-x2.mkv");
  EXPECT_EQ(upscaled_path_beside("show.mkv", 2, ".mp4"), "show-upres-x2.mp4");
  EXPECT_EQ(upscaled_path_beside("/abs/dir/pic.jpg", 3, ".png"), "/abs/dir/pic-upres-x3.png");
  EXPECT_EQ(upscaled_path_beside("a/b.c/d", 2, ".png"), "a/b.c/d-upres-x2.png");
}

TEST(Policy, FolderOutputNames) {
  EXPECT_EQ(folder_output_path("in/a.png", "out", ""), "out/a.png");
  EXPECT_EQ(folder_output_path("in/a.png", "out", "webp"), "out/a.webp");
  EXPECT_EQ(folder_output_path("in/a.b.jpg", "out/", "png"), "out/a.b.png");
  EXPECT_EQ(folder_output_path("in/noext", "out", "png"), "out/noext.png");

  EXPECT_EQ(video_folder_output_path("in/Clip.MKV", "out", ""), "out/Clip.MKV");  // the name as it was
  EXPECT_EQ(video_folder_output_path("in/a.m4v", "out", ""), "out/a.m4v");
  EXPECT_EQ(video_folder_output_path("in/a.avi", "out", ""), "out/a.mp4");  // a container upres only reads
  EXPECT_EQ(video_folder_output_path("in/a.ts", "out", "mkv"), "out/a.mkv");
  EXPECT_EQ(video_folder_output_path("in/a.mp4", "out", "webm"), "out/a.webm");
}

TEST(Policy, OverwriteRules) {
  TempDir dir;
  const std::string input = (dir.path / "in.png").string();
  const std::string taken = (dir.path / "taken.png").string();
  const std::string free = (dir.path / "free.png").string();
  std::ofstream(input) << "x";
  std::ofstream(taken) << "y";
  fs::create_symlink(input, dir.path / "link.png");

  EXPECT_EQ(output_exists_message("out.mp4", OverwriteSwitch::cli_flag),
            "out.mp4 exists; pass --overwrite to replace it");
  EXPECT_EQ(output_exists_message("out.png", OverwriteSwitch::request_field),
            "output 'out.png' exists; pass \"overwrite\": true to replace it");

  check_output_path(input, free, false, "free.png", OverwriteSwitch::cli_flag);
  check_output_path(input, taken, true, "taken.png", OverwriteSwitch::cli_flag);
  expect_error([&] { check_output_path(input, taken, false, "shown.png", OverwriteSwitch::cli_flag); },
               ErrorCode::invalid_argument, "shown.png exists; pass --overwrite");
  expect_error([&] { check_output_path(input, taken, false, "t.png", OverwriteSwitch::request_field); },
               ErrorCode::invalid_argument, "output 't.png' exists; pass \"overwrite\": true");
  // The input itself never, overwrite or not, by any name.
  for (bool overwrite : {false, true}) {
    expect_error([&] { check_output_path(input, input, overwrite, "in.png", OverwriteSwitch::cli_flag); },
                 ErrorCode::invalid_argument, "is the input itself");
    expect_error(
        [&] {
          check_output_path(input, (dir.path / "link.png").string(), overwrite, "link.png",
                            OverwriteSwitch::cli_flag);
        },
        ErrorCode::invalid_argument, "is the input itself");
  }
  refuse_existing_output(free, false, "free.png", OverwriteSwitch::cli_flag);
  expect_error([&] { refuse_existing_output(taken, false, "taken.png", OverwriteSwitch::cli_flag); },
               ErrorCode::invalid_argument, "taken.png exists");
}

// A clock the test moves by hand.
struct FakeClock {
  ProgressThrottle::Clock::time_point now{std::chrono::seconds(1000)};
  std::function<ProgressThrottle::Clock::time_point()> source() {
    return [this] { return now; };
  }
  void advance(std::chrono::milliseconds by) { now += by; }
};

TEST(Policy, ThrottleLetsTheFirstAndFinalReportsThrough) {
  using std::chrono::milliseconds;
  FakeClock clock;
  ProgressThrottle throttle(milliseconds(500), clock.source());
  EXPECT_EQ(throttle.interval(), milliseconds(500));
  EXPECT_LE(throttle.next_due(), clock.now);  // nothing sent yet: a report may go now

  EXPECT_TRUE(throttle.pass());  // the first, at once
  EXPECT_EQ(throttle.next_due(), clock.now + milliseconds(500));
  EXPECT_FALSE(throttle.pass());  // in between: held back
  clock.advance(milliseconds(499));
  EXPECT_FALSE(throttle.pass());
  clock.advance(milliseconds(1));
  EXPECT_TRUE(throttle.pass());  // the interval has passed
  clock.advance(milliseconds(100));
  EXPECT_FALSE(throttle.pass());
  EXPECT_TRUE(throttle.pass(/*final=*/true));  // never held back
  EXPECT_TRUE(throttle.pass(/*final=*/true));  // not even right after another
  EXPECT_FALSE(throttle.pass());               // and it counts as sent
  clock.advance(milliseconds(500));
  EXPECT_TRUE(throttle.pass());
}

TEST(Policy, ThrottleCountsOnlyReportsThatPassed) {
  using std::chrono::milliseconds;
  FakeClock clock;
  ProgressThrottle throttle(milliseconds(200), clock.source());
  ASSERT_TRUE(throttle.pass());
  int passed = 0;
  // A report every 50 ms for 1 s: dropped ones do not push the next one back.
  for (int i = 0; i < 20; ++i) {
    clock.advance(milliseconds(50));
    passed += throttle.pass();
  }
  EXPECT_EQ(passed, 5);
  EXPECT_EQ(ProgressThrottle().interval(), kProgressInterval);
  EXPECT_EQ(kProgressInterval, milliseconds(500));
}

TEST(Policy, VersionComesFromCMake) {
  EXPECT_STREQ(upres_version(), UPRES_PROJECT_VERSION);
}

}  // namespace
}  // namespace upres::test
