// Video ranges and plans: consecutive half-open ranges hold every frame and every audio packet of
// a clip exactly once (variable frame rate included), --ss/-t cut the same way, a video-only
// segment keeps the source's timestamps, and a plan survives a JSON round trip and runs later.
#include <algorithm>
#include <climits>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "media_inspect.hpp"
#include "test_support.hpp"
#include "upres/video.hpp"

namespace upres::test {
namespace {

namespace fs = std::filesystem;

class VideoRanges : public TempDirTest {
 protected:
  std::string vfr_clip(int frames) {
    TestVideoSpec spec;
    spec.width = 48;
    spec.height = 32;
    spec.frames = frames;
    spec.variable_rate = true;
    spec.audio = true;
    const std::string path = (dir / "vfr.mkv").string();
    write_test_video(path, spec);
    return path;
  }
  // Re-encodes only (no model), so that the test is about timing, not pixels.
  VideoOptions options(const std::string& in, const std::string& out_name) {
    VideoOptions o;
    o.input = in;
    o.output = (dir / out_name).string();
    o.mode = "none";
    o.preset = "ultrafast";
    return o;
  }
};

// Matroska's time base is a millisecond: source timestamps in it.
int64_t ms(double seconds) {
  return std::llround(seconds * 1000);
}

TEST_F(VideoRanges, ConsecutiveRangesHoldEveryFrameAndAudioPacketOnce) {
  const std::string in = vfr_clip(40);
  const MediaInfo src = inspect_media(in);
  std::vector<double> frames = src.video().pts;
  std::sort(frames.begin(), frames.end());
  ASSERT_EQ(frames.size(), 40u);
  // Cut exactly at a frame, and one tick after another (that frame belongs to the earlier range).
  const int64_t c1 = ms(frames[13]), c2 = ms(frames[27]) + 1;
  const std::vector<VideoRange> ranges = {{INT64_MIN, c1}, {c1, c2}, {c2, INT64_MAX}};
  const std::vector<size_t> expected_frames = {13, 15, 12};
  std::vector<uint64_t> audio;
  size_t total = 0;
  for (size_t k = 0; k < ranges.size(); ++k) {
    VideoOptions o = options(in, "part" + std::to_string(k) + ".mkv");
    o.range = ranges[k];
    const VideoStats stats = VideoJob(o).run();
    EXPECT_EQ(size_t(stats.frames), expected_frames[k]) << "range " << k;
    const MediaInfo part = inspect_media(o.output);
    EXPECT_EQ(part.video().pts.size(), expected_frames[k]) << "range " << k;
    ASSERT_FALSE(part.video().pts.empty());
    // A whole file's timeline starts at the range's start (the file's, for an open start): its
    // first frame sits where it sat after that start.
    const double first = *std::min_element(part.video().pts.begin(), part.video().pts.end());
    if (k == 0)  // the file's start may be an audio packet's, a little before the first frame
      EXPECT_NEAR(first, frames[0], 0.05) << "range " << k;
    else
      EXPECT_NEAR(first, k == 2 ? frames[28] - (frames[27] + 0.001) : 0.0, 0.002) << "range " << k;
    total += part.video().pts.size();
    ASSERT_NE(part.first("audio"), nullptr);
    const auto& hashes = part.first("audio")->packet_hashes;
    audio.insert(audio.end(), hashes.begin(), hashes.end());
  }
  EXPECT_EQ(total, frames.size());
  EXPECT_EQ(audio, src.first("audio")->packet_hashes) << "every audio packet once, in order";
}

TEST_F(VideoRanges, SecondsCutTheSameWayWithoutOverlap) {
  const std::string in = vfr_clip(30);
  const MediaInfo src = inspect_media(in);
  std::vector<double> frames = src.video().pts;
  std::sort(frames.begin(), frames.end());
  // A cut half a millisecond before frame 11: that frame is on the later side only.
  const double cut = frames[11] - frames[0] - 0.0005;
  VideoOptions first = options(in, "first.mkv"), second = options(in, "second.mkv");
  first.duration = cut;
  second.start = cut;
  const int64_t a = VideoJob(first).run().frames, b = VideoJob(second).run().frames;
  EXPECT_EQ(a, 11);
  EXPECT_EQ(b, 19);
}

TEST_F(VideoRanges, AVideoSegmentKeepsSourceTimestampsAndNothingElse) {
  const std::string in = vfr_clip(24);
  const MediaInfo src = inspect_media(in);
  std::vector<double> frames = src.video().pts;
  std::sort(frames.begin(), frames.end());
  VideoOptions o = options(in, "segment.mkv");
  o.range = {ms(frames[9]), ms(frames[20])};
  o.sink = VideoSinkKind::video_segment;
  const VideoPlan plan = plan_video(o);
  ASSERT_EQ(plan.streams.size(), 2u);
  EXPECT_EQ(plan.streams[1].action, "drop");
  VideoJob(o).run();
  const MediaInfo seg = inspect_media(o.output);
  EXPECT_EQ(seg.count("audio"), 0);
  std::vector<double> got = seg.video().pts;
  std::sort(got.begin(), got.end());
  ASSERT_EQ(got.size(), 11u);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], frames[9 + i], 0.0015) << "frame " << i;
}

