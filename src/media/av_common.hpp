// Small helpers over FFmpeg's C API: owning pointers with the right free functions, and error
// codes turned into upres::Error with a readable message.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavformat/avformat.h>
#include <libavutil/frame.h>
}

#include <memory>
#include <string>
#include <string_view>

#include "upres/error.hpp"

namespace upres {

struct AvFrameFree {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct AvPacketFree {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct AvCodecContextFree {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct AvInputFree {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct AvFilterGraphFree {
  void operator()(AVFilterGraph* g) const { avfilter_graph_free(&g); }
};
struct AvBufferUnref {
  void operator()(AVBufferRef* b) const { av_buffer_unref(&b); }
};
struct AvDictionaryFree {
  void operator()(AVDictionary* d) const { av_dict_free(&d); }
};

using FramePtr = std::unique_ptr<AVFrame, AvFrameFree>;
using PacketPtr = std::unique_ptr<AVPacket, AvPacketFree>;
using CodecContextPtr = std::unique_ptr<AVCodecContext, AvCodecContextFree>;
using InputContextPtr = std::unique_ptr<AVFormatContext, AvInputFree>;
using FilterGraphPtr = std::unique_ptr<AVFilterGraph, AvFilterGraphFree>;
using BufferRefPtr = std::unique_ptr<AVBufferRef, AvBufferUnref>;

FramePtr make_frame();
PacketPtr make_packet();

// FFmpeg's text for an AVERROR code.
std::string av_error_text(int code);

// Throws Error(code, "<what>: <FFmpeg's text>") when rc < 0; returns rc otherwise. A string_view,
// so per-frame calls with a literal allocate nothing.
int check_av(int rc, ErrorCode code, std::string_view what);

// Opens a decoder for a stream (what: "audio", "subtitle"; named in errors).
CodecContextPtr open_stream_decoder(const AVStream& stream, const char* what);

// Joins `source` to `sink` through the filters in `chain` (libavfilter text). Returns the rc of
// avfilter_graph_parse_ptr and leaves the graph unconfigured, so callers word their own errors.
int parse_filter_chain(AVFilterGraph* graph, AVFilterContext* source, AVFilterContext* sink,
                       const std::string& chain);

// "00:01:02.500" for seconds.
std::string format_timestamp(double seconds);

// Parses "90", "1:30", "00:01:30.5" into seconds; throws Error(invalid_argument) naming `option`.
double parse_timestamp(const std::string& text, const std::string& option);

// Keeps FFmpeg's own log to fatal messages: a damaged stream makes decoders print one line per
// broken macroblock, which would drown our messages (the errors that matter reach the user as
// upres::Error). UPRES_FFMPEG_LOG=debug|info|warning|error brings the log back.
void configure_ffmpeg_logging();

}  // namespace upres
