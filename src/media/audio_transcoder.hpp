// Re-encodes one audio stream: decode, filter (volume, EBU R128 loudness normalisation, and
// the sample format/rate/layout the encoder takes), encode, and hand packets to the muxer.
#pragma once

#include <string>

#include "media/av_common.hpp"
#include "media/video_output.hpp"

namespace upres {

struct AudioSettings {
  std::string codec = "aac";
  int64_t bitrate = 0;          // bits per second; 0: the encoder's default
  double volume_percent = 100;  // 100: unchanged
  bool normalize = false;       // loudnorm to -16 LUFS integrated, -1.5 dBTP
};

// Looks up an audio encoder; throws Error(not_found) naming usable ones otherwise.
const AVCodec& find_audio_encoder(const std::string& name);

class AudioTranscoder {
 public:
  AudioTranscoder(const AVStream& source, const AudioSettings& settings, VideoOutput& output);
  ~AudioTranscoder();

  // A packet of the source stream, its timestamps already moved to the output timeline (in the
  // source stream's time base).
  void send(const AVPacket* packet);
  void flush();

 private:
  void drain_filter();
  void drain_encoder();

  VideoOutput& output_;
  CodecContextPtr decoder_, encoder_;
  FilterGraphPtr graph_;
  AVFilterContext* source_ = nullptr;
  AVFilterContext* sink_ = nullptr;
  FramePtr frame_, filtered_;
  PacketPtr packet_;
  int out_index_ = -1;
};

}  // namespace upres
