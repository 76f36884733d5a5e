// Synthetic videos for the demo (`upres sample`), tests and fuzzing; not part of the public API.
#pragma once

#include <cstdint>
#include <string>

namespace upres {

// A synthetic video for demos and tests, made in process: a moving test pattern, optionally with
// a sine-tone audio track, subtitles, variable frame timing, 10-bit samples, a display rotation
// and metadata. The container follows the file extension.
struct TestVideoSpec {
  int width = 160, height = 90;
  int frames = 30;
  int fps = 30;
  std::string video_codec = "libx264";  // libvpx-vp9 in webm
  std::string pix_fmt = "yuv420p";
  bool audio = true;                  // 48 kHz tone: aac (mp4, mov, mkv) or libopus (webm)
  int audio_channels = 2;             // 6: 5.1
  bool subtitles = false;             // one cue a second: mov_text (mp4, mov), subrip (mkv), webvtt (webm)
  bool variable_rate = false;         // frame intervals alternate between 1 and 2 frame times
  int rotation = 0;                   // display rotation tag, degrees clockwise
  std::string title;                  // container metadata
  double start_seconds = 0;           // every stream's first time; below 0 where the container keeps it
  double audio_delay = 0;             // seconds the audio starts after the video (whole samples)
  bool fragmented = false;            // mp4/mov in fragments (as DASH and live encoders write)
  bool audio_priming_packet = false;  // a first audio packet with no duration, sharing the next's time
  // HEVC (libx265) 10-bit BT.2020 PQ whose mastering display (P3 primaries, 1000 cd/m2) and light
  // level (1000, 400) are only in SEI messages, as cameras and grading tools write them.
  bool hdr10_sei = false;
  uint32_t seed = 1;
};
void write_test_video(const std::string& path, const TestVideoSpec& spec);

}  // namespace upres
