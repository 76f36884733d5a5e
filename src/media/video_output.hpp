// The output side of a video job: a muxer (libavformat) writing to a partial file beside the
// destination (core/partial_file.hpp), the video encoder, streams copied packet for packet, and the
// final rename. Until finish() succeeds the destination is untouched; destroying an unfinished
// output removes the partial file.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "core/partial_file.hpp"
#include "media/av_common.hpp"

extern "C" {
#include <libavutil/mastering_display_metadata.h>
}

namespace upres {

// "mp4", "mov", "matroska" or "webm" for a file name; throws Error(invalid_argument) with what to
// use instead for GIF, audio-only and unknown extensions. The rules are upres/policy.hpp's
// (video_muxer_for_path), which every front end applies too.
std::string container_for_path(const std::string& path);

// Segment files (pipeline/segments.cpp) are NUT, which keeps any time base exactly where
// Matroska rounds to milliseconds, so that joined segments carry the source's timestamps. Only
// segments are written in it.
bool is_segment_path(const std::string& path);

struct VideoEncoderSettings {
  std::string codec = "libx264";
  int crf = -1;         // -1: the codec's default quality
  int64_t bitrate = 0;  // bits per second; 0: constant quality
  std::string preset;   // encoder speed preset; "": its default
  int gop = 0;          // key frame interval; 0: the encoder's default
  int threads = 0;      // encoder threads; 0: one per core
  int width = 0, height = 0;
  AVPixelFormat format = AV_PIX_FMT_NONE;  // from choose_encoder_format
  AVRational time_base{1, 25};
  AVRational frame_rate{25, 1};
  AVRational sample_aspect_ratio{1, 1};
  AVColorPrimaries primaries = AVCOL_PRI_UNSPECIFIED;
  AVColorTransferCharacteristic transfer = AVCOL_TRC_UNSPECIFIED;
  AVColorSpace matrix = AVCOL_SPC_UNSPECIFIED;
  AVColorRange range = AVCOL_RANGE_UNSPECIFIED;
  AVChromaLocation chroma_location = AVCHROMA_LOC_UNSPECIFIED;
  // HDR10 metadata for the encoder's SEI (x264, x265, SVT-AV1) and the container's boxes: the
  // source's, from its frames (SEI) or its stream. has_* false: none.
  AVMasteringDisplayMetadata mastering{};
  AVContentLightMetadata light{};
  bool has_light = false;
};

// The mastering display and content light level of a decoded frame (its SEI), else of its
// stream (the container's boxes), into `s`.
void hdr_metadata_from(const AVFrame& frame, const AVStream& stream, VideoEncoderSettings& s);

// The pixel format the encoder will get: the requested one, or the source's when the encoder
// takes it, or the closest one it takes at the source's bit depth. Throws when none fits.
AVPixelFormat choose_encoder_format(const AVCodec& codec, AVPixelFormat source, const std::string& requested);

// Looks up an encoder by name; throws Error(not_found) listing the usable ones otherwise.
const AVCodec& find_video_encoder(const std::string& name);
// The constant-quality values (-crf, or -cq for NVENC) an encoder takes, lowest first.
std::pair<int, int> crf_range(const std::string& encoder);

class VideoOutput {
 public:
  VideoOutput(const std::string& path, bool overwrite);
  ~VideoOutput();
  VideoOutput(const VideoOutput&) = delete;
  VideoOutput& operator=(const VideoOutput&) = delete;

  AVFormatContext* format() const { return format_; }
  const std::string& path() const { return path_; }

  // Opens the video encoder and its stream; `source` lends metadata and HDR side data.
  void add_video(const VideoEncoderSettings& settings, const AVStream* source);
  // Or a video stream whose packets come encoded already (joined segments, `encoded` their
  // stream); returns its output index.
  int add_encoded_video(const AVStream* encoded, const AVStream* source);
  AVCodecContext* encoder() const { return encoder_.get(); }
  // A stream whose packets are copied unchanged; returns its output index.
  int add_copy(const AVStream* source);
  // A stream for an encoder opened elsewhere (audio transcoding).
  AVStream* add_encoded_stream(const AVCodecContext* encoder, const AVStream* source);

  void write_header(const AVFormatContext* source);
  // Sends a frame to the video encoder (nullptr flushes) and muxes whatever comes out.
  void encode(const AVFrame* frame);
  // Muxes a packet whose timestamps are in `from` (thread-safe; interleaved by the muxer).
  void write(AVPacket* packet, AVRational from, int out_index);
  // Writes the trailer, closes and renames the temporary file onto the destination.
  void finish();
  int64_t bytes_written() const { return bytes_; }

 private:
  void inherit_from_source(const AVStream* source);  // metadata, disposition, HDR side data

  std::string path_;
  std::unique_ptr<PartialFile> partial_;  // the file being written; renamed onto path_ by finish()
  AVFormatContext* format_ = nullptr;
  CodecContextPtr encoder_;
  AVStream* video_stream_ = nullptr;
  PacketPtr packet_;
  std::mutex mux_mutex_;
  int64_t bytes_ = 0;
  int64_t frames_sent_ = 0;           // frames handed to the encoder
  int64_t packets_before_flush_ = 0;  // packets it gave back before the end of the stream
};

}  // namespace upres
