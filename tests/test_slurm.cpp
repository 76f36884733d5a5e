// `upres cluster slurm` on a real one-node Slurm cluster (scripts/slurm-cluster.sh, on loopback;
// SLURM_CONF is set before any Slurm command so that no client looks the cluster up in DNS): the
// array job and the join make the single run's video; a task that fails is requeued and the join
// still runs; scancel leaves no partial output. Skipped where the cluster cannot start (not root).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "media_inspect.hpp"
#include "test_support.hpp"
#include "upres/files.hpp"
#include "upres/video.hpp"

namespace upres::test {
namespace {

namespace fs = std::filesystem;

std::string cli() {
  return std::string(UPRES_CLI_PATH);
}

class Slurm : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // ctest runs each test in its own process, two at a time: one cluster at a time on this
    // machine (the daemons' ports are fixed).
    lock_fd_ = open("/tmp/upres-slurm-tests.lock", O_CREAT | O_RDWR, 0666);
    if (lock_fd_ >= 0) flock(lock_fd_, LOCK_EX);
    char tmpl[] = "/tmp/upres-slurm-XXXXXX";
    cluster_dir_ = mkdtemp(tmpl);
    // Before anything can run a Slurm client: never a DNS query for the cluster.
    setenv("SLURM_CONF", (cluster_dir_ / "slurm.conf").c_str(), 1);
    const ShellRun r =
        shell(std::string(UPRES_SOURCE_DIR) + "/scripts/slurm-cluster.sh start " + cluster_dir_.string());
    started_ = r.exit_code == 0;
    skip_reason_ = r.output;
  }
  static void TearDownTestSuite() {
    shell(std::string(UPRES_SOURCE_DIR) + "/scripts/slurm-cluster.sh stop " + cluster_dir_.string());
    fs::remove_all(cluster_dir_);
    if (lock_fd_ >= 0) close(lock_fd_);  // releases the lock
  }
  void SetUp() override {
    if (!started_) GTEST_SKIP() << "no Slurm cluster here: " << skip_reason_;
    char tmpl[] = "/tmp/upres-slurm-job-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  void TearDown() override {
    if (!dir.empty()) fs::remove_all(dir);
  }