TEST_F(VideoRanges, PlansRoundTripThroughJsonAndRunLater) {
  TestVideoSpec spec;
  spec.width = 40;
  spec.height = 24;
  spec.frames = 8;
  spec.subtitles = true;
  const std::string in = (dir / "clip.mkv").string();
  write_test_video(in, spec);
  VideoOptions o;
  o.input = in;
  o.output = (dir / "out.mp4").string();
  o.engine.threads = 2;
  o.preset = "ultrafast";
  o.crf = 30;
  o.audio_tracks = {0};
  const VideoPlan plan = plan_video(o);
  EXPECT_FALSE(fs::exists(o.output)) << "planning writes nothing";
  const std::string text = video_plan_json(plan);
  const VideoPlan back = video_plan_from_json(text);
  EXPECT_EQ(video_plan_json(back), text);
  EXPECT_EQ(back.options.output, o.output);
  EXPECT_EQ(back.options.crf, 30);
  EXPECT_EQ(back.options.audio_tracks, std::vector<int>{0});
  EXPECT_EQ(back.model, "upres-compact-x2");
  EXPECT_EQ(back.streams.size(), 3u);
  EXPECT_EQ(nlohmann::json::parse(text)["output_width"], 80);

  const VideoStats stats = VideoJob(back).run();
  EXPECT_EQ(stats.frames, 8);
  EXPECT_EQ(stats.output_width, 80);
  fs::remove(o.output);

  // The source is replaced by another of a different size: the old plan is refused.
  spec.width = 64;
  write_test_video(in, spec);
  try {
    VideoJob(back).run();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has changed since the job was planned"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(o.output));

  // Malformed plans name what is wrong.
  nlohmann::json broken = nlohmann::json::parse(text);
  broken.erase("encoder");
  try {
    video_plan_from_json(broken.dump());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'encoder'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(video_plan_from_json("[1, 2]"), Error);
  EXPECT_THROW(video_plan_from_json("{\"input_width\": \"wide\"}"), Error);
}

// --frames N ends the audio and subtitles where the N frames end, as -t does, in every container
// and however few the frames: the audio is never missing nor cut at where the reading stopped.
TEST_F(VideoRanges, FramesCutAudioAndSubtitlesAtTheTimeOfFrameN) {
  for (const char* ext : {"mp4", "mkv", "webm"}) {
    TestVideoSpec spec;
    spec.width = 48;
    spec.height = 32;
    spec.frames = 90;  // 3 s
    spec.subtitles = true;
    spec.variable_rate = std::string(ext) == "mkv";
    const std::string in = (dir / (std::string("in.") + ext)).string();
    write_test_video(in, spec);
    std::vector<double> frames = inspect_media(in).video().pts;
    std::sort(frames.begin(), frames.end());
    for (const int64_t n : {1, 6, 48}) {
      for (const double fps : {0.0, 24.0}) {
        SCOPED_TRACE(fmt::format("{} --frames {} --fps {}", ext, n, fps));
        VideoOptions o = options(in, fmt::format("out-{}-{}.{}", n, fps, ext));
        o.max_frames = n;
        o.fps = fps;
        if (std::string(ext) == "webm") o.preset.clear();  // libvpx has no presets
        EXPECT_EQ(VideoJob(o).run().frames, n);
        const MediaInfo out = inspect_media(o.output);
        ASSERT_EQ(out.video().pts.size(), size_t(n));
        // Where frame N+1 would start, on the output's timeline and the source's: the source's
        // frame, or the new rate's slot.
        const double length = fps > 0 ? double(n) / fps : frames[size_t(n)] - frames[0];
        const double first = *std::min_element(out.video().pts.begin(), out.video().pts.end());
        const double end = first + length, source_end = frames[0] + length;
        const StreamInfo* audio = out.first("audio");
        ASSERT_NE(audio, nullptr) << "the audio must not vanish";
        // The last packet kept is the last that starts before the end: it ends within a packet
        // (AAC 21.3 ms, Opus 20 ms) after it.
        EXPECT_GE(audio->duration, end - 1e-3) << "audio cut early";
        EXPECT_LE(audio->duration, end + 0.0215) << "audio runs on past the frames";
        // A cue starts at 0.1 s of every source second: those before the end stay.
        const StreamInfo* subs = out.first("subtitle");
        const double cues = std::ceil(source_end - 0.1);
        if (cues <= 0) continue;
        ASSERT_NE(subs, nullptr);
        ASSERT_FALSE(subs->pts.empty());
        const double last_cue = *std::max_element(subs->pts.begin(), subs->pts.end());
        EXPECT_LT(last_cue, end) << "a cue after the end";
        // (Within a few milliseconds: a new rate puts the frames on its grid, the cues keep their times.)
        EXPECT_LE(subs->duration, end + 0.01) << "a cue outlasts the last frame";
        EXPECT_GE(last_cue + 1e-3, first - frames[0] + cues - 1 + 0.1)
            << "the last cue before the end is missing";
      }
    }
  }
}

// -t cuts every subtitle cue at the end of the range (a cue that starts before it keeps its start
// and ends there), in every container, and the file lasts no longer than its frames.
TEST_F(VideoRanges, DurationCutsSubtitleCuesAtTheEnd) {
  for (const char* ext : {"mp4", "mkv", "webm", "mov"}) {
    SCOPED_TRACE(ext);
    TestVideoSpec spec;
    spec.width = 48;
    spec.height = 32;
    spec.frames = 90;
    spec.subtitles = true;  // a cue at 0.1 s of every second
    const std::string in = (dir / (std::string("cues.") + ext)).string();
    write_test_video(in, spec);
    for (const double t : {1.5, 0.5, 2.3}) {  // each inside a cue (0.1 s to 0.9 s of its second)
      VideoOptions o = options(in, fmt::format("cut-{}.{}", t, ext));
      o.duration = t;
      if (std::string(ext) == "webm") o.preset.clear();
      VideoJob(o).run();
      const MediaInfo out = inspect_media(o.output);
      const StreamInfo* subs = out.first("subtitle");
      ASSERT_NE(subs, nullptr);
      EXPECT_LE(subs->duration, t + 1e-3) << "-t " << t;
      EXPECT_GT(subs->duration, t - 0.05) << "the cue inside the range keeps its part: -t " << t;
      EXPECT_LE(out.duration, t + 0.05) << "-t " << t;
    }
  }
}

// --ss T and -t T at the same instant split a clip's frames exactly: every frame on one side,
// once, whatever the rate (29.97 fps with B-frames and open GOPs here) and where T falls.
TEST_F(VideoRanges, StartAndDurationAtOneInstantSplitTheFramesExactly) {
  TestVideoSpec spec;
  spec.width = 48;
  spec.height = 32;
  spec.frames = 120;
  const std::string base = (dir / "base.mp4").string();
  write_test_video(base, spec);
  for (const char* codec : {"libx264", "libx265"}) {
    SCOPED_TRACE(codec);
    VideoOptions make = options(base, std::string("ntsc-") + codec + ".mp4");
    make.fps = 30000.0 / 1001;
    make.video_codec = codec;
    make.gop = 30;
    VideoJob(make).run();
    const MediaInfo src = inspect_media(make.output);
    const size_t total = src.video().pts.size();
    std::vector<double> frames = src.video().pts;
    std::sort(frames.begin(), frames.end());
    // A constant rate asked of a constant-rate clip changes nothing: every frame, the last too.
    VideoOptions whole = options(make.output, "whole.mkv");
    whole.cfr = true;
    whole.overwrite = true;
    EXPECT_EQ(size_t(VideoJob(whole).run().frames), total) << "--cfr on the whole clip";
    for (const bool cfr : {false, true})
      for (const double t : {frames[60] - frames[0] + 0.0005, frames[60] - frames[0],
                             frames[60] - frames[0] - 0.0005, 2.0025, 1.0015, 0.5}) {
        VideoOptions first = options(make.output, "first.mkv"), second = options(make.output, "second.mkv");
        first.overwrite = second.overwrite = true;
        first.cfr = second.cfr = cfr;
        first.duration = t;
        second.start = t;
        const int64_t a = VideoJob(first).run().frames, b = VideoJob(second).run().frames;
        EXPECT_EQ(size_t(a + b), total) << "T = " << t << (cfr ? " --cfr" : "") << ": " << a << " + " << b;
      }
  }
}

// An audio stream that starts after the video keeps its start to the sample in mp4 and mov
// (their edit lists count in a movie clock that every stream's divides), and to Matroska's
// millisecond there.
TEST_F(VideoRanges, StreamStartOffsetsStayExact) {
  for (const char* ext : {"mp4", "mov", "mkv"}) {
    TestVideoSpec spec;
    spec.width = 48;
    spec.height = 32;
    spec.frames = 30;
    spec.audio_delay = 0.0523;  // less the AAC encoder's 1024 samples of priming: 0.030958 s
    const std::string in = (dir / (std::string("in.") + ext)).string();
    write_test_video(in, spec);
    const MediaInfo a = inspect_media(in);
    const double offset = a.first("audio")->pts[0] - a.video().pts[0];
    for (const char* out_ext : {"mp4", "mov", "mkv"}) {
      SCOPED_TRACE(std::string(ext) + " -> " + out_ext);
      VideoOptions o = options(in, std::string("out-") + ext + "." + out_ext);
      VideoJob(o).run();
      const MediaInfo b = inspect_media(o.output);
      const double got = b.first("audio")->pts[0] - b.video().pts[0];
      EXPECT_NEAR(got, offset, std::string(out_ext) == "mkv" || std::string(ext) == "mkv" ? 5e-4 : 1e-6);
    }
  }
}

// Copied audio is the source's packet for packet: a fragmented mp4 whose 5.1 audio starts with a
// priming packet that has no duration and shares the next packet's time keeps both.
TEST_F(VideoRanges, CopiedAudioKeepsEveryPacketIncludingPriming) {
  TestVideoSpec spec;
  spec.width = 48;
  spec.height = 32;
  spec.frames = 60;
  spec.audio_channels = 6;
  spec.fragmented = true;
  spec.audio_priming_packet = true;
  spec.audio_delay = 1024.0 / 48000;  // the audio starts at 0 (less the encoder's priming)
  const std::string in = (dir / "fragmented.mp4").string();
  write_test_video(in, spec);
  const MediaInfo a = inspect_media(in);
  ASSERT_GE(a.first("audio")->pts.size(), 2u);
  ASSERT_EQ(a.first("audio")->pts[0], a.first("audio")->pts[1]) << "the test needs its priming packet";
  for (const char* ext : {"mp4", "mkv", "mov"}) {
    SCOPED_TRACE(ext);
    VideoOptions o = options(in, std::string("out.") + ext);
    VideoJob(o).run();
    const MediaInfo b = inspect_media(o.output);
    ASSERT_NE(b.first("audio"), nullptr);
    EXPECT_EQ(b.first("audio")->packet_hashes, a.first("audio")->packet_hashes);
    if (std::string(ext) != "mkv") {
      EXPECT_EQ(b.first("audio")->pts, a.first("audio")->pts);
    }
  }
}

TEST_F(VideoRanges, BadRangesAreRefused) {
  const std::string in = vfr_clip(6);
  VideoOptions o = options(in, "x.mkv");
  o.range = {100, 100};
  EXPECT_THROW(plan_video(o), Error);
  o.range = {0, 500};
  o.start = 0.1;
  EXPECT_THROW(plan_video(o), Error);
  EXPECT_THROW(video_options_from_json(R"({"range": {"begin": "soon"}})"), Error);
  EXPECT_THROW(video_options_from_json(R"({"sink": "pipe"})"), Error);
  EXPECT_EQ(video_options_from_json(R"({"range": {"begin": 40, "end": null}})").range,
            (VideoRange{40, INT64_MAX}));
}

}  // namespace
}  // namespace upres::test
