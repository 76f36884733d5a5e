// Where a video job's output goes. The job hands a sink encoded-ready frames and the packets of
// the source's other streams that fall in its range; the sink decides what it keeps and on which
// timeline.
//
//   FileSink     a whole file: the upscaled video plus audio (copied or re-encoded), subtitles
//                (copied or converted), attachments and metadata; timestamps from zero.
//   SegmentSink  the upscaled video alone, keeping the source's timestamps, so that segments of
//                consecutive ranges join into one stream and the audio is copied once.
//
// Adding a sink: a class here, a VideoSinkKind value and a line in make_video_sink.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "media/video_input.hpp"
#include "media/video_output.hpp"
#include "upres/video.hpp"

namespace upres {

class VideoSink {
 public:
  virtual ~VideoSink() = default;
  VideoOutput& output() { return *output_; }

  // Opens the video encoder (`source`: the input's video stream, for metadata and HDR side data)
  // and whatever other streams of `input` the sink keeps; appends a StreamPlan per input stream
  // to plan.streams (and warnings for drops a user would not expect).
  virtual void open(VideoInput& input, const VideoEncoderSettings& video, VideoPlan& plan) = 0;
  // The source time, in microseconds, that becomes 0 in the output, for a job whose range
  // starts at `range_start_us`.
  virtual int64_t zero_us(int64_t range_start_us) const = 0;
  // A packet of another stream, inside the range, with source timestamps; `zero_us` as above.
  virtual void send_packet(AVPacket* packet, int64_t zero_us) = 0;
  // The end of the other streams (flushes re-encoders).
  virtual void finish_packets() {}
  // Input streams of sound the sink keeps that were sent no packet at all.
  virtual std::vector<int> kept_streams_without_packets() const { return {}; }

  void write_header(const AVFormatContext* source) { output_->write_header(source); }
  void encode(const AVFrame* frame) { output_->encode(frame); }
  void finish() { output_->finish(); }

 protected:
  explicit VideoSink(const VideoOptions& options);
  const VideoOptions& options_;
  std::unique_ptr<VideoOutput> output_;
};

std::unique_ptr<VideoSink> make_video_sink(const VideoOptions& options);
// A whole-file sink whose video is already encoded: the packets of `encoded_video` (segments to
// join), written with VideoOutput::write to the output's first stream.
std::unique_ptr<VideoSink> make_join_sink(const VideoOptions& options, const AVStream* encoded_video);

}  // namespace upres
