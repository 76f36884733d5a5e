// The input side of a video job: a demuxer (libavformat), the chosen video stream's decoder
// (libavcodec, optionally on a hardware device with a software fallback), and the display
// rotation the container asks players to apply.
#pragma once

#include <string>
#include <vector>

#include "media/av_common.hpp"

namespace upres {

class VideoInput {
 public:
  // Opens `path` and the decoder of its best video stream. hwaccel: "", "none", "auto",
  // "cuda" or "vaapi"; when the device cannot be opened, decoding falls back to the CPU and a
  // warning says so.
  // threads: decoder threads, 0 for one per core.
  VideoInput(const std::string& path, const std::string& hwaccel = "", int threads = 0);

  AVFormatContext* format() const { return format_.get(); }
  AVStream* video_stream() const { return format_->streams[video_index_]; }
  int video_index() const { return video_index_; }
  AVCodecContext* decoder() const { return decoder_.get(); }
  const std::string& path() const { return path_; }

  // Degrees clockwise a player turns the picture (0, 90, 180 or 270) from the display matrix.
  int display_rotation() const { return rotation_; }
  // "cuda", "vaapi" or "" (software).
  const std::string& hwaccel() const { return hw_name_; }
  const std::vector<std::string>& warnings() const { return warnings_; }

  // Seeks to the key frame at or before `seconds` (in the file's timeline).
  void seek(double seconds);

  // The next packet of any stream. false at the end of the file, or where the file is damaged
  // past repair (a warning then says where the input was cut short).
  bool read_packet(AVPacket* packet);

  // Decoding the video stream: a packet (nullptr flushes), then frames until EAGAIN/EOF.
  // Damaged packets are skipped and counted. Frames decoded on a device are copied to memory.
  void send(const AVPacket* packet);
  // true and a frame with pts set (best effort), or false when the decoder needs more input.
  bool receive(AVFrame* frame);
  bool drained() const { return drained_; }
  // Where the frame after the last one received would start (its pts plus its duration, or one
  // frame time): the end of the video so far. AV_NOPTS_VALUE before the first frame.
  int64_t next_pts() const { return end_pts_; }
  int damaged_packets() const { return damaged_packets_; }
  // Where the packets read so far reach, in seconds from the file's start (the latest end of any
  // stream's packet); a truncated file stops short of its declared duration on every stream.
  double packets_end_seconds() const { return packets_end_seconds_; }
  // The same for one stream (0 before its first packet).
  double packets_end_seconds(int stream) const {
    return size_t(stream) < stream_ends_.size() ? stream_ends_[size_t(stream)] : 0;
  }
  // A read failed (the rest of the file could not be read).
  bool cut_short() const { return cut_short_; }

  // Frames the stream holds, from its header or duration x rate; 0 when unknown.
  int64_t estimated_frames() const;
  double duration_seconds() const;
  // Seconds from the file's start (its first timestamp) to `ts` in `time_base` (default: the
  // video stream's).
  double seconds_of(int64_t ts) const { return seconds_of(ts, video_stream()->time_base); }
  double seconds_of(int64_t ts, AVRational time_base) const;
  int64_t start_time_us() const;  // the file's start in AV_TIME_BASE units (0 when unknown)

 private:
  std::string path_;
  InputContextPtr format_;
  CodecContextPtr decoder_;
  BufferRefPtr hw_device_;
  FramePtr hw_frame_;
  int video_index_ = -1;
  int rotation_ = 0;
  std::string hw_name_;
  std::vector<std::string> warnings_;
  bool drained_ = false;
  int damaged_packets_ = 0;
  double packets_end_seconds_ = 0;
  std::vector<double> stream_ends_;   // by stream, as packets_end_seconds(stream)
  int64_t end_pts_ = AV_NOPTS_VALUE;  // the latest end of a frame received, for next_pts()
  bool cut_short_ = false;
  int64_t next_pts_ = AV_NOPTS_VALUE;
};

}  // namespace upres
