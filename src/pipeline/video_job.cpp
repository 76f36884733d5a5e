// A video job, the deciding half: check the options, open the input, decode the first frame,
// choose filters, model, encoder and streams, and record it all in a VideoPlan. The running half
// is video_pipeline.cpp; where the output goes is the sink's business (video_sink.cpp).
#include "upres/video.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>
#include <tuple>

#include <fmt/format.h>

extern "C" {
#include <libavutil/pixdesc.h>
}

#include "core/check_range.hpp"
#include "image/test_pattern.hpp"
#include "media/audio_transcoder.hpp"
#include "pipeline/video_pipeline.hpp"
#include "upres/error.hpp"
#include "upres/files.hpp"

namespace upres {
namespace {

using Clock = std::chrono::steady_clock;

int helper_threads() {
  return std::max(1, int(std::thread::hardware_concurrency()) / 8);
}

// The colour a converted frame goes out in: the source's, adjusted to the encoder's format.
ColorSpec output_color(const ColorSpec& in, AVPixelFormat encoder_format, int height) {
  ColorSpec out = in;
  const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(encoder_format);
  if (d && (d->flags & AV_PIX_FMT_FLAG_RGB)) {
    out.matrix = AVCOL_SPC_RGB;
    out.range = AVCOL_RANGE_JPEG;
  } else {
    if (in.matrix == AVCOL_SPC_RGB) out.matrix = height >= 720 ? AVCOL_SPC_BT709 : AVCOL_SPC_SMPTE170M;
    if (encoder_format == AV_PIX_FMT_YUVJ420P || encoder_format == AV_PIX_FMT_YUVJ422P ||
        encoder_format == AV_PIX_FMT_YUVJ444P)
      out.range = AVCOL_RANGE_JPEG;
    else if (in.matrix == AVCOL_SPC_RGB)
      out.range = AVCOL_RANGE_MPEG;
  }
  return out;
}

}  // namespace

const char* video_phase_name(VideoPhase phase) {
  switch (phase) {
    case VideoPhase::starting: return "starting";
    case VideoPhase::upscaling: return "upscaling";
    case VideoPhase::finishing: return "finishing";
    case VideoPhase::done: return "done";
  }
  return "?";
}

std::string video_model_name(const VideoOptions& o) {
  if (o.mode == "none") {
    if (o.engine.scale > 1 || !o.model.empty())
      throw Error(ErrorCode::invalid_argument,
                  "--mode none does not upscale; drop -s/-m or choose esrgan-2x/esrgan-4x");
    return "";
  }
  if (o.mode == "esrgan-2x" || o.mode == "esrgan-4x") {
    if (!o.model.empty())
      throw Error(ErrorCode::invalid_argument,
                  "--mode picks the model itself; give either --mode or -m, not both");
    return o.mode == "esrgan-2x" ? "realesr-animevideov3-x2" : "realesr-animevideov3-x4";
  }
  if (!o.mode.empty())
    throw Error(ErrorCode::invalid_argument,
                fmt::format("--mode '{}' is not known: use none, esrgan-2x or esrgan-4x", o.mode));
  if (!o.model.empty()) return zoo_model_at_scale(o.model, o.engine.scale > 0 ? o.engine.scale : 2);
  return default_model_for_scale(o.engine.scale);
}

struct VideoJob::Impl : PreparedJob {
  using PreparedJob::PreparedJob;
  std::string video_codec;  // the encoder: the one asked for, or the container's default
  void prepare(bool for_run, const VideoPlan* planned);
};

namespace {

// The range [begin, end) of the input's video timeline that --ss and -t name: each end is the
// first timestamp at or after its time (less a millisecond for times typed in decimals).
VideoRange range_from_seconds(const VideoInput& input, double start, double duration) {
  if (start <= 0 && duration <= 0) return {};
  const AVRational tb = input.video_stream()->time_base;
  auto cut = [&](double seconds) {
    const int64_t us = input.start_time_us() + int64_t(std::llround(seconds * AV_TIME_BASE)) - 1000;
    return av_rescale_q_rnd(us, AV_TIME_BASE_Q, tb, AVRounding(AV_ROUND_UP | AV_ROUND_PASS_MINMAX));
  };
  VideoRange r;
  if (start > 0) r.begin = cut(start);
  if (duration > 0) r.end = cut(start + duration);
  return r;
}

// Where --frames N ends `range`: at the time of output frame N+1, so that the audio and subtitles
// are cut there as -t cuts them. Without a new rate that is the source's frame N+1; with one
// (--fps, --cfr) the time of output slot N counted from the first frame's slot, which the rate
// filter fills from the frames before it. INT64_MAX when the range holds N frames or fewer.
// Frames are decoded to be counted: packets are not frames (VP9 keeps hidden reference frames in
// packets of their own; an edit list marks packets never shown), and decoding costs little beside
// upscaling the same frames.
int64_t end_of_first_frames(const VideoOptions& o, const VideoRange& range) {
  // A second reading of the input, through the pipeline's own decoding (the same frames count).
  PreparedJob scan(o);
  scan.input = std::make_unique<VideoInput>(o.input, "", 0);
  scan.range = range;
  AVFormatContext* ic = scan.input->format();
  for (unsigned i = 0; i < ic->nb_streams; ++i)
    if (int(i) != scan.input->video_index()) ic->streams[i]->discard = AVDISCARD_ALL;
  if (range.begin != INT64_MIN) scan.input->seek(std::max(0.0, scan.input->seconds_of(range.begin)));
  const AVStream& vs = *scan.input->video_stream();
  const AVRational rate = output_frame_rate(o, vs);
  FramePtr frame = make_frame();
  int64_t shown = 0;
  while (scan.decode_next(frame.get(), [](AVPacket*) {})) {
    const int64_t pts = frame->pts;
    av_frame_unref(frame.get());
    if (rate.num > 0) {  // the first frame's slot, plus N
      const AVRational slot = av_inv_q(rate);
      const int64_t end_slot = av_rescale_q_rnd(pts, vs.time_base, slot, AV_ROUND_NEAR_INF) + o.max_frames;
      return av_rescale_q_rnd(end_slot, slot, vs.time_base, AV_ROUND_UP);
    }
    if (shown++ == o.max_frames) return pts;  // frame N+1
  }
  return INT64_MAX;
}

void check_video_options(const VideoOptions& o) {
  if (o.input.empty()) throw Error(ErrorCode::invalid_argument, "no input video given");
  if (o.output.empty()) throw Error(ErrorCode::invalid_argument, "no output file given (-o)");
  if (o.rotate % 90 != 0 || o.rotate < 0 || o.rotate >= 360)
    throw Error(ErrorCode::invalid_argument, fmt::format("--rotate {} is not 0, 90, 180 or 270", o.rotate));
  check_range("--ss", o.start, 0, kMaxSeconds, " seconds");
  check_range("-t", o.duration, 0, kMaxSeconds, " seconds (0: to the end)");
  if (!o.range.whole() && (o.start != 0 || o.duration != 0))
    throw Error(ErrorCode::invalid_argument, "give either a range or --ss/-t, not both");
  if (o.range.begin >= o.range.end)
    throw Error(ErrorCode::invalid_argument, "the range is empty (begin >= end)");
  if (o.fps != 0) check_range("--fps", o.fps, 0.01, kMaxFps, " (or 0: keep the source's timing)");
  check_range("--frames", o.max_frames, 0, kMaxFrames, " (0: all)");
  check_range("--volume", o.volume, 0, kMaxVolumePercent, " percent");
  check_range("-g", o.gop, 0, kMaxGop, " frames (0: the encoder's default)");
  if (o.video_bitrate != 0) check_range("-b:v", o.video_bitrate, kMinBitrate, kMaxVideoBitrate, " bits/s");
  if (o.audio_bitrate != 0) check_range("-b:a", o.audio_bitrate, kMinBitrate, kMaxAudioBitrate, " bits/s");
  for (int track : o.audio_tracks) check_range("--audio-tracks entry", track, 0, kMaxAudioTrack);
  check_range("--max-size", o.max_output_side, 16, kMaxImageSide, " pixels a side");
  check_upscale_options(o.engine);
  if (o.queue_depth < 2 || o.queue_depth > 64)
    throw Error(ErrorCode::invalid_argument, "the frame queue depth must be 2..64");
  if (o.audio_codec == "copy" && (o.volume != 100 || o.normalize))
    throw Error(
        ErrorCode::invalid_argument,
        "--volume and --normalize change the audio, so it cannot be copied: add -c:a aac (or libopus)");
  refuse_overwriting_input(o.input, o.output);
}

}  // namespace

void VideoJob::Impl::prepare(bool for_run, const VideoPlan* planned) {
  check_video_options(o);
  // GIF, audio-only, unknown fail here
  const std::string container = o.sink == VideoSinkKind::video_segment && is_segment_path(o.output)
                                    ? "nut"
                                    : container_for_path(o.output);
  // A plan made earlier already chose the encoder and the model; the same are used again.
  video_codec = planned                  ? planned->encoder
                : !o.video_codec.empty() ? o.video_codec
                : container == "webm"    ? "libvpx-vp9"
                                         : "libx264";
  find_video_encoder(video_codec);
  if (o.crf != -1) {
    const auto [lowest, highest] = crf_range(video_codec);
    check_range(fmt::format("-crf for {}", video_codec), o.crf, lowest, highest, " (lower is better)");
  }
  if (o.audio_codec != "copy") find_audio_encoder(o.audio_codec);
  // The options name the model (a zoo name or a path); a plan's model must be the one they give.
  std::string model_name = video_model_name(o);

  // A model on a host backend needs every core (see yield_to_the_model): the codecs then get one
  // thread each; with the model on a GPU they take what they want.
  bool model_on_cpu = false;
  if (!model_name.empty())
    for (const DeviceInfo& d : list_devices())
      model_on_cpu = model_on_cpu || (d.backend == o.engine.backend && d.kind == DeviceKind::host);
  input = std::make_unique<VideoInput>(o.input, o.hwaccel, model_on_cpu ? helper_threads() : 0);
  const AVStream* vs = input->video_stream();
  range = o.range.whole() ? range_from_seconds(*input, o.start, o.duration) : o.range;
  if (o.max_frames > 0) range.end = std::min(range.end, end_of_first_frames(o, range));
  if (planned && !(planned->range == range))
    throw Error(
        ErrorCode::invalid_argument,
        fmt::format("{} has changed since the job was planned (its range differs); plan it again", o.input));
  const double range_start = range.begin == INT64_MIN ? 0 : std::max(0.0, input->seconds_of(range.begin));
  // Seek only to start later: a seek to the start can land past packets that share the first
  // time (a priming packet with no duration), which a copy must keep.
  if (range.begin != INT64_MIN || o.start > 0) input->seek(range_start);

  // Decode the first frame now: it proves the stream decodes and gives the filters their input.
  if (!decode_next(first.get(), [&](AVPacket* p) { early_packets.emplace_back(av_packet_clone(p)); }))
    throw Error(
        ErrorCode::invalid_media,
        o.start > 0 ? fmt::format("{}: no video frame at or after --ss {}", o.input, o.start)
        : range_start > 0
            ? fmt::format("{}: no video frame at or after {:.3f} s", o.input, range_start)
            : fmt::format("{}: no video frame could be decoded (the file is damaged or empty)", o.input));

  FilterSettings fs;
  fs.display_rotation = input->display_rotation();
  fs.crop = o.crop;
  fs.rotate = o.rotate;
  fs.hflip = o.hflip;
  fs.vflip = o.vflip;
  const AVRational source_rate = vs->avg_frame_rate.num > 0 ? vs->avg_frame_rate : vs->r_frame_rate;
  fs.fps = output_frame_rate(o, *vs);
  filter = std::make_unique<VideoFilter>(fs, *first, vs->time_base, source_rate);

  in_color = resolve_color(*first);
  // An output size: the zoo scale that reaches it picks the model (unless one is named), and
  // the upscaler resamples the model's output to exactly that size.
  std::pair<int, int> target{0, 0};
  if (!o.size.empty()) {
    if (model_name.empty())
      throw Error(ErrorCode::invalid_argument,
                  "--mode none does not upscale; drop --resolution/-w/-h/-s or choose a model");
    if (o.engine.scale != 0)
      throw Error(ErrorCode::invalid_argument, "give a whole scale (-s N) or an output size, not both");
    target = requested_output_size(o.size, filter->width(), filter->height(), true);
    if (target.first <= filter->width() && target.second <= filter->height())
      throw Error(
          ErrorCode::invalid_argument,
          fmt::format("the video is {}x{} already, at or above the {}x{} asked for: nothing to upscale",
                      filter->width(), filter->height(), target.first, target.second));
    const int reach = model_scale_for(filter->width(), filter->height(), target.first, target.second);
    if (o.mode.empty())
      model_name = o.model.empty() ? default_model_for_scale(reach) : zoo_model_at_scale(o.model, reach);
    if (model && model->name() != model_name) model = nullptr;
  }
  int scale = 1;
  int64_t out_w = filter->width(), out_h = filter->height();
  if (!model_name.empty()) {
    if (!model) model = Model::load(model_name);
    UpscaleOptions engine = o.engine;
    engine.output_width = target.first;
    engine.output_height = target.second;
    engine.max_output_side = o.max_output_side;
    if (o.mode == "esrgan-2x" && engine.scale == 0) engine.scale = 2;
    if (o.mode == "esrgan-4x" && engine.scale == 0) engine.scale = 4;
    if (planned && !planned->precision.empty()) engine.precision = precision_from_name(planned->precision);
    if (planned && !planned->backend.empty()) engine.backend = planned->backend;
    upscaler = std::make_unique<Upscaler>(model, engine);
    this->engine = engine;
    scale = upscaler->output_scale();
    std::tie(out_w, out_h) = upscaler->output_size(filter->width(), filter->height());
  }
  if (planned && (model ? model->name() : "") != planned->model)
    throw Error(ErrorCode::invalid_argument,
                fmt::format("the plan was made with model '{}', the options now give '{}'; plan it again",
                            planned->model, model ? model->name() : "none"));
  if (out_w > o.max_output_side || out_h > o.max_output_side)
    throw Error(
        ErrorCode::limit_exceeded,
        fmt::format("the output would be {}x{}, over the cap of {} pixels a side; use a smaller scale, crop "
                    "the input (--crop), or raise the cap (--max-size)",
                    out_w, out_h, o.max_output_side));
  if (planned && (planned->input_width != first->width || planned->input_height != first->height ||
                  planned->output_width != out_w || planned->output_height != out_h))
    throw Error(
        ErrorCode::invalid_argument,
        fmt::format("{} has changed since the job was planned ({}x{} then, {}x{} now); plan it again",
                    o.input, planned->input_width, planned->input_height, first->width, first->height));

  plan.options = o;
  plan.range = range;
  plan.input_width = first->width;
  plan.input_height = first->height;
  plan.filtered_width = filter->width();
  plan.filtered_height = filter->height();
  plan.output_width = int(out_w);
  plan.output_height = int(out_h);
  plan.model = model ? model->name() : "";
  plan.precision = upscaler ? precision_name(upscaler->precision()) : "";
  plan.backend = upscaler ? upscaler->backend() : "";
  plan.scale = scale;
  plan.filters = filter->description();
  plan.hwaccel = input->hwaccel();
  const double range_end = range.end == INT64_MAX ? input->duration_seconds() : input->seconds_of(range.end);
  plan.duration_seconds = std::max(0.0, std::min(range_end, input->duration_seconds()) - range_start);
  plan.frame_rate = filter->frame_rate().num > 0 ? av_q2d(filter->frame_rate()) : av_q2d(source_rate);
  int64_t frames = input->estimated_frames();
  if ((!range.whole() || fs.fps.num > 0) && plan.frame_rate > 0)
    frames = int64_t(std::llround(plan.duration_seconds * plan.frame_rate));
  if (o.max_frames > 0) frames = frames > 0 ? std::min(frames, o.max_frames) : o.max_frames;
  plan.frames = frames;
  if (planned) {
    plan.estimated_seconds = planned->estimated_seconds;
    plan.estimated_seconds_low = planned->estimated_seconds_low;
    plan.estimated_seconds_high = planned->estimated_seconds_high;
  }

  sink = make_video_sink(o);
  // Seconds typed by the user (--ss) become zero exactly as typed; an exact range's start is its
  // first timestamp.
  zero_us = sink->zero_us(o.range.begin != INT64_MIN
                              ? av_rescale_q(range.begin, vs->time_base, AV_TIME_BASE_Q)
                              : input->start_time_us() + int64_t(std::llround(o.start * AV_TIME_BASE)));
  plan.container = sink->output().format()->oformat->name;
  VideoEncoderSettings es;
  es.codec = video_codec;
  es.crf = o.crf;
  es.bitrate = o.video_bitrate;
  es.preset = o.preset;
  es.gop = o.gop;
  es.threads = model_on_cpu ? helper_threads() : 0;
  es.width = int(out_w);
  es.height = int(out_h);
  es.time_base = filter->time_base();
  es.frame_rate = filter->frame_rate().num > 0 ? filter->frame_rate() : source_rate;
  es.sample_aspect_ratio =
      filter->sample_aspect_ratio().num > 0 ? filter->sample_aspect_ratio() : AVRational{1, 1};
  // Chosen once here: the encoder and the colour conversion must agree on it.
  es.format = choose_encoder_format(find_video_encoder(video_codec), filter->format(),
                                    planned ? planned->pixel_format : o.pix_fmt);
  out_color = output_color(in_color, es.format, int(out_h));
  es.primaries = first->color_primaries;
  es.transfer = first->color_trc;
  es.matrix = out_color.matrix;
  es.range = out_color.range;
  es.chroma_location = out_color.chroma_location;
  hdr_metadata_from(*first, *vs, es);
  if (es.mastering.has_primaries && (video_codec == "libaom-av1" || video_codec == "libvpx-vp9"))
    plan.warnings.push_back(fmt::format(
        "{} writes no HDR10 metadata into the video stream; only the container keeps it (libx265, libx264 "
        "and libsvtav1 write both)",
        video_codec));
  plan.encoder = video_codec;
  sink->open(*input, es, plan);
  plan.pixel_format = av_get_pix_fmt_name(sink->output().encoder()->pix_fmt);
  if (upscaler && for_run) {
    const AVCodecContext* enc = sink->output().encoder();
    frame_path = FramePath::make(*upscaler,
                                 plane_format(filter->format(), filter->width(), filter->height(), in_color),
                                 plane_format(enc->pix_fmt, enc->width, enc->height, out_color));
  }
  for (const auto& w : input->warnings()) plan.warnings.push_back(w);
  if (for_run) sink->write_header(input->format());
}

AVRational output_frame_rate(const VideoOptions& o, const AVStream& video) {
  const AVRational source = video.avg_frame_rate.num > 0 ? video.avg_frame_rate : video.r_frame_rate;
  if (o.fps > 0) return av_d2q(o.fps, 1000000);
  if (o.cfr) return source.num > 0 ? source : AVRational{25, 1};
  return {0, 1};
}

VideoJob::VideoJob(VideoOptions options, std::shared_ptr<const Model> model)
    : options_(std::move(options)), model_(std::move(model)) {}

VideoJob::VideoJob(const VideoPlan& plan, std::shared_ptr<const Model> model)
    : options_(plan.options), model_(std::move(model)), plan_(std::make_unique<VideoPlan>(plan)) {}

VideoJob::~VideoJob() = default;

VideoPlan VideoJob::validate() {
  impl_ = std::make_unique<Impl>(options_);
  impl_->model = model_;
  impl_->prepare(false, plan_.get());
  VideoPlan plan = impl_->plan;
  // The estimate: the model timed on a strip of the real frame width (as many rows as make a
  // quarter megapixel), warmed up, a few times; its median rate over the frames, and the range
  // of the runs. The model's cost does not depend on the content.
  if (impl_->upscaler && plan.frames > 0 && !plan_) {
    const int w = plan.filtered_width;
    const int h =
        std::clamp(int(262144 / std::max(1, w)), std::min(16, plan.filtered_height), plan.filtered_height);
    const Image strip = make_test_pattern(w, h);
    std::vector<double> per_pixel;
    // On a thread of its own: the cpu backend's OpenMP team belongs to the thread that first runs
    // it and stays alive with it, and a second team beside a later job's would share the cores
    // with it (a segmented run planned and run in one process was 45 % slower).
    std::exception_ptr failure;
    std::thread timing([&] {
      try {
        // The job's own upscaler, unless it has a target size: that resample is a small part,
        // and its output is the frame's size, not the strip's; one at the model's scale then.
        std::unique_ptr<Upscaler> native;
        if (impl_->engine.output_width > 0) {
          UpscaleOptions o = impl_->engine;
          o.output_width = o.output_height = 0;
          native = std::make_unique<Upscaler>(impl_->model, o);
        }
        Upscaler& timer = native ? *native : *impl_->upscaler;
        Image out;
        timer.upscale_into(strip, out);  // compiles and warms up
        const auto start = Clock::now();
        while (per_pixel.size() < 5 &&
               (per_pixel.size() < 2 || std::chrono::duration<double>(Clock::now() - start).count() < 1.5)) {
          const auto t0 = Clock::now();
          timer.upscale_into(strip, out);
          per_pixel.push_back(std::chrono::duration<double>(Clock::now() - t0).count() / double(w * h));
        }
      } catch (...) {
        failure = std::current_exception();
      }
    });
    timing.join();
    if (failure) std::rethrow_exception(failure);
    std::sort(per_pixel.begin(), per_pixel.end());
    const double pixels = double(plan.filtered_width) * plan.filtered_height * double(plan.frames);
    plan.estimated_seconds = per_pixel[per_pixel.size() / 2] * pixels;
    plan.estimated_seconds_low = per_pixel.front() * pixels;
    plan.estimated_seconds_high = per_pixel.back() * pixels;
  }
  if (!model_) model_ = impl_->model;  // run() need not load it again
  impl_.reset();                       // closes everything; the temporary output file is removed
  plan_ = std::make_unique<VideoPlan>(plan);
  return plan;
}

VideoStats VideoJob::run(const VideoProgressCallback& progress, const CancelToken* cancel) {
  impl_ = std::make_unique<Impl>(options_);
  impl_->model = model_;
  try {
    impl_->prepare(true, plan_.get());
    VideoStats stats = run_pipeline(*impl_, progress, cancel);
    impl_.reset();
    return stats;
  } catch (...) {
    impl_.reset();  // removes the partial output
    throw;
  }
}

VideoPlan plan_video(const VideoOptions& options, std::shared_ptr<const Model> model) {
  return VideoJob(options, std::move(model)).validate();
}

}  // namespace upres
