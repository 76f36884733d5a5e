// A video job: prepare (open, decide, check everything), then five stages on their own threads
// joined by bounded queues over a fixed pool of frame slots:
//
//   decode+filter -> convert in -> infer -> convert out -> encode+mux
//        ^_______________________ free slots ______________________|
//
// Each slot owns its buffers (the filtered frame, the float input and output images, the frame
// handed to the encoder); they are sized on first use and reused, so the steady state allocates
// no frame memory. Non-video packets are copied or re-encoded on the decode thread and muxed
// under the output's lock.
#include "upres/video.hpp"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>

extern "C" {
#include <libavutil/pixdesc.h>
}

#include "core/check_range.hpp"
#include "image/resizer.hpp"
#include "media/audio_transcoder.hpp"
#include "media/color.hpp"
#include "media/subtitle_converter.hpp"
#include "media/video_filter.hpp"
#include "media/video_input.hpp"
#include "media/video_output.hpp"
#include "pipeline/bounded_queue.hpp"
#include "upres/error.hpp"
#include "upres/files.hpp"

namespace upres {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

void name_thread(const char* name) {
  pthread_setname_np(pthread_self(), name);
}

// On the CPU backend the model needs every core, and its OpenMP team waits at a barrier for
// its slowest thread: a core lent to the encoder for a few milliseconds stalls the whole team.
// So the other stages run one thread each at a lower priority, filling the gaps the model
// leaves instead of competing with it (measured in docs/BENCHMARKS.md).
void yield_to_the_model() {
  setpriority(PRIO_PROCESS, id_t(syscall(SYS_gettid)), 5);
}

int helper_threads() {
  return std::max(1, int(std::thread::hardware_concurrency()) / 8);
}

struct Slot {
  FramePtr decoded = make_frame();  // filtered, not yet converted
  Image in, out;
  FramePtr encoded = make_frame();
  int64_t pts = 0;
};

const char* media_type_name(AVMediaType t) {
  switch (t) {
    case AVMEDIA_TYPE_VIDEO: return "video";
    case AVMEDIA_TYPE_AUDIO: return "audio";
    case AVMEDIA_TYPE_SUBTITLE: return "subtitle";
    case AVMEDIA_TYPE_ATTACHMENT: return "attachment";
    default: return "data";
  }
}

std::string stream_details(const AVStream& st) {
  const AVCodecParameters& p = *st.codecpar;
  std::string d;
  if (p.codec_type == AVMEDIA_TYPE_VIDEO) {
    const char* pf = av_get_pix_fmt_name(AVPixelFormat(p.format));
    d = fmt::format("{}x{} {}", p.width, p.height, pf ? pf : "?");
    if (st.avg_frame_rate.num > 0) d += fmt::format(" {:.3g} fps", av_q2d(st.avg_frame_rate));
  } else if (p.codec_type == AVMEDIA_TYPE_AUDIO) {
    d = fmt::format("{} Hz, {} ch", p.sample_rate, p.ch_layout.nb_channels);
  }
  if (p.bit_rate > 0) d += fmt::format("{}{} kb/s", d.empty() ? "" : ", ", p.bit_rate / 1000);
  if (const AVDictionaryEntry* lang = av_dict_get(st.metadata, "language", nullptr, 0))
    d += fmt::format("{}{}", d.empty() ? "" : ", ", lang->value);
  return d;
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
  if (!o.model.empty()) return o.model;
  return default_model_for_scale(o.engine.scale);
}

struct VideoJob::Impl {
  const VideoOptions& o;
  std::unique_ptr<VideoInput> input;
  std::unique_ptr<VideoFilter> filter;
  FramePtr first = make_frame();         // the first decoded frame, held until the pipeline starts
  std::vector<PacketPtr> early_packets;  // other streams' packets read before the header
  std::shared_ptr<const Model> model;
  std::unique_ptr<Upscaler> upscaler;
  std::unique_ptr<VideoOutput> output;
  std::vector<int> copy_index;  // input stream -> output stream for copies; -1 otherwise
  std::map<int, std::unique_ptr<AudioTranscoder>> transcoders;
  std::map<int, std::unique_ptr<SubtitleConverter>> subtitle_converters;
  ColorSpec in_color, out_color;
  std::string video_codec;  // the encoder chosen for the container when none was asked for
  VideoPlan plan;
  int scale = 1;
  int64_t offset_us = 0;  // input time that becomes 0 in the output
  PacketPtr packet = make_packet();
  bool input_eof = false;

