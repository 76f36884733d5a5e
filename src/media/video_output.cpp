#include "media/video_output.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>

#include <fmt/format.h>

extern "C" {
#include <libavutil/mastering_display_metadata.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
}

#include "media/color.hpp"
#include "upres/policy.hpp"

namespace upres {
namespace {

std::string io_message(const std::string& path, int rc) {
  return fmt::format("writing {} failed: {}{}", path, av_error_text(rc),
                     rc == AVERROR(ENOSPC) ? " (the disk is full: free space or write elsewhere)" : "");
}

// Speed/quality defaults per encoder family, used when the user sets nothing.
void set_quality_defaults(const std::string& codec, const VideoEncoderSettings& s, AVDictionary** options,
                          AVCodecContext* ctx) {
  auto set = [&](const char* key, const std::string& value) { av_dict_set(options, key, value.c_str(), 0); };
  const bool x26x = codec == "libx264" || codec == "libx265";
  const bool vpx_aom = codec == "libvpx-vp9" || codec == "libaom-av1";
  if (s.bitrate > 0) {
    ctx->bit_rate = s.bitrate;
  } else if (x26x || vpx_aom || codec == "libsvtav1") {
    const int crf = s.crf >= 0 ? s.crf : codec == "libx264" ? 18 : codec == "libx265" ? 20 : 30;
    set("crf", std::to_string(crf));
    if (vpx_aom) ctx->bit_rate = 0;  // constant quality, not constrained quality
  } else if (codec.find("nvenc") != std::string::npos) {
    set("rc", "vbr");
    set("cq", std::to_string(s.crf >= 0 ? s.crf : 23));
  } else if (s.crf >= 0) {
    set("crf", std::to_string(s.crf));  // left for avcodec_open2 to reject when unknown
  }
  if (!s.preset.empty()) {
    if (vpx_aom)
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("{} has no -preset; it trades speed for quality with its own settings", codec));
    set("preset", s.preset);
  }
  if (codec == "libvpx-vp9") {
    set("row-mt", "1");
    set("deadline", "good");
    set("cpu-used", "4");
  }
  if (codec == "libaom-av1") {
    set("cpu-used", "6");
    set("row-mt", "1");
  }
  // x265 and SVT-AV1 print banners and notes through their own loggers, past FFmpeg's log level:
  // only their errors reach the terminal (SVT_LOG set by the user wins).
  std::string x265 = "log-level=error", x264, svt;
  if (codec == "libsvtav1") setenv("SVT_LOG", "1", 0);
  // HDR10 metadata as SEI (x264, x265) or metadata OBUs (SVT-AV1): chromaticities in units of
  // 1/50000, luminance in 1/10000 cd/m2, as the standards count them.
  const AVMasteringDisplayMetadata& m = s.mastering;
  if (m.has_primaries && m.has_luminance) {
    auto c = [](AVRational q) { return std::llround(av_q2d(q) * 50000); };
    auto l = [](AVRational q) { return std::llround(av_q2d(q) * 10000); };
    const auto& p = m.display_primaries;  // R, G, B
    const std::string units = fmt::format("G({},{})B({},{})R({},{})WP({},{})L({},{})", c(p[1][0]), c(p[1][1]),
                                          c(p[2][0]), c(p[2][1]), c(p[0][0]), c(p[0][1]), c(m.white_point[0]),
                                          c(m.white_point[1]), l(m.max_luminance), l(m.min_luminance));
    x265 += ":master-display=" + units + ":hdr10=1";
    x264 += "mastering-display=" + units;
    auto f = [](AVRational q) { return fmt::format("{:.4f}", av_q2d(q)); };
    svt += fmt::format("mastering-display=G({},{})B({},{})R({},{})WP({},{})L({},{})", f(p[1][0]), f(p[1][1]),
                       f(p[2][0]), f(p[2][1]), f(p[0][0]), f(p[0][1]), f(m.white_point[0]),
                       f(m.white_point[1]), f(m.max_luminance), f(m.min_luminance));
  }
  if (s.has_light) {
    x265 += fmt::format(":max-cll={},{}", s.light.MaxCLL, s.light.MaxFALL);
    x264 += fmt::format("{}cll={},{}", x264.empty() ? "" : ":", s.light.MaxCLL, s.light.MaxFALL);
    svt += fmt::format("{}content-light={},{}", svt.empty() ? "" : ":", s.light.MaxCLL, s.light.MaxFALL);
  }
  // x265 3.5's lookahead writes past its buffers for pictures under one 64-pixel coding block a
  // side (a heap overrun, found by valgrind at 48x32): there its CU-tree analysis stays off.
  if (ctx->width < 64 || ctx->height < 64) x265 += ":cutree=0";
  if (codec == "libx265") set("x265-params", x265);
  if (codec == "libx264" && !x264.empty()) set("x264-params", x264);
  if (codec == "libsvtav1" && !svt.empty()) set("svtav1-params", svt);
}

}  // namespace

