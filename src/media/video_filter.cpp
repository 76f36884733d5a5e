#include "media/video_filter.hpp"

#include <cstdio>
#include <vector>

#include <fmt/format.h>

extern "C" {
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/opt.h>
}

#include "core/parse_fields.hpp"
#include "media/color.hpp"
#include "upres/error.hpp"

namespace upres {
namespace {

void append_rotation(std::vector<std::string>& chain, int degrees) {
  if (degrees == 90) chain.push_back("transpose=clock");
  if (degrees == 180) chain.insert(chain.end(), {"hflip", "vflip"});
  if (degrees == 270) chain.push_back("transpose=cclock");
}

}  // namespace

CropRect parse_crop(const std::string& text) {
  // Digits only, each at most 2^20: a number past 32 bits is refused, never wrapped into a
  // small valid-looking one; whether the rectangle lies inside the picture is checked later.
  constexpr int64_t kMaxValue = 1 << 20;
  const auto v = parse_number_fields(text, "x++", kMaxValue);
  if (!v || (*v)[0] == 0 || (*v)[1] == 0)
    throw Error(ErrorCode::invalid_argument,
                fmt::format("--crop '{}' is not WIDTHxHEIGHT+X+Y in whole numbers 0..{} (for example "
                            "1280x720+0+0)",
                            text, kMaxValue));
  return {int((*v)[0]), int((*v)[1]), int((*v)[2]), int((*v)[3])};
}

std::string filter_chain(const FilterSettings& s) {
  std::vector<std::string> chain;
  append_rotation(chain, s.display_rotation);
  if (!s.crop.empty()) {
    const CropRect r = parse_crop(s.crop);
    chain.push_back(fmt::format("crop={}:{}:{}:{}:exact=1", r.w, r.h, r.x, r.y));
  }
  append_rotation(chain, s.rotate);
  if (s.hflip) chain.push_back("hflip");
  if (s.vflip) chain.push_back("vflip");
  if (s.fps.num > 0) chain.push_back(fmt::format("fps={}/{}", s.fps.num, s.fps.den));
  if (chain.empty()) return "null";
  std::string text;
  for (const auto& f : chain) text += (text.empty() ? "" : ",") + f;
  return text;
}

VideoFilter::VideoFilter(const FilterSettings& settings, const AVFrame& first, AVRational time_base,
                         AVRational frame_rate)
    : graph_(avfilter_graph_alloc()), chain_(filter_chain(settings)) {
  if (!graph_) throw Error(ErrorCode::limit_exceeded, "out of memory creating a filter graph");
  graph_->nb_threads = 1;  // the pipeline gives each stage its own thread already
  const AVRational sar = first.sample_aspect_ratio.num ? first.sample_aspect_ratio : AVRational{1, 1};
  const std::string args =
      fmt::format("video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect={}/{}", first.width, first.height,
                  first.format, time_base.num, time_base.den, sar.num, sar.den) +
      (frame_rate.num > 0 ? fmt::format(":frame_rate={}/{}", frame_rate.num, frame_rate.den) : "");
  check_av(avfilter_graph_create_filter(&source_, avfilter_get_by_name("buffer"), "in", args.c_str(), nullptr,
                                        graph_.get()),
           ErrorCode::invalid_media, "cannot create the filter source");
  check_av(avfilter_graph_create_filter(&sink_, avfilter_get_by_name("buffersink"), "out", nullptr, nullptr,
                                        graph_.get()),
           ErrorCode::invalid_media, "cannot create the filter sink");
  std::vector<AVPixelFormat> formats = convertible_pixel_formats();
  formats.push_back(AV_PIX_FMT_NONE);
  check_av(av_opt_set_int_list(sink_, "pix_fmts", formats.data(), AV_PIX_FMT_NONE, AV_OPT_SEARCH_CHILDREN),
           ErrorCode::invalid_media, "cannot set the filter sink's formats");

  int rc = parse_filter_chain(graph_.get(), source_, sink_, chain_);
  check_av(rc, ErrorCode::invalid_argument, fmt::format("filters '{}' cannot be built", chain_));
  rc = avfilter_graph_config(graph_.get(), nullptr);
  if (rc < 0)
    throw Error(ErrorCode::invalid_argument,
                fmt::format("filters '{}' do not fit a {}x{} frame (is the crop inside the picture?): {}",
                            chain_, first.width, first.height, av_error_text(rc)));
}

void VideoFilter::push(AVFrame* frame) {
  const int rc = av_buffersrc_add_frame_flags(source_, frame, 0);
  if (rc == AVERROR(EINVAL))
    throw Error(ErrorCode::unsupported,
                "the video changes size or pixel format mid-stream, which upres does not support yet");
  check_av(rc, ErrorCode::invalid_media, "filtering a frame failed");
}

void VideoFilter::close(int64_t pts) {
  check_av(av_buffersrc_close(source_, pts, 0), ErrorCode::invalid_media, "ending the filter stream failed");
}

bool VideoFilter::pull(AVFrame* frame) {
  const int rc = av_buffersink_get_frame(sink_, frame);
  if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return false;
  check_av(rc, ErrorCode::invalid_media, "filtering a frame failed");
  return true;
}

int VideoFilter::width() const {
  return av_buffersink_get_w(sink_);
}
int VideoFilter::height() const {
  return av_buffersink_get_h(sink_);
}
AVPixelFormat VideoFilter::format() const {
  return AVPixelFormat(av_buffersink_get_format(sink_));
}
AVRational VideoFilter::time_base() const {
  return av_buffersink_get_time_base(sink_);
}
AVRational VideoFilter::frame_rate() const {
  return av_buffersink_get_frame_rate(sink_);
}
AVRational VideoFilter::sample_aspect_ratio() const {
  return av_buffersink_get_sample_aspect_ratio(sink_);
}

}  // namespace upres