  explicit Impl(const VideoOptions& options) : o(options) {}

  double trim_end() const { return o.duration > 0 ? o.start + o.duration : 0; }

  // Seconds of a packet from the start of the file.
  double packet_seconds(const AVPacket& p) const {
    const AVStream* st = input->format()->streams[p.stream_index];
    const int64_t ts = p.pts != AV_NOPTS_VALUE ? p.pts : p.dts;
    return ts == AV_NOPTS_VALUE ? -1 : input->seconds_of(ts, st->time_base);
  }

  // The next decoded video frame inside the trim window; other packets go to `other`.
  template <typename Other>
  bool decode_next(AVFrame* frame, Other&& other) {
    for (;;) {
      if (input->receive(frame)) {
        const double t = input->seconds_of(frame->pts);
        if (t < o.start - 1e-3) {
          av_frame_unref(frame);
          continue;
        }
        if (trim_end() > 0 && t >= trim_end() - 1e-6) {
          av_frame_unref(frame);
          return false;
        }
        return true;
      }
      if (input->drained()) return false;
      if (input_eof) {
        input->send(nullptr);
        continue;
      }
      if (!input->read_packet(packet.get())) {
        input_eof = true;
        continue;
      }
      if (packet->stream_index == input->video_index())
        input->send(packet.get());
      else
        other(packet.get());
      av_packet_unref(packet.get());
    }
  }

  // Copies or re-encodes a packet of a kept stream, moved onto the output timeline.
  void route(AVPacket* p) {
    const int i = p->stream_index;
    const auto t = transcoders.find(i);
    const auto sc = subtitle_converters.find(i);
    if (copy_index[size_t(i)] < 0 && t == transcoders.end() && sc == subtitle_converters.end()) return;
    const double sec = packet_seconds(*p);
    const AVStream* st = input->format()->streams[i];
    const double dur = p->duration > 0 ? double(p->duration) * av_q2d(st->time_base) : 0;
    if (sec >= 0 && (sec + dur <= o.start || (trim_end() > 0 && sec >= trim_end()))) return;
    const int64_t offset = av_rescale_q(offset_us, AV_TIME_BASE_Q, st->time_base);
    if (p->pts != AV_NOPTS_VALUE) p->pts -= offset;
    if (p->dts != AV_NOPTS_VALUE) p->dts -= offset;
    if (t != transcoders.end())
      t->second->send(p);
    else if (sc != subtitle_converters.end())
      sc->second->send(p);
    else
      output->write(p, st->time_base, copy_index[size_t(i)]);
  }