std::string container_for_path(const std::string& path) {
  return video_muxer_for_path(path);
}

bool is_segment_path(const std::string& path) {
  return path.size() > 4 && path.compare(path.size() - 4, 4, ".nut") == 0;
}

std::pair<int, int> crf_range(const std::string& encoder) {
  if (encoder == "libx264" || encoder == "libx265" || encoder.find("nvenc") != std::string::npos)
    return {0, 51};
  return {0, 63};  // libvpx-vp9, libaom-av1, libsvtav1
}

const AVCodec& find_video_encoder(const std::string& name) {
  const AVCodec* codec = avcodec_find_encoder_by_name(name.c_str());
  if (!codec || codec->type != AVMEDIA_TYPE_VIDEO) {
    std::string available;
    for (const char* n :
         {"libx264", "libx265", "libvpx-vp9", "libaom-av1", "libsvtav1", "h264_nvenc", "hevc_nvenc"})
      if (avcodec_find_encoder_by_name(n)) available += std::string(available.empty() ? "" : ", ") + n;
    throw Error(ErrorCode::not_found,
                fmt::format("video encoder '{}' is not available in this FFmpeg build; use "
                            "one of: {}",
                            name, available));
  }
  return *codec;
}

AVPixelFormat choose_encoder_format(const AVCodec& codec, AVPixelFormat source,
                                    const std::string& requested) {
  const AVPixelFormat* supported = codec.pix_fmts;
  auto takes = [&](AVPixelFormat f) {
    if (!supported) return true;
    for (const AVPixelFormat* p = supported; *p != AV_PIX_FMT_NONE; ++p)
      if (*p == f) return true;
    return false;
  };
  if (!requested.empty()) {
    const AVPixelFormat f = av_get_pix_fmt(requested.c_str());
    if (f == AV_PIX_FMT_NONE)
      throw Error(ErrorCode::invalid_argument, fmt::format("-pix_fmt '{}' is not a pixel format", requested));
    if (!takes(f))
      throw Error(ErrorCode::invalid_argument, fmt::format("{} does not encode {}", codec.name, requested));
    if (!is_convertible(f))
      throw Error(ErrorCode::unsupported,
                  fmt::format("-pix_fmt {} is not one upres writes: use a planar yuv or gbrp format such as "
                              "yuv420p, yuv420p10le or yuv444p",
                              requested));
    return f;
  }
  if (takes(source) && is_convertible(source)) return source;
  // The closest format the encoder takes among those we write, keeping depth where possible.
  std::vector<AVPixelFormat> candidates;
  for (AVPixelFormat f : convertible_pixel_formats())
    if (takes(f)) candidates.push_back(f);
  if (candidates.empty())
    throw Error(ErrorCode::unsupported, fmt::format("{} takes no pixel format upres writes", codec.name));
  candidates.push_back(AV_PIX_FMT_NONE);
  return avcodec_find_best_pix_fmt_of_list(candidates.data(), source, 0, nullptr);
}

VideoOutput::VideoOutput(const std::string& path, bool overwrite) : path_(path), packet_(make_packet()) {
  const std::string container = is_segment_path(path) ? "nut" : container_for_path(path);
  struct stat st {};
  if (stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode))
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("{} is a folder; give a file name for the output", path));
    if (!overwrite)
      throw Error(ErrorCode::invalid_argument, output_exists_message(path, OverwriteSwitch::cli_flag));
  }
  partial_ = std::make_unique<PartialFile>(path);
  if (avformat_alloc_output_context2(&format_, nullptr, container.c_str(), partial_->path().c_str()) < 0 ||
      !format_)
    throw Error(ErrorCode::unsupported, "this FFmpeg build cannot write " + container);
}

VideoOutput::~VideoOutput() {
  if (format_) {
    if (format_->pb) avio_closep(&format_->pb);
    avformat_free_context(format_);
  }
}

