#include "media/av_common.hpp"

#include <cmath>
#include <cstdlib>
#include <mutex>

#include <fmt/format.h>

extern "C" {
#include <libavutil/log.h>
}

namespace upres {

FramePtr make_frame() {
  FramePtr f(av_frame_alloc());
  if (!f) throw Error(ErrorCode::limit_exceeded, "out of memory allocating a video frame");
  return f;
}

PacketPtr make_packet() {
  PacketPtr p(av_packet_alloc());
  if (!p) throw Error(ErrorCode::limit_exceeded, "out of memory allocating a packet");
  return p;
}

CodecContextPtr open_stream_decoder(const AVStream& stream, const char* what) {
  const AVCodec* dec = avcodec_find_decoder(stream.codecpar->codec_id);
  if (!dec)
    throw Error(ErrorCode::unsupported, fmt::format("no decoder for {} stream #{} ({})", what, stream.index,
                                                    avcodec_get_name(stream.codecpar->codec_id)));
  CodecContextPtr ctx(avcodec_alloc_context3(dec));
  if (!ctx) throw Error(ErrorCode::limit_exceeded, "out of memory creating a decoder");
  check_av(avcodec_parameters_to_context(ctx.get(), stream.codecpar), ErrorCode::invalid_media,
           fmt::format("bad {} stream parameters", what));
  ctx->pkt_timebase = stream.time_base;
  check_av(avcodec_open2(ctx.get(), dec, nullptr), ErrorCode::unsupported,
           fmt::format("cannot open the {} decoder for stream #{}", what, stream.index));
  return ctx;
}

int parse_filter_chain(AVFilterGraph* graph, AVFilterContext* source, AVFilterContext* sink,
                       const std::string& chain) {
  AVFilterInOut* outputs = avfilter_inout_alloc();
  AVFilterInOut* inputs = avfilter_inout_alloc();
  if (!outputs || !inputs) {
    avfilter_inout_free(&inputs);
    avfilter_inout_free(&outputs);
    return AVERROR(ENOMEM);
  }
  outputs->name = av_strdup("in");
  outputs->filter_ctx = source;
  inputs->name = av_strdup("out");
  inputs->filter_ctx = sink;
  const int rc = avfilter_graph_parse_ptr(graph, chain.c_str(), &inputs, &outputs, nullptr);
  avfilter_inout_free(&inputs);
  avfilter_inout_free(&outputs);
  return rc;
}

std::string av_error_text(int code) {
  char buffer[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, buffer, sizeof buffer);
  return buffer;
}

int check_av(int rc, ErrorCode code, std::string_view what) {
  if (rc < 0) throw Error(code, fmt::format("{}: {}", what, av_error_text(rc)));
  return rc;
}

std::string format_timestamp(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t ms = int64_t(std::llround(seconds * 1000));
  return fmt::format("{:02}:{:02}:{:02}.{:03}", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60, ms % 1000);
}

double parse_timestamp(const std::string& text, const std::string& option) {
  double total = 0;
  size_t pos = 0;
  int fields = 0;
  bool ok = !text.empty();
  while (ok && pos <= text.size()) {
    const size_t colon = text.find(':', pos);
    const std::string part = text.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
    char* end = nullptr;
    const double v = std::strtod(part.c_str(), &end);
    ok = !part.empty() && end && *end == '\0' && v >= 0 && std::isfinite(v) && ++fields <= 3;
    total = total * 60 + v;
    if (colon == std::string::npos) break;
    pos = colon + 1;
  }
  if (!ok)
    throw Error(
        ErrorCode::invalid_argument,
        fmt::format("{} '{}' is not a time: use seconds (90, 12.5) or [HH:]MM:SS[.ms]", option, text));
  return total;
}

void configure_ffmpeg_logging() {
  static std::once_flag once;
  std::call_once(once, [] {
    int level = AV_LOG_FATAL;
    if (const char* env = std::getenv("UPRES_FFMPEG_LOG")) {
      const std::string v = env;
      level = v == "debug"     ? AV_LOG_DEBUG
              : v == "info"    ? AV_LOG_INFO
              : v == "warning" ? AV_LOG_WARNING
              : v == "error"   ? AV_LOG_ERROR
                               : level;
      if (v == "quiet") level = AV_LOG_QUIET;
    }
    av_log_set_level(level);
  });
}

}  // namespace upres