  void prepare(bool for_run);
  void plan_streams();
  VideoStats run(const VideoProgressCallback& progress, const CancelToken* cancel);
};

void VideoJob::Impl::prepare(bool for_run) {
  if (o.input.empty()) throw Error(ErrorCode::invalid_argument, "no input video given");
  if (o.output.empty()) throw Error(ErrorCode::invalid_argument, "no output file given (-o)");
  if (o.rotate % 90 != 0 || o.rotate < 0 || o.rotate >= 360)
    throw Error(ErrorCode::invalid_argument, fmt::format("--rotate {} is not 0, 90, 180 or 270", o.rotate));
  check_range("--ss", o.start, 0, kMaxSeconds, " seconds");
  check_range("-t", o.duration, 0, kMaxSeconds, " seconds (0: to the end)");
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
  const std::string container = container_for_path(o.output);  // GIF, audio-only, unknown fail here
  video_codec = !o.video_codec.empty() ? o.video_codec : container == "webm" ? "libvpx-vp9" : "libx264";
  find_video_encoder(video_codec);
  if (o.crf != -1) {
    const auto [lowest, highest] = crf_range(video_codec);
    check_range(fmt::format("-crf for {}", video_codec), o.crf, lowest, highest, " (lower is better)");
  }
  if (o.audio_codec != "copy") find_audio_encoder(o.audio_codec);
  const std::string model_name = video_model_name(o);

  const bool model_on_cpu = !model_name.empty();  // every backend so far runs on the CPU
  input = std::make_unique<VideoInput>(o.input, o.hwaccel, model_on_cpu ? helper_threads() : 0);
  const AVStream* vs = input->video_stream();
  input->seek(o.start);
  offset_us = input->start_time_us() + int64_t(std::llround(o.start * AV_TIME_BASE));

  // Decode the first frame now: it proves the stream decodes and gives the filters their input.
  if (!decode_next(first.get(), [&](AVPacket* p) { early_packets.emplace_back(av_packet_clone(p)); }))
    throw Error(
        ErrorCode::invalid_media,
        o.start > 0
            ? fmt::format("{}: no video frame at or after --ss {}", o.input, o.start)
            : fmt::format("{}: no video frame could be decoded (the file is damaged or empty)", o.input));

  FilterSettings fs;
  fs.display_rotation = input->display_rotation();
  fs.crop = o.crop;
  fs.rotate = o.rotate;
  fs.hflip = o.hflip;
  fs.vflip = o.vflip;
  const AVRational source_rate = vs->avg_frame_rate.num > 0 ? vs->avg_frame_rate : vs->r_frame_rate;
  if (o.fps > 0)
    fs.fps = av_d2q(o.fps, 1000000);
  else if (o.cfr)
    fs.fps = source_rate.num > 0 ? source_rate : AVRational{25, 1};
  filter = std::make_unique<VideoFilter>(fs, *first, vs->time_base, source_rate);

  in_color = resolve_color(*first);
  scale = 1;
  if (!model_name.empty()) {
    if (!model) model = Model::load(model_name);
    UpscaleOptions engine = o.engine;
    engine.max_output_side = o.max_output_side;
    if (o.mode == "esrgan-2x" && engine.scale == 0) engine.scale = 2;
    if (o.mode == "esrgan-4x" && engine.scale == 0) engine.scale = 4;
    upscaler = std::make_unique<Upscaler>(model, engine);
    scale = upscaler->output_scale();
  }
  const int64_t out_w = int64_t(filter->width()) * scale, out_h = int64_t(filter->height()) * scale;
  if (out_w > o.max_output_side || out_h > o.max_output_side)
    throw Error(
        ErrorCode::limit_exceeded,
        fmt::format("the output would be {}x{}, over the cap of {} pixels a side; use a smaller scale, crop "
                    "the input (--crop), or raise the cap (--max-size)",
                    out_w, out_h, o.max_output_side));

  plan.input_width = first->width;
  plan.input_height = first->height;
  plan.filtered_width = filter->width();
  plan.filtered_height = filter->height();
  plan.output_width = int(out_w);
  plan.output_height = int(out_h);
  plan.model = model ? model->name() : "";
  plan.precision = upscaler ? precision_name(upscaler->precision()) : "";
  plan.scale = scale;
  plan.filters = filter->description();
  plan.hwaccel = input->hwaccel();
  plan.duration_seconds = std::max(0.0, input->duration_seconds() - o.start);
  if (o.duration > 0) plan.duration_seconds = std::min(plan.duration_seconds, o.duration);
  plan.frame_rate = filter->frame_rate().num > 0 ? av_q2d(filter->frame_rate()) : av_q2d(source_rate);
  int64_t frames = input->estimated_frames();
  if ((o.start > 0 || o.duration > 0 || fs.fps.num > 0) && plan.frame_rate > 0)
    frames = int64_t(std::llround(plan.duration_seconds * plan.frame_rate));
  if (o.max_frames > 0) frames = frames > 0 ? std::min(frames, o.max_frames) : o.max_frames;
  plan.frames = frames;

  output = std::make_unique<VideoOutput>(o.output, o.overwrite);
  plan.container = output->format()->oformat->name;
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
  es.format = choose_encoder_format(find_video_encoder(video_codec), filter->format(), o.pix_fmt);
  out_color = output_color(in_color, es.format, int(out_h));
  es.primaries = first->color_primaries;
  es.transfer = first->color_trc;
  es.matrix = out_color.matrix;
  es.range = out_color.range;
  es.chroma_location = out_color.chroma_location;
  output->add_video(es, vs);
  plan.encoder = video_codec;
  plan.pixel_format = av_get_pix_fmt_name(output->encoder()->pix_fmt);
  plan_streams();
  for (const auto& w : input->warnings()) plan.warnings.push_back(w);
  if (for_run) output->write_header(input->format());
}

void VideoJob::Impl::plan_streams() {
  AVFormatContext* ic = input->format();
  copy_index.assign(ic->nb_streams, -1);
  const AVOutputFormat* of = output->format()->oformat;
  const std::string ext = o.output.substr(o.output.find_last_of('.') + 1);
  int audio_ordinal = 0;
  for (unsigned i = 0; i < ic->nb_streams; ++i) {
    AVStream* st = ic->streams[i];
    const AVCodecParameters& p = *st->codecpar;
    StreamPlan sp{int(i), media_type_name(p.codec_type), avcodec_get_name(p.codec_id), "drop",
                  stream_details(*st)};
    auto drop = [&](const std::string& why, bool warn) {
      sp.action = "drop";
      sp.note = why;
      if (warn)
        plan.warnings.push_back(fmt::format("stream #{} ({} {}) dropped: {}", i, sp.type, sp.codec, why));
      st->discard = AVDISCARD_ALL;
    };
    const int fits = avformat_query_codec(of, p.codec_id, FF_COMPLIANCE_NORMAL);
    if (int(i) == input->video_index()) {
      sp.action = "upscale";
      if (!upscaler) sp.action = "re-encode";
      sp.note = fmt::format("{} -> {}x{} {} {}", sp.note, plan.output_width, plan.output_height, video_codec,
                            plan.pixel_format);
    } else if (p.codec_type == AVMEDIA_TYPE_AUDIO) {
      const int ordinal = audio_ordinal++;
      if (o.no_audio) {
        drop("audio disabled", false);
      } else if (!o.audio_tracks.empty() &&
                 std::find(o.audio_tracks.begin(), o.audio_tracks.end(), ordinal) == o.audio_tracks.end()) {
        drop(fmt::format("audio track {} not selected", ordinal), false);
      } else if (o.audio_codec == "copy") {
        // FFmpeg writes Vorbis into mp4, but hardly any player reads it there.
        const bool mp4_family = std::string(of->name) == "mp4" || std::string(of->name) == "mov";
        if (fits == 0 || (mp4_family && p.codec_id == AV_CODEC_ID_VORBIS))
          throw Error(
              ErrorCode::invalid_argument,
              fmt::format(
                  "audio stream #{} is {}, which .{} cannot hold; re-encode it (-c:a {}) or write .mkv", i,
                  sp.codec, ext, std::string(of->name) == "webm" ? "libopus" : "aac"));
        sp.action = "copy";
        copy_index[i] = output->add_copy(st);
      } else {
        AudioSettings as{o.audio_codec, o.audio_bitrate, o.volume, o.normalize};
        transcoders[int(i)] = std::make_unique<AudioTranscoder>(*st, as, *output);
        sp.action = "encode " + o.audio_codec;
      }
    } else if (p.codec_type == AVMEDIA_TYPE_SUBTITLE) {
      if (o.no_subtitles)
        drop("subtitles disabled", false);
      else if (fits == 0 && SubtitleConverter::convertible(*st) &&
               SubtitleConverter::target_codec(*of) != AV_CODEC_ID_NONE) {
        const AVCodecID target = SubtitleConverter::target_codec(*of);
        subtitle_converters[int(i)] = std::make_unique<SubtitleConverter>(*st, target, *output);
        sp.action = std::string("convert to ") + avcodec_get_name(target);
        sp.note = fmt::format(".{} cannot hold {} subtitles", ext, sp.codec);
      } else if (fits == 0) {
        drop(
            fmt::format(".{} cannot hold {} subtitles (they are pictures, not text); write .mkv to keep them",
                        ext, sp.codec),
            true);
      } else {
        sp.action = "copy";
        copy_index[i] = output->add_copy(st);
      }
    } else if (p.codec_type == AVMEDIA_TYPE_ATTACHMENT) {
      if (std::string(of->name) == "matroska") {
        sp.action = "copy";
        copy_index[i] = output->add_copy(st);
      } else {
        drop("only .mkv holds attachments", true);
      }
    } else if (p.codec_type == AVMEDIA_TYPE_VIDEO) {
      drop(st->disposition & AV_DISPOSITION_ATTACHED_PIC ? "cover art is not upscaled"
                                                         : "only one video stream is upscaled",
           true);
    } else {
      drop("data tracks are not carried over", true);
    }
    plan.streams.push_back(sp);
  }
}

VideoStats VideoJob::Impl::run(const VideoProgressCallback& progress, const CancelToken* cancel) {
  const auto started = Clock::now();
  VideoStats stats;
  // Frames in flight: the requested depth, fewer when each slot is big (4K output holds ~130 MB
  // of float images a slot), but never below double buffering.
  const int64_t slot_bytes = (int64_t(plan.filtered_width) * plan.filtered_height +
                              int64_t(plan.output_width) * plan.output_height * 2) *
                             3 * int64_t(sizeof(float));
  const size_t depth =
      size_t(std::clamp<int64_t>(std::min<int64_t>(o.queue_depth, (int64_t(1) << 30) / slot_bytes), 2, 64));
  std::vector<Slot> slots(depth);
  // Each queue holds every slot plus the end-of-stream marker, so pushes wait only on free slots.
  BoundedQueue<Slot*> free_q{depth}, convert_in_q{depth + 1}, infer_q{depth + 1}, convert_out_q{depth + 1},
      encode_q{depth + 1};
  for (Slot& s : slots) free_q.push(&s);

  std::mutex error_mutex;
  std::exception_ptr first_error;
  auto fail = [&](std::exception_ptr e) {
    {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!first_error) first_error = e;
    }
    for (auto* q : {&free_q, &convert_in_q, &infer_q, &convert_out_q, &encode_q}) q->close();
  };
  auto cancelled = [&] { return cancel && cancel->cancelled(); };
  auto stage = [&](const char* name, auto body) {
    return std::thread([&, name, body]() mutable {
      name_thread(name);
      if (upscaler && std::string(name) != "upres-infer") yield_to_the_model();
      try {
        body();
      } catch (...) {
        fail(std::current_exception());
      }
    });
  };

