// Converts a text subtitle stream into the text codec a container holds (mov_text for mp4 and
// mov, WebVTT for webm), cue by cue, keeping each cue's timing.
#pragma once

#include "media/av_common.hpp"
#include "media/video_output.hpp"

namespace upres {

class SubtitleConverter {
 public:
  // The text codec `format` holds; AV_CODEC_ID_NONE when it holds none.
  static AVCodecID target_codec(const AVOutputFormat& format);
  // True when `source` is text (not bitmaps) and a decoder for it exists.
  static bool convertible(const AVStream& source);

  SubtitleConverter(const AVStream& source, AVCodecID target, VideoOutput& output);
  // A packet whose timestamps are already on the output timeline, in the source's time base.
  void send(const AVPacket* packet);

 private:
  VideoOutput& output_;
  AVRational source_time_base_;
  CodecContextPtr decoder_, encoder_;
  PacketPtr packet_;
  int out_index_ = -1;
};

}  // namespace upres
