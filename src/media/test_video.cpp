// Synthetic videos made in process (libavformat/libavcodec), so tests and the demo need no
// files from outside the project.
#include <cmath>
#include <cstring>
#include <functional>
#include <map>

#include <fmt/format.h>

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/display.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
}

#include "media/test_video.hpp"

#include "image/test_pattern.hpp"
#include "media/av_common.hpp"
#include "media/color.hpp"
#include "media/video_output.hpp"
#include "upres/error.hpp"

namespace upres {
namespace {

struct Encoder {
  CodecContextPtr ctx;
  AVStream* stream = nullptr;
  bool priming = false;                  // write a copy of the first packet before it, with no duration
  std::map<int64_t, int64_t> durations;  // video: each frame's time on screen, by pts
};

Encoder open_encoder(AVFormatContext* oc, const std::string& name,
                     const std::function<void(AVCodecContext*)>& setup, AVDictionary* options = nullptr) {
  const AVCodec* codec = avcodec_find_encoder_by_name(name.c_str());
  if (!codec) throw Error(ErrorCode::unsupported, "test video: no encoder " + name);
  Encoder e;
  e.ctx.reset(avcodec_alloc_context3(codec));
  setup(e.ctx.get());
  if (oc->oformat->flags & AVFMT_GLOBALHEADER) e.ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  check_av(avcodec_open2(e.ctx.get(), codec, &options), ErrorCode::unsupported, "test video: open " + name);
  av_dict_free(&options);
  e.stream = avformat_new_stream(oc, nullptr);
  check_av(avcodec_parameters_from_context(e.stream->codecpar, e.ctx.get()), ErrorCode::invalid_media,
           "test video");
  e.stream->time_base = e.ctx->time_base;
  return e;
}

void drain(AVFormatContext* oc, Encoder& e, AVPacket* pkt) {
  while (avcodec_receive_packet(e.ctx.get(), pkt) == 0) {
    // Every frame says how long it shows, the last too (an mp4 edit list ends with it).
    if (const auto d = e.durations.find(pkt->pts); d != e.durations.end()) pkt->duration = d->second;
    av_packet_rescale_ts(pkt, e.ctx->time_base, e.stream->time_base);
    pkt->stream_index = e.stream->index;
    if (e.priming) {
      e.priming = false;
      PacketPtr first(av_packet_clone(pkt));
      first->duration = 0;
      check_av(av_interleaved_write_frame(oc, first.get()), ErrorCode::io_failure, "test video: write");
    }
    check_av(av_interleaved_write_frame(oc, pkt), ErrorCode::io_failure, "test video: write");
  }
}

}  // namespace

void write_test_video(const std::string& path, const TestVideoSpec& spec) {
  configure_ffmpeg_logging();
  const std::string container = container_for_path(path);
  AVFormatContext* oc = nullptr;
  check_av(avformat_alloc_output_context2(&oc, nullptr, container.c_str(), path.c_str()),
           ErrorCode::unsupported, "test video: container");
  std::unique_ptr<AVFormatContext, void (*)(AVFormatContext*)> owner(oc, [](AVFormatContext* c) {
    if (c->pb) avio_closep(&c->pb);
    avformat_free_context(c);
  });
  const bool webm = container == "webm";
  const bool mp4 = container == "mp4" || container == "mov";
  const AVPixelFormat pix = av_get_pix_fmt(spec.hdr10_sei ? "yuv420p10le" : spec.pix_fmt.c_str());
  // Timestamps in milliseconds: variable-rate clips need a fine clock.
  const AVRational video_tb{1, spec.fps * 1000};
  // webm takes only VP8/VP9/AV1: the default H.264 becomes VP9 there.
  const std::string video_codec = spec.hdr10_sei                          ? "libx265"
                                  : webm && spec.video_codec == "libx264" ? "libvpx-vp9"
                                                                          : spec.video_codec;
  Encoder video = open_encoder(oc, video_codec, [&](AVCodecContext* c) {
    c->width = spec.width;
    c->height = spec.height;
    c->pix_fmt = pix;
    c->time_base = video_tb;
    c->framerate = {spec.fps, 1};
    c->gop_size = 12;
    c->colorspace = AVCOL_SPC_SMPTE170M;
    c->color_range = AVCOL_RANGE_MPEG;
    av_opt_set(c->priv_data, "preset", "ultrafast", 0);
    if (spec.hdr10_sei) {
      c->color_primaries = AVCOL_PRI_BT2020;
      c->color_trc = AVCOL_TRC_SMPTE2084;
      c->colorspace = AVCOL_SPC_BT2020_NCL;
      av_opt_set(
          c->priv_data, "x265-params",
          "log-level=error:hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)"
          "L(10000000,50):max-cll=1000,400",
          0);
    }
    av_opt_set(c->priv_data, "deadline", "realtime", 0);
    av_opt_set(c->priv_data, "cpu-used", "8", 0);
  });
  if (spec.rotation) {
    auto* matrix = reinterpret_cast<int32_t*>(
        av_stream_new_side_data(video.stream, AV_PKT_DATA_DISPLAYMATRIX, sizeof(int32_t) * 9));
    av_display_rotation_set(matrix, double(spec.rotation));  // set() is clockwise, get() counter-clockwise
  }
  Encoder audio;
  if (spec.audio) {
    audio = open_encoder(oc, webm ? "libopus" : "aac", [&](AVCodecContext* c) {
      c->sample_rate = 48000;
      c->sample_fmt = webm ? AV_SAMPLE_FMT_S16 : AV_SAMPLE_FMT_FLTP;
      av_channel_layout_default(&c->ch_layout, spec.audio_channels);
      c->time_base = {1, 48000};
      c->bit_rate = 96000;
    });
  }
  audio.priming = spec.audio_priming_packet;
  AVStream* subs = nullptr;
  if (spec.subtitles) {
    subs = avformat_new_stream(oc, nullptr);
    subs->codecpar->codec_type = AVMEDIA_TYPE_SUBTITLE;
    subs->codecpar->codec_id = mp4 ? AV_CODEC_ID_MOV_TEXT : webm ? AV_CODEC_ID_WEBVTT : AV_CODEC_ID_SUBRIP;
    subs->time_base = {1, 1000};
    av_dict_set(&subs->metadata, "language", "eng", 0);
  }
  if (!spec.title.empty()) av_dict_set(&oc->metadata, "title", spec.title.c_str(), 0);
  check_av(avio_open(&oc->pb, path.c_str(), AVIO_FLAG_WRITE), ErrorCode::io_failure,
           "test video: open " + path);
  // Times before zero stay where the container can hold them (the muxer would shift them).
  if (spec.start_seconds < 0) oc->avoid_negative_ts = AVFMT_AVOID_NEG_TS_DISABLED;
  AVDictionary* mux = nullptr;
  // Edit lists (stream start offsets) in mp4 count in the movie time scale: a sample's worth.
  if (mp4) av_dict_set(&mux, "movie_timescale", "48000", 0);
  if (mp4 && spec.fragmented) av_dict_set(&mux, "movflags", "frag_keyframe+empty_moov+default_base_moof", 0);
  const int header = avformat_write_header(oc, &mux);
  av_dict_free(&mux);
  check_av(header, ErrorCode::invalid_media, "test video: header");

  PacketPtr pkt = make_packet();
  FramePtr frame = make_frame();
  frame->format = pix;
  frame->width = spec.width;
  frame->height = spec.height;
  check_av(av_frame_get_buffer(frame.get(), 0), ErrorCode::limit_exceeded, "test video: frame");
  const Image pattern = make_test_pattern(spec.width + spec.frames * 2, spec.height, spec.seed);
  Image picture(spec.width, spec.height, 3);
  std::vector<float> scratch;
  const ColorSpec color{AVCOL_SPC_SMPTE170M, AVCOL_RANGE_MPEG, AVCHROMA_LOC_LEFT};
  const int64_t tick = video_tb.den / spec.fps;  // one frame time in the video time base
  const int64_t video_start = std::llround(spec.start_seconds * av_q2d(av_inv_q(video_tb)));
  int64_t pts = video_start;
  for (int i = 0; i < spec.frames; ++i) {
    for (int c = 0; c < 3; ++c)  // the pattern pans two pixels a frame
      for (int y = 0; y < spec.height; ++y)
        for (int x = 0; x < spec.width; ++x) picture.at(c, y, x) = pattern.at(c, y, x + 2 * i);
    check_av(av_frame_make_writable(frame.get()), ErrorCode::limit_exceeded, "test video");
    image_to_frame(picture, color, *frame, scratch);
    frame->pts = pts;
    video.durations[pts] = spec.variable_rate && i % 2 ? 2 * tick : tick;
    pts += video.durations[pts];
    check_av(avcodec_send_frame(video.ctx.get(), frame.get()), ErrorCode::invalid_media,
             "test video: encode");
    drain(oc, video, pkt.get());
  }
  const double seconds = double(pts - video_start) * av_q2d(video_tb);
  avcodec_send_frame(video.ctx.get(), nullptr);
  drain(oc, video, pkt.get());

  if (spec.audio) {
    AVCodecContext* a = audio.ctx.get();
    const int frame_size = a->frame_size > 0 ? a->frame_size : 960;
    FramePtr af = make_frame();
    af->format = a->sample_fmt;
    af->nb_samples = frame_size;
    av_channel_layout_copy(&af->ch_layout, &a->ch_layout);
    check_av(av_frame_get_buffer(af.get(), 0), ErrorCode::limit_exceeded, "test video: audio frame");
    const int64_t total = int64_t(seconds * 48000);
    for (int64_t s0 = 0; s0 < total; s0 += frame_size) {
      check_av(av_frame_make_writable(af.get()), ErrorCode::limit_exceeded, "test video");
      for (int n = 0; n < frame_size; ++n) {
        const double v = 0.3 * std::sin(2 * M_PI * 440 * double(s0 + n) / 48000);
        const int channels = a->ch_layout.nb_channels;
        for (int ch = 0; ch < channels; ++ch) {
          if (a->sample_fmt == AV_SAMPLE_FMT_FLTP)
            reinterpret_cast<float*>(af->data[ch])[n] = float(v);
          else
            reinterpret_cast<int16_t*>(af->data[0])[channels * n + ch] = int16_t(v * 32767);
        }
      }
      af->pts = s0 + std::llround(spec.start_seconds * 48000) + std::llround(spec.audio_delay * 48000);
      check_av(avcodec_send_frame(a, af.get()), ErrorCode::invalid_media, "test video: audio");
      drain(oc, audio, pkt.get());
    }
    avcodec_send_frame(a, nullptr);
    drain(oc, audio, pkt.get());
  }
  if (subs) {
    for (int s = 0; s < int(seconds); ++s) {
      const std::string text = fmt::format("cue {}", s + 1);
      std::vector<uint8_t> data;
      if (mp4) data = {uint8_t(text.size() >> 8), uint8_t(text.size() & 0xff)};
      data.insert(data.end(), text.begin(), text.end());
      check_av(av_new_packet(pkt.get(), int(data.size())), ErrorCode::limit_exceeded, "test video");
      std::memcpy(pkt->data, data.data(), data.size());
      pkt->pts = pkt->dts = av_rescale_q(int64_t(s) * 1000 + 100 + std::llround(spec.start_seconds * 1000),
                                         {1, 1000}, subs->time_base);
      pkt->duration = av_rescale_q(800, {1, 1000}, subs->time_base);
      pkt->stream_index = subs->index;
      check_av(av_interleaved_write_frame(oc, pkt.get()), ErrorCode::io_failure, "test video: subtitles");
    }
  }
  check_av(av_write_trailer(oc), ErrorCode::io_failure, "test video: trailer");
}

}  // namespace upres