  std::atomic<int64_t> upscaled{0};
  double inference_seconds = 0;
  // When the first frame reached the model (read by whichever thread reports progress).
  std::atomic<Clock::rep> first_frame_ticks{Clock::now().time_since_epoch().count()};
  auto report = [&](VideoPhase phase, int64_t done) {
    if (!progress) return;
    VideoProgress p;
    p.phase = phase;
    p.frames_done = done;
    // The estimate gives way to the true count once it is known (or proven wrong).
    p.frames_total =
        phase == VideoPhase::finishing || phase == VideoPhase::done ? done : std::max(plan.frames, done);
    p.elapsed_seconds = seconds_since(started);
    const double busy = seconds_since(Clock::time_point(Clock::duration(first_frame_ticks.load())));
    p.fps = done > 0 && busy > 0 ? double(done) / busy : 0;
    if (p.fps > 0 && p.frames_total > 0) p.eta_seconds = double(p.frames_total - done) / p.fps;
    const double share = p.frames_total > 0 ? double(done) / double(p.frames_total) : 0;
    p.fraction = phase == VideoPhase::starting    ? 0.0
                 : phase == VideoPhase::upscaling ? 0.05 + 0.85 * std::min(1.0, share)
                 : phase == VideoPhase::finishing ? 0.9
                                                  : 1.0;
    progress(p);
  };
  report(VideoPhase::starting, 0);

