// The filters applied before upscaling (libavfilter): the container's display rotation, then
// the user's crop, rotation, flips and frame-rate conversion. The sink accepts only pixel
// formats the colour converters read, so libavfilter converts anything else on the way.
#pragma once

#include <string>

#include "media/av_common.hpp"

namespace upres {

struct FilterSettings {
  int display_rotation = 0;  // clockwise degrees from the container, applied first
  std::string crop;          // "WxH+X+Y" or ""
  int rotate = 0;            // clockwise degrees: 0, 90, 180, 270
  bool hflip = false, vflip = false;
  AVRational fps{0, 1};  // constant output rate; 0: keep each frame's timestamp
};

// "WxH+X+Y" -> the crop filter's arguments; throws Error(invalid_argument) when malformed.
struct CropRect {
  int w = 0, h = 0, x = 0, y = 0;
};
CropRect parse_crop(const std::string& text);

// The filter chain as libavfilter text, e.g. "transpose=clock,crop=640:360:0:0,hflip"; "null"
// when there is nothing to do.
std::string filter_chain(const FilterSettings& settings);

class VideoFilter {
 public:
  // Built for frames like `first` (size, format, aspect) in `time_base`.
  VideoFilter(const FilterSettings& settings, const AVFrame& first, AVRational time_base,
              AVRational frame_rate);

  // Sends a frame in, taking its reference (nullptr: end of stream); then take frames out until
  // pull returns false.
  void push(AVFrame* frame);
  bool pull(AVFrame* frame);
  // Ends the stream at `pts` (the input time base) rather than at the last frame's end: a rate
  // change (fps) then fills its output up to that time, as it would had the next frame come.
  void close(int64_t pts);

  int width() const;
  int height() const;
  AVPixelFormat format() const;
  AVRational time_base() const;
  AVRational frame_rate() const;
  AVRational sample_aspect_ratio() const;
  const std::string& description() const { return chain_; }

 private:
  FilterGraphPtr graph_;
  AVFilterContext* source_ = nullptr;
  AVFilterContext* sink_ = nullptr;
  std::string chain_;
};

}  // namespace upres
