#include "media/video_input.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

extern "C" {
#include <libavutil/display.h>
#include <libavutil/hwcontext.h>
#include <libavutil/pixdesc.h>
}

namespace upres {
namespace {

// The decoder asks which of its offered formats to use: the hardware one when offered.
AVPixelFormat pick_hw_format(AVCodecContext* ctx, const AVPixelFormat* offered) {
  const auto wanted = AVPixelFormat(reinterpret_cast<intptr_t>(ctx->opaque));
  for (const AVPixelFormat* f = offered; *f != AV_PIX_FMT_NONE; ++f)
    if (*f == wanted) return *f;
  return avcodec_default_get_format(ctx, offered);  // software fallback for this stream
}

int rotation_of(const AVStream* stream) {
  const uint8_t* matrix = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, nullptr);
  if (!matrix) return 0;
  // av_display_rotation_get is counter-clockwise; players turn clockwise by its negation.
  const double ccw = av_display_rotation_get(reinterpret_cast<const int32_t*>(matrix));
  if (std::isnan(ccw)) return 0;
  int cw = int(std::lround(-ccw)) % 360;
  if (cw < 0) cw += 360;
  return (cw + 45) / 90 * 90 % 360;
}

}  // namespace

VideoInput::VideoInput(const std::string& path, const std::string& hwaccel, int threads) : path_(path) {
  configure_ffmpeg_logging();
  AVFormatContext* raw = nullptr;
  int rc = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
  if (rc < 0) {
    const ErrorCode code = rc == AVERROR(ENOENT) ? ErrorCode::not_found : ErrorCode::invalid_media;
    throw Error(code, fmt::format("{}: cannot open as a video: {}", path, av_error_text(rc)));
  }
  format_.reset(raw);
  rc = avformat_find_stream_info(raw, nullptr);
  if (rc < 0)
    throw Error(ErrorCode::invalid_media,
                fmt::format("{}: cannot read stream information: {}", path, av_error_text(rc)));

  const AVCodec* codec = nullptr;
  video_index_ = av_find_best_stream(raw, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
  // Cover art is a one-picture "video" stream; a file with only that is not a video.
  if (video_index_ >= 0 && (raw->streams[video_index_]->disposition & AV_DISPOSITION_ATTACHED_PIC))
    video_index_ = AVERROR_STREAM_NOT_FOUND;
  if (video_index_ == AVERROR_STREAM_NOT_FOUND)
    throw Error(ErrorCode::invalid_media,
                fmt::format("{}: has no video stream (audio-only files and single "
                            "pictures are not videos; use `upres image` for pictures)",
                            path));
  if (video_index_ < 0 || !codec)
    throw Error(ErrorCode::unsupported,
                fmt::format("{}: no decoder in this FFmpeg build for its video codec ({})", path,
                            avcodec_get_name(raw->streams[std::max(0, video_index_)]->codecpar->codec_id)));
  AVStream* stream = raw->streams[video_index_];
  rotation_ = rotation_of(stream);

  decoder_.reset(avcodec_alloc_context3(codec));
  if (!decoder_) throw Error(ErrorCode::limit_exceeded, "out of memory creating a decoder");
  check_av(avcodec_parameters_to_context(decoder_.get(), stream->codecpar), ErrorCode::invalid_media,
           path + ": bad codec parameters");
  decoder_->pkt_timebase = stream->time_base;
  decoder_->thread_count = threads;
  decoder_->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;

  if (!hwaccel.empty() && hwaccel != "none") {
    std::vector<std::string> candidates;
    if (hwaccel == "auto")
      candidates = {"cuda", "vaapi"};
    else if (hwaccel == "cuda" || hwaccel == "vaapi")
      candidates = {hwaccel};
    else
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("--hwaccel '{}' is not known: use none, auto, cuda or vaapi", hwaccel));
    std::string why;
    for (const std::string& name : candidates) {
      const AVHWDeviceType type = av_hwdevice_find_type_by_name(name.c_str());
      AVPixelFormat hw_format = AV_PIX_FMT_NONE;
      for (int i = 0;; ++i) {
        const AVCodecHWConfig* config = avcodec_get_hw_config(codec, i);
        if (!config) break;
        if ((config->methods & AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX) && config->device_type == type)
          hw_format = config->pix_fmt;
      }
      if (hw_format == AV_PIX_FMT_NONE) {
        why = fmt::format("the {} decoder has no {} support", codec->name, name);
        continue;
      }
      AVBufferRef* device = nullptr;
      rc = av_hwdevice_ctx_create(&device, type, nullptr, nullptr, 0);
      if (rc < 0) {
        why = fmt::format("{} device: {}", name, av_error_text(rc));
        continue;
      }
      hw_device_.reset(device);
      decoder_->hw_device_ctx = av_buffer_ref(device);
      decoder_->opaque = reinterpret_cast<void*>(intptr_t(hw_format));
      decoder_->get_format = pick_hw_format;
      hw_name_ = name;
      hw_frame_ = make_frame();
      break;
    }
    if (hw_name_.empty())
      warnings_.push_back(fmt::format("hardware decoding unavailable ({}); decoding on the CPU", why));
  }
  check_av(avcodec_open2(decoder_.get(), codec, nullptr), ErrorCode::unsupported,
           fmt::format("{}: cannot open the {} decoder", path, codec->name));
}