  // Decode and filter: frames into free slots, in order; other streams straight to the muxer.
  std::thread decode = stage("upres-decode", [&] {
    for (auto& p : early_packets) route(p.get());
    early_packets.clear();
    const int64_t offset = av_rescale_q(offset_us, AV_TIME_BASE_Q, filter->time_base());
    int64_t emitted = 0, last_pts = INT64_MIN;
    Slot* held = nullptr;
    bool stop = false;
    auto drain_filter = [&] {
      for (;;) {
        if (!held && !free_q.pop(held)) return false;
        if (!filter->pull(held->decoded.get())) return true;
        // Output time starts at 0; timestamps must rise strictly for the encoder.
        int64_t pts = held->decoded->pts == AV_NOPTS_VALUE ? last_pts + 1 : held->decoded->pts - offset;
        if (pts <= last_pts) pts = last_pts + 1;
        last_pts = pts;
        held->pts = pts;
        if (!convert_in_q.push(held)) return false;
        held = nullptr;
        if (o.max_frames > 0 && ++emitted >= o.max_frames) {
          stop = true;
          return true;
        }
      }
    };
    filter->push(first.get());
    bool ok = drain_filter();
    FramePtr frame = make_frame();
    auto route_packet = [this](AVPacket* p) { route(p); };
    while (ok && !stop) {
      if (cancelled()) throw Error(ErrorCode::cancelled, "cancelled");
      if (!decode_next(frame.get(), route_packet)) break;
      filter->push(frame.get());
      ok = drain_filter();
    }
    if (ok && !stop) {
      filter->push(nullptr);
      ok = drain_filter();
    }
    // A trimmed end: audio recorded just before the cut may sit after it in the file.
    while (ok && trim_end() > 0 && !input_eof && input->read_packet(packet.get())) {
      const double t = packet_seconds(*packet);
      if (packet->stream_index != input->video_index()) route(packet.get());
      av_packet_unref(packet.get());
      if (t > trim_end() + 2) break;
    }
    for (auto& [index, t] : transcoders) t->flush();
    if (held) free_q.push(held);
    if (ok) convert_in_q.push(nullptr);
  });

