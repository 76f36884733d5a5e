// The running half of a video job: a prepared job (everything opened and decided by
// video_job.cpp) carried through five stages on their own threads, joined by bounded queues
// over a fixed pool of frame slots:
//
//   decode+filter -> convert in -> infer -> convert out -> encode+mux
//        ^_______________________ free slots ______________________|
//
// Each slot owns its buffers (the filtered frame, the float input and output images, the frame
// handed to the encoder); they are sized on first use and reused, so the steady state allocates
// no frame memory. Packets of other streams inside the range go to the sink from the decode
// thread.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "media/color.hpp"
#include "media/video_filter.hpp"
#include "media/video_input.hpp"
#include "pipeline/video_sink.hpp"
#include "runtime/frame_path.hpp"
#include "upres/upscaler.hpp"
#include "upres/video.hpp"

namespace upres {

// Everything a run needs, opened and decided before any work.
struct PreparedJob {
  explicit PreparedJob(const VideoOptions& options) : o(options) {}

  const VideoOptions& o;
  VideoRange range;  // in the input's video time base
  std::unique_ptr<VideoInput> input;
  std::unique_ptr<VideoFilter> filter;
  FramePtr first = make_frame();         // the first decoded frame, held until the pipeline starts
  std::vector<PacketPtr> early_packets;  // other streams' packets read before it
  std::shared_ptr<const Model> model;
  std::unique_ptr<Upscaler> upscaler;
  UpscaleOptions engine;  // what the upscaler was made with
  // Set when the upscaler's backend converts whole frames itself: decoded planes go to it and
  // the encoder's planes come back, with no float images on the host.
  std::unique_ptr<FramePath> frame_path;
  std::unique_ptr<VideoSink> sink;
  ColorSpec in_color, out_color;
  VideoPlan plan;
  int64_t zero_us = 0;  // input time that becomes 0 in the output
  PacketPtr packet = make_packet();
  bool input_eof = false;
  bool reached_range_end = false;  // decoding stopped at a frame at or past range.end

  // The next decoded video frame inside the range, in presentation order; packets of other
  // streams read on the way go to `other`. False at the range's end or the input's.
  bool decode_next(AVFrame* frame, const std::function<void(AVPacket*)>& other);
  // Whether a packet of any stream presents inside the range (packets without a time do).
  bool in_range(const AVPacket& packet) const;
  // Hands a packet of another stream to the sink when it is inside the range.
  void route(AVPacket* packet);
};

// Whether a packet of a stream with time base `tb` presents inside `range` (in the video time base
// `video_tb`); packets without a time do.
bool packet_in_range(const AVPacket& packet, AVRational tb, const VideoRange& range, AVRational video_tb);
// A subtitle cue that starts inside the range but would outlast it is cut to end with it, as the
// video does (its packet's duration shortened); other packets are left as they are.
void cut_cue_at_range_end(AVPacket& packet, const AVStream& stream, const VideoRange& range,
                          AVRational video_tb);

// The frame rate --fps or --cfr asks of a video stream; {0, 1} when the source's timing is kept.
AVRational output_frame_rate(const VideoOptions& o, const AVStream& video);

VideoStats run_pipeline(PreparedJob& job, const VideoProgressCallback& progress, const CancelToken* cancel);

}  // namespace upres