void VideoOutput::add_video(const VideoEncoderSettings& s, const AVStream* source) {
  const AVCodec& codec = find_video_encoder(s.codec);
  if (avformat_query_codec(format_->oformat, codec.id, FF_COMPLIANCE_NORMAL) != 1)
    throw Error(
        ErrorCode::invalid_argument,
        fmt::format("a .{} file cannot hold {} video (what {} makes); use -c:v {}, or write .mkv",
                    lower_extension(path_), avcodec_get_name(codec.id), s.codec,
                    std::string(format_->oformat->name) == "webm" ? "libvpx-vp9, libaom-av1 or libsvtav1"
                                                                  : "libx264 or libx265"));
  if (s.codec == "libsvtav1" && (s.width < 64 || s.height < 64))
    throw Error(ErrorCode::invalid_argument,
                fmt::format("libsvtav1 encodes pictures of at least 64x64, not {}x{}; use -c:v libaom-av1",
                            s.width, s.height));
  encoder_.reset(avcodec_alloc_context3(&codec));
  AVCodecContext* c = encoder_.get();
  c->width = s.width;
  c->height = s.height;
  c->pix_fmt = s.format;
  c->time_base = s.time_base;
  c->framerate = s.frame_rate;
  c->sample_aspect_ratio = s.sample_aspect_ratio;
  c->color_primaries = s.primaries;
  c->color_trc = s.transfer;
  c->colorspace = s.matrix;
  c->color_range = s.range;
  c->chroma_sample_location = s.chroma_location;
  if (s.gop > 0) c->gop_size = s.gop;
  c->thread_count = s.threads;
  if (format_->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  AVDictionary* options = nullptr;
  try {
    set_quality_defaults(s.codec, s, &options, c);
  } catch (...) {
    av_dict_free(&options);
    throw;
  }
  const int rc = avcodec_open2(c, &codec, &options);
  std::string unused;
  for (const AVDictionaryEntry* e = nullptr; (e = av_dict_get(options, "", e, AV_DICT_IGNORE_SUFFIX));)
    unused += std::string(unused.empty() ? "" : ", ") + e->key;
  av_dict_free(&options);
  if (rc < 0)
    throw Error(
        ErrorCode::invalid_argument,
        fmt::format("cannot open the {} encoder for {}x{} {}: {} (check -crf, -preset, -b:v and -pix_fmt)",
                    s.codec, s.width, s.height, av_get_pix_fmt_name(c->pix_fmt), av_error_text(rc)));
  if (!unused.empty())
    throw Error(ErrorCode::invalid_argument, fmt::format("the {} encoder has no option {}", s.codec, unused));

  video_stream_ = avformat_new_stream(format_, nullptr);
  check_av(avcodec_parameters_from_context(video_stream_->codecpar, c), ErrorCode::invalid_media,
           "cannot describe the video stream");
  video_stream_->time_base = c->time_base;
  video_stream_->avg_frame_rate = s.frame_rate;
  video_stream_->sample_aspect_ratio = s.sample_aspect_ratio;
  if (codec.id == AV_CODEC_ID_HEVC && std::string(format_->oformat->name) != "matroska")
    video_stream_->codecpar->codec_tag = MKTAG('h', 'v', 'c', '1');  // plays in Apple's players
  if (source) inherit_from_source(source);
  // Metadata the source carried only in its frames (SEI) goes into the container's boxes too.
  if (s.mastering.has_primaries && s.mastering.has_luminance &&
      !av_stream_get_side_data(video_stream_, AV_PKT_DATA_MASTERING_DISPLAY_METADATA, nullptr))
    if (uint8_t* d = av_stream_new_side_data(video_stream_, AV_PKT_DATA_MASTERING_DISPLAY_METADATA,
                                             sizeof(AVMasteringDisplayMetadata)))
      std::memcpy(d, &s.mastering, sizeof(AVMasteringDisplayMetadata));
  if (s.has_light && !av_stream_get_side_data(video_stream_, AV_PKT_DATA_CONTENT_LIGHT_LEVEL, nullptr))
    if (uint8_t* d = av_stream_new_side_data(video_stream_, AV_PKT_DATA_CONTENT_LIGHT_LEVEL,
                                             sizeof(AVContentLightMetadata)))
      std::memcpy(d, &s.light, sizeof(AVContentLightMetadata));
}

void hdr_metadata_from(const AVFrame& frame, const AVStream& stream, VideoEncoderSettings& s) {
  if (const AVFrameSideData* sd = av_frame_get_side_data(&frame, AV_FRAME_DATA_MASTERING_DISPLAY_METADATA))
    s.mastering = *reinterpret_cast<const AVMasteringDisplayMetadata*>(sd->data);
  else if (const uint8_t* d =
               av_stream_get_side_data(&stream, AV_PKT_DATA_MASTERING_DISPLAY_METADATA, nullptr))
    s.mastering = *reinterpret_cast<const AVMasteringDisplayMetadata*>(d);
  if (const AVFrameSideData* sd = av_frame_get_side_data(&frame, AV_FRAME_DATA_CONTENT_LIGHT_LEVEL)) {
    s.light = *reinterpret_cast<const AVContentLightMetadata*>(sd->data);
    s.has_light = true;
  } else if (const uint8_t* d = av_stream_get_side_data(&stream, AV_PKT_DATA_CONTENT_LIGHT_LEVEL, nullptr)) {
    s.light = *reinterpret_cast<const AVContentLightMetadata*>(d);
    s.has_light = true;
  }
}

void VideoOutput::inherit_from_source(const AVStream* source) {
  av_dict_copy(&video_stream_->metadata, source->metadata, 0);
  av_dict_set(&video_stream_->metadata, "rotate", nullptr, 0);  // the rotation is applied now
  video_stream_->disposition = source->disposition;
  // HDR metadata travels on; the display matrix does not (the picture is already turned).
  for (int i = 0; i < source->nb_side_data; ++i) {
    const AVPacketSideData& sd = source->side_data[i];
    if (sd.type != AV_PKT_DATA_MASTERING_DISPLAY_METADATA && sd.type != AV_PKT_DATA_CONTENT_LIGHT_LEVEL)
      continue;
    uint8_t* dst = av_stream_new_side_data(video_stream_, sd.type, sd.size);
    if (dst) std::memcpy(dst, sd.data, sd.size);
  }
}

int VideoOutput::add_encoded_video(const AVStream* encoded, const AVStream* source) {
  const AVCodecID id = encoded->codecpar->codec_id;
  if (avformat_query_codec(format_->oformat, id, FF_COMPLIANCE_NORMAL) != 1)
    throw Error(ErrorCode::invalid_argument, fmt::format("{} cannot hold {} video; write .mkv",
                                                         format_->oformat->name, avcodec_get_name(id)));
  video_stream_ = avformat_new_stream(format_, nullptr);
  check_av(avcodec_parameters_copy(video_stream_->codecpar, encoded->codecpar), ErrorCode::invalid_media,
           "cannot copy the video stream's parameters");
  video_stream_->codecpar->codec_tag = 0;
  if (id == AV_CODEC_ID_HEVC && std::string(format_->oformat->name) != "matroska")
    video_stream_->codecpar->codec_tag = MKTAG('h', 'v', 'c', '1');
  video_stream_->time_base = encoded->time_base;
  video_stream_->avg_frame_rate = encoded->avg_frame_rate;
  video_stream_->sample_aspect_ratio = encoded->codecpar->sample_aspect_ratio;
  if (source) inherit_from_source(source);
  return video_stream_->index;
}

int VideoOutput::add_copy(const AVStream* source) {
  AVStream* st = avformat_new_stream(format_, nullptr);
  check_av(avcodec_parameters_copy(st->codecpar, source->codecpar), ErrorCode::invalid_media,
           "cannot copy stream parameters");
  st->codecpar->codec_tag = 0;  // let the muxer pick the tag its container uses
  st->time_base = source->time_base;
  st->disposition = source->disposition;
  av_dict_copy(&st->metadata, source->metadata, 0);
  for (int i = 0; i < source->nb_side_data; ++i) {
    const AVPacketSideData& sd = source->side_data[i];
    uint8_t* dst = av_stream_new_side_data(st, sd.type, sd.size);
    if (dst) std::memcpy(dst, sd.data, sd.size);
  }
  return st->index;
}

AVStream* VideoOutput::add_encoded_stream(const AVCodecContext* encoder, const AVStream* source) {
  AVStream* st = avformat_new_stream(format_, nullptr);
  check_av(avcodec_parameters_from_context(st->codecpar, encoder), ErrorCode::invalid_media,
           "cannot describe an encoded stream");
  st->time_base = encoder->time_base;
  if (source) {
    st->disposition = source->disposition;
    av_dict_copy(&st->metadata, source->metadata, 0);
  }
  return st;
}

void VideoOutput::write_header(const AVFormatContext* source) {
  if (source) {
    av_dict_copy(&format_->metadata, source->metadata, 0);
    for (unsigned i = 0; i < source->nb_chapters; ++i) {
      const AVChapter* in = source->chapters[i];
      AVChapter** grown = static_cast<AVChapter**>(
          av_realloc_array(format_->chapters, format_->nb_chapters + 1, sizeof(AVChapter*)));
      AVChapter* out = static_cast<AVChapter*>(av_mallocz(sizeof(AVChapter)));
      if (!grown || !out) {
        av_free(out);
        if (grown) format_->chapters = grown;
        break;
      }
      format_->chapters = grown;
      *out = *in;
      out->metadata = nullptr;
      av_dict_copy(&out->metadata, in->metadata, 0);
      format_->chapters[format_->nb_chapters++] = out;
    }
  }
  int rc = avio_open(&format_->pb, partial_->path().c_str(), AVIO_FLAG_WRITE);
  if (rc < 0) throw Error(ErrorCode::io_failure, io_message(path_, rc));
  AVDictionary* options = nullptr;
  if (std::string(format_->oformat->name) == "mp4" || std::string(format_->oformat->name) == "mov") {
    av_dict_set(&options, "movflags", "+faststart", 0);  // index first: plays while it downloads
    // A stream that starts after the others gets an edit list counted in the movie time scale,
    // a millisecond by default: one that every stream's clock divides keeps its start exact.
    int64_t scale = 1;
    for (unsigned i = 0; i < format_->nb_streams; ++i) {
      const AVStream* st = format_->streams[i];
      for (const int64_t den : {int64_t(st->time_base.den), int64_t(st->codecpar->sample_rate)})
        if (den > 0) scale = scale / std::gcd(scale, den) * den;
      if (scale > INT32_MAX) break;
    }
    if (scale > 1000 && scale <= INT32_MAX) av_dict_set_int(&options, "movie_timescale", scale, 0);
  }
  // A segment keeps its frames' times exactly: an encoder's decode clock starts before the first
  // frame, and shifting a segment's timestamps to avoid that would overlap it with the next.
  if (is_segment_path(path_)) format_->avoid_negative_ts = AVFMT_AVOID_NEG_TS_DISABLED;
  rc = avformat_write_header(format_, &options);
  av_dict_free(&options);
  if (rc < 0)
    throw Error(ErrorCode::invalid_argument,
                fmt::format("cannot start writing {}: {} (a stream may not fit the {} container)", path_,
                            av_error_text(rc), format_->oformat->name));
}

void VideoOutput::encode(const AVFrame* frame) {
  if (frame) ++frames_sent_;
  int rc = avcodec_send_frame(encoder_.get(), frame);
  if (rc < 0 && rc != AVERROR_EOF)
    throw Error(ErrorCode::invalid_media, "the video encoder failed: " + av_error_text(rc));
  for (;;) {
    rc = avcodec_receive_packet(encoder_.get(), packet_.get());
    if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
    check_av(rc, ErrorCode::invalid_media, "the video encoder failed");
    // x265 (3.5) computes its first packets' decode times from a delay it sets only when the
    // third frame arrives and never initialises, so an encode of 1 or 2 frames comes out with
    // dts = pts - <garbage>: mp4 refuses the pair ("patches welcome"), any muxer refuses pts <
    // dts. Two frames cannot be reordered (the first is the keyframe), so their decode order is
    // their display order: when every packet of such a clip comes at the flush, dts = pts.
    if (!frame && frames_sent_ <= 2 && packets_before_flush_ == 0 && packet_->pts != AV_NOPTS_VALUE)
      packet_->dts = packet_->pts;
    if (frame) ++packets_before_flush_;
    write(packet_.get(), encoder_->time_base, video_stream_->index);
  }
}

void VideoOutput::write(AVPacket* packet, AVRational from, int out_index) {
  AVStream* st = format_->streams[out_index];
  packet->stream_index = out_index;
  av_packet_rescale_ts(packet, from, st->time_base);
  packet->pos = -1;
  std::lock_guard<std::mutex> lock(mux_mutex_);
  bytes_ += packet->size;
  const int rc = av_interleaved_write_frame(format_, packet);
  if (rc < 0) {
    av_packet_unref(packet);
    throw Error(ErrorCode::io_failure, io_message(path_, rc));
  }
}

void VideoOutput::finish() {
  std::lock_guard<std::mutex> lock(mux_mutex_);
  int rc = av_write_trailer(format_);
  if (rc < 0) throw Error(ErrorCode::io_failure, io_message(path_, rc));
  rc = avio_closep(&format_->pb);
  if (rc < 0) throw Error(ErrorCode::io_failure, io_message(path_, rc));
  partial_->commit();
}

}  // namespace upres