  std::string clip(int frames) {
    TestVideoSpec spec;
    spec.width = 48;
    spec.height = 32;
    spec.frames = frames;  // a key frame every 12 (0.4 s)
    spec.variable_rate = true;
    spec.subtitles = true;
    const std::string path = (dir / "in.mkv").string();
    write_test_video(path, spec);
    return path;
  }
  // The job's options: our model on the cpu in float32, encoded losslessly.
  static std::string job_options() {
    return "-m upres-compact-x2 --backend cpu --precision f32 --crf 0 --threads 1 "
           "--segment-seconds 1";
  }
  std::string single_run(const std::string& in) {
    VideoOptions o;
    o.input = in;
    o.output = (dir / "single.mkv").string();
    o.model = "upres-compact-x2";
    o.engine.backend = "cpu";
    o.engine.precision = Precision::f32;
    o.crf = 0;
    VideoJob(o).run();
    return o.output;
  }
  // The state of the job's join (scontrol), polled until it is final or `seconds` pass.
  std::string wait_for_join(const std::string& work, int seconds) {
    std::string state;
    for (int i = 0; i < seconds * 5; ++i) {
      const ShellRun r = shell(cli() + " cluster status " + work + " --json");
      if (r.exit_code == 0) {
        state = nlohmann::json::parse(r.output).value("join", "");
        if (state == "COMPLETED" || state == "FAILED" || state == "CANCELLED") return state;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return state;
  }

  fs::path dir;
  static inline fs::path cluster_dir_;
  static inline bool started_ = false;
  static inline std::string skip_reason_;
  static inline int lock_fd_ = -1;
};

void expect_same_video(const std::string& got_path, const std::string& want_path) {
  const MediaInfo got = inspect_media(got_path), want = inspect_media(want_path);
  EXPECT_EQ(got.video().pts, want.video().pts) << "frame times";
  ASSERT_NE(got.first("audio"), nullptr);
  EXPECT_EQ(got.first("audio")->packet_hashes, want.first("audio")->packet_hashes) << "audio packets";
  ASSERT_NE(got.first("subtitle"), nullptr);
  EXPECT_EQ(got.first("subtitle")->packet_hashes, want.first("subtitle")->packet_hashes);
  for (size_t i = 0; i < want.video().pts.size(); ++i) {
    std::vector<uint16_t> a, b;
    decode_frame(got_path, int(i), &a);
    decode_frame(want_path, int(i), &b);
    ASSERT_EQ(a, b) << "frame " << i;
  }
}

TEST_F(Slurm, AnArrayJobAndItsJoinMakeTheSingleRunsVideo) {
  UPRES_REQUIRE_MODEL("upres-compact-x2");
  const std::string in = clip(60), out = (dir / "out.mkv").string(), work = (dir / "work").string();
  const ShellRun r = shell(cli() + " cluster slurm " + in + " -o " + out + " --work-dir " + work +
                           " --tasks 2 --wait " + job_options());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("in 2 tasks: array job"), std::string::npos) << r.output;
  expect_same_video(out, single_run(in));
  const ShellRun status = shell(cli() + " cluster status " + work);
  EXPECT_NE(status.output.find("done"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("join job"), std::string::npos) << status.output;
  EXPECT_TRUE(partial_files_under(dir).empty());
}

// Segment 1 cannot be written at first (its path is taken by a folder, as a flaky shared
// filesystem might refuse it); its task fails, requeues itself, and succeeds once the path is free.
TEST_F(Slurm, AFailedTaskIsRequeuedAndTheJoinStillRuns) {
  UPRES_REQUIRE_MODEL("upres-compact-x2");
  const std::string in = clip(60), out = (dir / "out.mkv").string(), work = (dir / "work").string();
  ASSERT_EQ(
      shell(cli() + " video " + in + " -o " + out + " --work-dir " + work + " --plan-only " + job_options())
          .exit_code,
      0);
  const fs::path blocker = fs::path(work) / "segments" / "00001.nut";
  fs::create_directories(blocker);
  const ShellRun r = shell(cli() + " cluster slurm " + in + " -o " + out + " --work-dir " + work +
                           " --tasks 2 " + job_options());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path log = fs::path(work) / "slurm" / "segment-1.log";
  bool failed_once = false;
  for (int i = 0; i < 600 && !failed_once; ++i) {
    std::ifstream f(log);
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    failed_once = text.find("requeueing") != std::string::npos;
    if (!failed_once) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(failed_once) << "task 1 did not fail and requeue";
  fs::remove_all(blocker);
  EXPECT_EQ(wait_for_join(work, 120), "COMPLETED");
  expect_same_video(out, single_run(in));
}

TEST_F(Slurm, ScancelLeavesNoPartialOutput) {
  UPRES_REQUIRE_MODEL("upres-compact-x2");
  TestVideoSpec spec;
  spec.width = 160;
  spec.height = 96;
  spec.frames = 120;
  const std::string in = (dir / "in.mkv").string();
  write_test_video(in, spec);
  const std::string out = (dir / "out.mkv").string(), work = (dir / "work").string();
  const ShellRun r = shell(cli() + " cluster slurm " + in + " -o " + out + " --work-dir " + work +
                           " --tasks 2 " + job_options());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json jobs = nlohmann::json::parse(std::ifstream(fs::path(work) / "slurm" / "jobs.json"));
  const std::string array = jobs["array"], join = jobs["join"];
  // Once a segment is being written, cancel everything.
  bool writing = false;
  for (int i = 0; i < 600 && !writing; ++i) {
    writing = !partial_files_under(fs::path(work) / "segments").empty();
    if (!writing) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(writing) << "no segment started";
  ASSERT_EQ(shell("scancel " + array + " " + join).exit_code, 0);
  EXPECT_EQ(wait_for_join(work, 60), "CANCELLED");
  // The tasks end on SIGTERM, removing what they were writing.
  for (int i = 0; i < 600 && !partial_files_under(dir).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(partial_files_under(dir).empty());
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace upres::test
