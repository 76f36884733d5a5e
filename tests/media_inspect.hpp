// Reads back a video file with FFmpeg's libraries so tests can check what upres wrote:
// streams, codecs, sizes, pixel formats, timestamps, packet checksums and decoded frames.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "upres/image.hpp"

namespace upres::test {

struct StreamInfo {
  std::string type, codec;
  int width = 0, height = 0;
  std::string pix_fmt;
  int bits = 0;      // bits per sample of the video
  int rotation = 0;  // display matrix, degrees clockwise
  std::string color_space, color_range;
  std::map<std::string, std::string> metadata;
  std::vector<double> pts;              // seconds, video frames in presentation order / packets otherwise
  std::vector<uint64_t> packet_hashes;  // FNV-1a of each packet's data, in file order
  int64_t packets = 0;
  double duration = 0;  // seconds, from the last packet's end
  int channels = 0;     // audio
  // HDR10 metadata: in the container's stream side data, and in the first decoded frame (SEI).
  bool stream_mastering = false, stream_light = false, frame_mastering = false, frame_light = false;
  double max_luminance = 0;  // cd/m2, from the frame's or else the stream's mastering display
  unsigned max_cll = 0;
  std::string channel_layout;
};

struct MediaInfo {
  std::vector<StreamInfo> streams;
  std::map<std::string, std::string> metadata;
  double duration = 0;
  int video_index = -1;
  const StreamInfo& video() const { return streams.at(size_t(video_index)); }
  int count(const std::string& type) const;
  const StreamInfo* first(const std::string& type) const;
};

// Demuxes the whole file and decodes the video stream. Throws upres::Error on failure.
MediaInfo inspect_media(const std::string& path);

// Decoded video frame `index` as float RGB (BT.601/709 by the stream's tags), and the raw first
// plane's samples (to check bit depth).
Image decode_frame(const std::string& path, int index, std::vector<uint16_t>* luma = nullptr);

// Root mean square of the first audio stream's decoded samples (all channels).
double audio_rms(const std::string& path);

// Files in `dir` (names only).
std::vector<std::string> list_dir(const std::string& dir);

}  // namespace upres::test