void VideoInput::seek(double seconds) {
  if (seconds <= 0) return;
  const int64_t ts = start_time_us() + int64_t(seconds * AV_TIME_BASE);
  if (avformat_seek_file(format_.get(), -1, INT64_MIN, ts, ts, 0) < 0)
    warnings_.push_back("the input cannot seek; decoding from the start to reach --ss");
  avcodec_flush_buffers(decoder_.get());
  next_pts_ = AV_NOPTS_VALUE;
}

bool VideoInput::read_packet(AVPacket* packet) {
  const int rc = av_read_frame(format_.get(), packet);
  if (rc == AVERROR_EOF) return false;
  if (rc < 0) {
    cut_short_ = true;
    warnings_.push_back(
        fmt::format("the input is damaged or cut short ({}) after {:.3f} s; the output ends there",
                    av_error_text(rc), packets_end_seconds_));
    return false;
  }
  const int64_t ts = packet->pts != AV_NOPTS_VALUE ? packet->pts : packet->dts;
  if (ts != AV_NOPTS_VALUE) {
    const double end = seconds_of(ts + std::max<int64_t>(packet->duration, 0),
                                  format_->streams[packet->stream_index]->time_base);
    packets_end_seconds_ = std::max(packets_end_seconds_, end);
    if (stream_ends_.size() <= size_t(packet->stream_index))
      stream_ends_.resize(size_t(packet->stream_index) + 1, 0);
    stream_ends_[size_t(packet->stream_index)] = std::max(stream_ends_[size_t(packet->stream_index)], end);
  }
  return true;
}

void VideoInput::send(const AVPacket* packet) {
  const int rc = avcodec_send_packet(decoder_.get(), packet);
  if (rc == AVERROR_EOF) return;
  if (rc == AVERROR(EAGAIN))
    throw Error(ErrorCode::invalid_media, "decoder refused input while holding frames");
  if (rc < 0) ++damaged_packets_;  // a damaged packet: skip it; the decoder conceals the loss
}

bool VideoInput::receive(AVFrame* frame) {
  for (;;) {
    AVFrame* target = hw_frame_ ? hw_frame_.get() : frame;
    const int rc = avcodec_receive_frame(decoder_.get(), target);
    if (rc == AVERROR(EAGAIN)) return false;
    if (rc == AVERROR_EOF) {
      drained_ = true;
      return false;
    }
    if (rc < 0) {
      ++damaged_packets_;
      continue;
    }
    if (hw_frame_ && target->hw_frames_ctx) {
      av_frame_unref(frame);
      const int t = av_hwframe_transfer_data(frame, target, 0);
      if (t < 0)
        throw Error(ErrorCode::backend_failure,
                    "copying a frame from the " + hw_name_ + " device failed: " + av_error_text(t));
      av_frame_copy_props(frame, target);
      av_frame_unref(target);
    } else if (hw_frame_) {
      av_frame_move_ref(frame, target);
    }
    // Timestamps: the decoder's best guess, else one frame after the last.
    int64_t pts = frame->best_effort_timestamp;
    if (pts == AV_NOPTS_VALUE) pts = next_pts_ == AV_NOPTS_VALUE ? 0 : next_pts_;
    frame->pts = pts;
    int64_t step = frame->pkt_duration > 0 ? frame->pkt_duration : 0;
    if (step == 0) {
      const AVRational rate =
          video_stream()->avg_frame_rate.num ? video_stream()->avg_frame_rate : AVRational{25, 1};
      step = std::max<int64_t>(1, av_rescale_q(1, av_inv_q(rate), video_stream()->time_base));
    }
    next_pts_ = pts + step;
    end_pts_ = end_pts_ == AV_NOPTS_VALUE ? next_pts_ : std::max(end_pts_, next_pts_);
    return true;
  }
}

int64_t VideoInput::estimated_frames() const {
  const AVStream* s = video_stream();
  if (s->nb_frames > 0) return s->nb_frames;
  const double d = duration_seconds();
  const AVRational rate = s->avg_frame_rate.num ? s->avg_frame_rate : s->r_frame_rate;
  if (d > 0 && rate.num > 0) return int64_t(std::llround(d * av_q2d(rate)));
  return 0;
}

double VideoInput::duration_seconds() const {
  const AVStream* s = video_stream();
  if (s->duration != AV_NOPTS_VALUE && s->duration > 0) return double(s->duration) * av_q2d(s->time_base);
  if (format_->duration != AV_NOPTS_VALUE && format_->duration > 0)
    return double(format_->duration) / AV_TIME_BASE;
  return 0;
}

int64_t VideoInput::start_time_us() const {
  return format_->start_time == AV_NOPTS_VALUE ? 0 : format_->start_time;
}

double VideoInput::seconds_of(int64_t ts, AVRational time_base) const {
  return double(ts) * av_q2d(time_base) - double(start_time_us()) / AV_TIME_BASE;
}

}  // namespace upres