  std::thread convert_in = stage("upres-conv-in", [&] {
    Slot* s = nullptr;
    while (convert_in_q.pop(s)) {
      if (!s) {
        infer_q.push(nullptr);
        return;
      }
      frame_to_image(*s->decoded, in_color, s->in);
      av_frame_unref(s->decoded.get());
      if (!infer_q.push(s)) return;
    }
  });

  std::thread infer = stage("upres-infer", [&] {
    Slot* s = nullptr;
    while (infer_q.pop(s)) {
      if (!s) {
        convert_out_q.push(nullptr);
        return;
      }
      if (cancelled()) throw Error(ErrorCode::cancelled, "cancelled");
      const auto t0 = Clock::now();
      if (upscaled == 0) first_frame_ticks = t0.time_since_epoch().count();
      if (upscaler) {
        upscaler->upscale_into(s->in, s->out);
      } else {
        reshape_image(s->out, s->in.width, s->in.height, 3, s->in.bit_depth);
        std::copy(s->in.data.begin(), s->in.data.end(), s->out.data.begin());
      }
      inference_seconds += seconds_since(t0);
      report(VideoPhase::upscaling, ++upscaled);
      if (!convert_out_q.push(s)) return;
    }
  });

  std::thread convert_out = stage("upres-conv-out", [&] {
    AVCodecContext* enc = output->encoder();
    std::vector<float> scratch;
    Slot* s = nullptr;
    while (convert_out_q.pop(s)) {
      if (!s) {
        encode_q.push(nullptr);
        return;
      }
      AVFrame* f = s->encoded.get();
      if (!f->buf[0]) {
        f->format = enc->pix_fmt;
        f->width = enc->width;
        f->height = enc->height;
        check_av(av_frame_get_buffer(f, 0), ErrorCode::limit_exceeded, "allocating an output frame");
      } else {
        check_av(av_frame_make_writable(f), ErrorCode::limit_exceeded, "allocating an output frame");
      }
      image_to_frame(s->out, out_color, *f, scratch);
      f->pts = s->pts;
      f->colorspace = enc->colorspace;
      f->color_range = enc->color_range;
      f->color_primaries = enc->color_primaries;
      f->color_trc = enc->color_trc;
      f->chroma_location = enc->chroma_sample_location;
      f->sample_aspect_ratio = enc->sample_aspect_ratio;
      if (!encode_q.push(s)) return;
    }
  });

  int64_t encoded = 0;
  std::thread encode = stage("upres-encode", [&] {
    Slot* s = nullptr;
    while (encode_q.pop(s)) {
      if (!s) {
        report(VideoPhase::finishing, encoded);
        output->encode(nullptr);
        return;
      }
      output->encode(s->encoded.get());
      ++encoded;
      if (!free_q.push(s)) return;
    }
  });

  for (std::thread* t : {&decode, &convert_in, &infer, &convert_out, &encode}) t->join();
  if (first_error) std::rethrow_exception(first_error);
  if (cancelled()) throw Error(ErrorCode::cancelled, "cancelled");
  if (encoded == 0)
    throw Error(ErrorCode::invalid_media, fmt::format("{}: no frame in the chosen range decoded", o.input));
  output->finish();

  stats.frames = encoded;
  stats.output_width = plan.output_width;
  stats.output_height = plan.output_height;
  stats.seconds = seconds_since(started);
  stats.fps = stats.seconds > 0 ? double(encoded) / stats.seconds : 0;
  stats.inference_seconds = inference_seconds;
  stats.output_bytes = output->bytes_written();
  stats.damaged_packets = input->damaged_packets();
  stats.warnings = plan.warnings;
  for (const auto& w : input->warnings())
    if (std::find(stats.warnings.begin(), stats.warnings.end(), w) == stats.warnings.end())
      stats.warnings.push_back(w);
  if (stats.damaged_packets > 0)
    stats.warnings.push_back(fmt::format("{} damaged packets were skipped", stats.damaged_packets));
  report(VideoPhase::done, encoded);
  return stats;
}

VideoJob::VideoJob(VideoOptions options, std::shared_ptr<const Model> model)
    : options_(std::move(options)), model_(std::move(model)) {}

VideoJob::~VideoJob() = default;

VideoPlan VideoJob::validate() {
  impl_ = std::make_unique<Impl>(options_);
  impl_->model = model_;
  impl_->prepare(false);
  VideoPlan plan = impl_->plan;
  // A short timing run on a small picture gives the time estimate (the model's cost does not
  // depend on the content).
  if (impl_->upscaler && plan.frames > 0) {
    const int side = std::min({96, plan.filtered_width, plan.filtered_height});
    const Image corner = make_test_pattern(side, side);
    Image out;
    impl_->upscaler->upscale_into(corner, out);  // compiles
    const auto t0 = Clock::now();
    impl_->upscaler->upscale_into(corner, out);
    const double per_pixel = seconds_since(t0) / double(side * side);
    plan.estimated_seconds =
        per_pixel * double(plan.filtered_width) * plan.filtered_height * double(plan.frames);
  }
  impl_.reset();  // closes everything; the temporary output file is removed
  return plan;
}

VideoStats VideoJob::run(const VideoProgressCallback& progress, const CancelToken* cancel) {
  impl_ = std::make_unique<Impl>(options_);
  impl_->model = model_;
  try {
    impl_->prepare(true);
    VideoStats stats = impl_->run(progress, cancel);
    impl_.reset();
    return stats;
  } catch (...) {
    impl_.reset();  // removes the partial output
    throw;
  }
}

}  // namespace upres
