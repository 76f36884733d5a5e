#include "pipeline/video_pipeline.hpp"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "image/resizer.hpp"
#include "pipeline/bounded_queue.hpp"
#include "upres/error.hpp"

namespace upres {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// On the CPU backend the model needs every core, and its OpenMP team waits at a barrier for
// its slowest thread: a core lent to the encoder for a few milliseconds stalls the whole team.
// So the other stages run one thread each at a lower priority, filling the gaps the model
// leaves instead of competing with it (measured in docs/BENCHMARKS.md).
void yield_to_the_model() {
  setpriority(PRIO_PROCESS, id_t(syscall(SYS_gettid)), 5);
}

struct Slot {
  FramePtr decoded = make_frame();  // filtered, not yet converted
  Image in, out;
  FramePtr encoded = make_frame();
  int64_t pts = 0;
};

// One run: the slots, the queues between the stages, and the stages themselves.
class Pipeline {
 public:
  Pipeline(PreparedJob& job, const VideoProgressCallback& progress, const CancelToken* cancel)
      : job_(job), o_(job.o), progress_(progress), cancel_(cancel) {
    // Frames in flight: the requested depth, fewer when each slot is big (4K output holds ~130 MB
    // of float images a slot), but never below double buffering.
    const VideoPlan& plan = job.plan;
    const int64_t slot_bytes = (int64_t(plan.filtered_width) * plan.filtered_height +
                                int64_t(plan.output_width) * plan.output_height * 2) *
                               3 * int64_t(sizeof(float));
    depth_ = size_t(
        std::clamp<int64_t>(std::min<int64_t>(o_.queue_depth, (int64_t(1) << 30) / slot_bytes), 2, 64));
    slots_ = std::vector<Slot>(depth_);
    // Each queue holds every slot plus the end-of-stream marker, so pushes wait only on free slots.
    free_q_ = std::make_unique<BoundedQueue<Slot*>>(depth_);
    for (auto* q : {&convert_in_q_, &infer_q_, &convert_out_q_, &encode_q_})
      *q = std::make_unique<BoundedQueue<Slot*>>(depth_ + 1);
    for (Slot& s : slots_) free_q_->push(&s);
  }

  VideoStats run();
  bool stream_expected_in_range(const AVStream& stream) const;

 private:
  // The five stages, each on its own thread.
  void decode_and_filter();
  void convert_in();
  void infer();
  void convert_out();
  void encode();

  std::thread start(const char* name, void (Pipeline::*stage)());
  void fail(std::exception_ptr e);
  bool cancelled() const { return cancel_ && cancel_->cancelled(); }
  void report(VideoPhase phase, int64_t done);

  PreparedJob& job_;
  const VideoOptions& o_;
  const VideoProgressCallback& progress_;
  const CancelToken* cancel_;
  const Clock::time_point started_ = Clock::now();

  size_t depth_ = 0;
  std::vector<Slot> slots_;
  std::unique_ptr<BoundedQueue<Slot*>> free_q_, convert_in_q_, infer_q_, convert_out_q_, encode_q_;

  std::mutex error_mutex_;
  std::exception_ptr first_error_;
  std::atomic<int64_t> upscaled_{0};
  int64_t encoded_ = 0;
  bool input_ran_out_ = false;  // decoding stopped at the input's end, not the range's
  double inference_seconds_ = 0;
  // When the first frame reached the model (read by whichever thread reports progress).
  std::atomic<Clock::rep> first_frame_ticks_{Clock::now().time_since_epoch().count()};
};

std::thread Pipeline::start(const char* name, void (Pipeline::*stage)()) {
  return std::thread([this, name, stage] {
    pthread_setname_np(pthread_self(), name);
    if (job_.upscaler && stage != &Pipeline::infer) yield_to_the_model();
    try {
      (this->*stage)();
    } catch (...) {
      fail(std::current_exception());
    }
  });
}

void Pipeline::fail(std::exception_ptr e) {
  {
    std::lock_guard<std::mutex> lock(error_mutex_);
    if (!first_error_) first_error_ = e;
  }
  for (auto* q : {&free_q_, &convert_in_q_, &infer_q_, &convert_out_q_, &encode_q_}) (*q)->close();
}

void Pipeline::report(VideoPhase phase, int64_t done) {
  if (!progress_) return;
  VideoProgress p;
  p.phase = phase;
  p.frames_done = done;
  // The estimate gives way to the true count once it is known (or proven wrong).
  p.frames_total =
      phase == VideoPhase::finishing || phase == VideoPhase::done ? done : std::max(job_.plan.frames, done);
  p.elapsed_seconds = seconds_since(started_);
  const double busy = seconds_since(Clock::time_point(Clock::duration(first_frame_ticks_.load())));
  p.fps = done > 0 && busy > 0 ? double(done) / busy : 0;
  if (p.fps > 0 && p.frames_total > 0) p.eta_seconds = double(p.frames_total - done) / p.fps;
  const double share = p.frames_total > 0 ? double(done) / double(p.frames_total) : 0;
  p.fraction = phase == VideoPhase::starting    ? 0.0
               : phase == VideoPhase::upscaling ? 0.05 + 0.85 * std::min(1.0, share)
               : phase == VideoPhase::finishing ? 0.9
                                                : 1.0;
  progress_(p);
}

// Decode and filter: frames into free slots, in order; other streams straight to the sink.
void Pipeline::decode_and_filter() {
  PreparedJob& j = job_;
  for (auto& p : j.early_packets) j.route(p.get());
  j.early_packets.clear();
  const int64_t offset = av_rescale_q(j.zero_us, AV_TIME_BASE_Q, j.filter->time_base());
  int64_t emitted = 0, last_pts = INT64_MIN;
  Slot* held = nullptr;
  bool stop = false;
  auto drain_filter = [&] {
    for (;;) {
      if (!held && !free_q_->pop(held)) return false;
      if (!j.filter->pull(held->decoded.get())) return true;
      // Timestamps must rise strictly for the encoder.
      int64_t pts = held->decoded->pts == AV_NOPTS_VALUE ? last_pts + 1 : held->decoded->pts - offset;
      if (pts <= last_pts) pts = last_pts + 1;
      last_pts = pts;
      held->pts = pts;
      if (!convert_in_q_->push(held)) return false;
      held = nullptr;
      if (o_.max_frames > 0 && ++emitted >= o_.max_frames) {
        stop = true;
        return true;
      }
    }
  };
  j.filter->push(j.first.get());
  bool ok = drain_filter();
  FramePtr frame = make_frame();
  const auto route = [&j](AVPacket* p) { j.route(p); };
  while (ok && !stop) {
    if (cancelled()) throw Error(ErrorCode::cancelled, "cancelled");
    if (!j.decode_next(frame.get(), route)) break;
    j.filter->push(frame.get());
    ok = drain_filter();
  }
  if (ok && !stop) {
    // A range cut before the input's end ends where the next frame would begin: a rate change
    // then gives the frames up to there, exactly those a run over the whole input gives there
    // (a segment ends at the next one's first frame).
    if (j.reached_range_end) {
      j.filter->close(j.range.end);
    } else {
      // The input's end is where its last frame ends, not where it starts: a new rate (--fps,
      // --cfr) fills the slots up to there, so the last frame keeps its slot, as a range ending
      // at the next frame keeps it (--ss T gives the frames -t T leaves out, all of them).
      if (j.input->next_pts() != AV_NOPTS_VALUE)
        j.filter->close(j.input->next_pts());
      else
        j.filter->push(nullptr);
      input_ran_out_ = true;
    }
    ok = drain_filter();
  }
  // A range that ends before the input does: packets of other streams that present before the
  // end may sit after it in the file (interleaving is by decode time, audio runs ahead).
  if (ok && j.range.end != INT64_MAX) {
    const AVRational vtb = j.input->video_stream()->time_base;
    while (!j.input_eof && j.input->read_packet(j.packet.get())) {
      const AVPacket& p = *j.packet;
      const int64_t ts = p.pts != AV_NOPTS_VALUE ? p.pts : p.dts;
      const int64_t two_seconds = av_rescale_q(2, {1, 1}, vtb);
      const bool past = ts != AV_NOPTS_VALUE && j.range.end < INT64_MAX - two_seconds &&
                        av_compare_ts(ts, j.input->format()->streams[p.stream_index]->time_base,
                                      j.range.end + two_seconds, vtb) > 0;
      if (p.stream_index != j.input->video_index()) j.route(j.packet.get());
      av_packet_unref(j.packet.get());
      if (past) break;
    }
  }
  j.sink->finish_packets();
  if (held) free_q_->push(held);
  if (ok) convert_in_q_->push(nullptr);
}

void Pipeline::convert_in() {
  Slot* s = nullptr;
  while (convert_in_q_->pop(s)) {
    if (!s) {
      infer_q_->push(nullptr);
      return;
    }
    if (job_.frame_path) {  // the device converts
      if (!infer_q_->push(s)) return;
      continue;
    }
    frame_to_image(*s->decoded, job_.in_color, s->in);
    av_frame_unref(s->decoded.get());
    if (!infer_q_->push(s)) return;
  }
}

// The encoder's frame for a slot: allocated once, made writable again while the encoder still
// holds a reference to it.
void prepare_output_frame(AVFrame* f, const AVCodecContext* enc) {
  if (!f->buf[0]) {
    f->format = enc->pix_fmt;
    f->width = enc->width;
    f->height = enc->height;
    check_av(av_frame_get_buffer(f, 0), ErrorCode::limit_exceeded, "allocating an output frame");
  } else {
    check_av(av_frame_make_writable(f), ErrorCode::limit_exceeded, "allocating an output frame");
  }
}

void Pipeline::infer() {
  // With a frame path, two frames are in flight: frame N+1 is submitted before frame N is waited
  // for, so the device never idles while the host copies planes in and out.
  struct InFlight {
    Slot* slot;
    Ticket ticket;
  };
  std::optional<InFlight> previous;
  auto hand_on = [&](Slot* s) {
    report(VideoPhase::upscaling, ++upscaled_);
    return convert_out_q_->push(s);
  };
  auto finish_previous = [&] {
    if (!previous) return true;
    const auto t0 = Clock::now();
    previous->ticket.wait();
    inference_seconds_ += seconds_since(t0);
    av_frame_unref(previous->slot->decoded.get());
    Slot* done = previous->slot;
    previous.reset();
    return hand_on(done);
  };
  Slot* s = nullptr;
  while (infer_q_->pop(s)) {
    if (!s) {
      if (!finish_previous()) return;
      convert_out_q_->push(nullptr);
      return;
    }
    if (cancelled()) throw Error(ErrorCode::cancelled, "cancelled");
    const auto t0 = Clock::now();
    if (upscaled_ == 0 && !previous) first_frame_ticks_ = t0.time_since_epoch().count();
    if (job_.frame_path) {
      prepare_output_frame(s->encoded.get(), job_.sink->output().encoder());
      Ticket ticket = job_.frame_path->submit(planes_of(*s->decoded), planes_of(*s->encoded));
      inference_seconds_ += seconds_since(t0);
      if (!finish_previous()) return;
      previous = InFlight{s, std::move(ticket)};
      continue;
    }
    if (job_.upscaler) {
      job_.upscaler->upscale_into(s->in, s->out);
    } else {
      reshape_image(s->out, s->in.width, s->in.height, 3, s->in.bit_depth);
      std::copy(s->in.data.begin(), s->in.data.end(), s->out.data.begin());
    }
    inference_seconds_ += seconds_since(t0);
    if (!hand_on(s)) return;
  }
}

void Pipeline::convert_out() {
  AVCodecContext* enc = job_.sink->output().encoder();
  std::vector<float> scratch;
  Slot* s = nullptr;
  while (convert_out_q_->pop(s)) {
    if (!s) {
      encode_q_->push(nullptr);
      return;
    }
    AVFrame* f = s->encoded.get();
    if (!job_.frame_path) {  // else the device has written it
      prepare_output_frame(f, enc);
      image_to_frame(s->out, job_.out_color, *f, scratch);
    }
    f->pts = s->pts;
    f->colorspace = enc->colorspace;
    f->color_range = enc->color_range;
    f->color_primaries = enc->color_primaries;
    f->color_trc = enc->color_trc;
    f->chroma_location = enc->chroma_sample_location;
    f->sample_aspect_ratio = enc->sample_aspect_ratio;
    if (!encode_q_->push(s)) return;
  }
}

void Pipeline::encode() {
  Slot* s = nullptr;
  while (encode_q_->pop(s)) {
    if (!s) {
      report(VideoPhase::finishing, encoded_);
      job_.sink->encode(nullptr);
      return;
    }
    job_.sink->encode(s->encoded.get());
    ++encoded_;
    if (!free_q_->push(s)) return;
  }
}

// Whether a stream should have packets inside the job's range by what it declares: its span
// (start and duration, else the file's) overlaps the range by more than a tenth of a second.
bool Pipeline::stream_expected_in_range(const AVStream& st) const {
  const VideoInput& in = *job_.input;
  const double start = st.start_time != AV_NOPTS_VALUE ? in.seconds_of(st.start_time, st.time_base) : 0;
  const double length = st.duration != AV_NOPTS_VALUE && st.duration > 0
                            ? double(st.duration) * av_q2d(st.time_base)
                        : in.format()->duration > 0 ? double(in.format()->duration) / AV_TIME_BASE - start
                                                    : 0;
  if (length <= 0) return false;
  const double begin = job_.range.begin == INT64_MIN ? 0 : in.seconds_of(job_.range.begin);
  const double end = job_.range.end == INT64_MAX ? start + length : in.seconds_of(job_.range.end);
  return std::min(end, start + length) - std::max(begin, start) > 0.1;
}

VideoStats Pipeline::run() {
  report(VideoPhase::starting, 0);
  std::thread threads[] = {
      start("upres-decode", &Pipeline::decode_and_filter), start("upres-conv-in", &Pipeline::convert_in),
      start("upres-infer", &Pipeline::infer), start("upres-conv-out", &Pipeline::convert_out),
      start("upres-encode", &Pipeline::encode)};
  for (std::thread& t : threads) t.join();
  if (first_error_) std::rethrow_exception(first_error_);
  if (cancelled()) throw Error(ErrorCode::cancelled, "cancelled");
  if (encoded_ == 0)
    throw Error(ErrorCode::invalid_media, fmt::format("{}: no frame in the chosen range decoded", o_.input));
  // A stream the plan keeps that the range should hold but that gave no packet at all: the file
  // lost it (truncated, damaged): an error, not an output without its sound.
  for (const int index : job_.sink->kept_streams_without_packets()) {
    const AVStream& st = *job_.input->format()->streams[index];
    if (stream_expected_in_range(st))
      throw Error(ErrorCode::invalid_media,
                  fmt::format("{}: stream #{} ({}) has no packet in the range it declares; the file is "
                              "truncated or damaged (leave the stream out with --audio-tracks or -an to "
                              "upscale the video alone)",
                              o_.input, index, av_get_media_type_string(st.codecpar->codec_type)));
  }
  job_.sink->finish();

  VideoStats stats;
  stats.frames = encoded_;
  stats.output_width = job_.plan.output_width;
  stats.output_height = job_.plan.output_height;
  stats.seconds = seconds_since(started_);
  stats.fps = stats.seconds > 0 ? double(encoded_) / stats.seconds : 0;
  stats.inference_seconds = inference_seconds_;
  stats.output_bytes = job_.sink->output().bytes_written();
  stats.damaged_packets = job_.input->damaged_packets();
  stats.warnings = job_.plan.warnings;
  for (const auto& w : job_.input->warnings())
    if (std::find(stats.warnings.begin(), stats.warnings.end(), w) == stats.warnings.end())
      stats.warnings.push_back(w);
  if (stats.damaged_packets > 0)
    stats.warnings.push_back(fmt::format("{} damaged packets were skipped", stats.damaged_packets));
  // The input ran out before the time it declares (or its range's end): a truncated file decodes
  // cleanly up to where it was cut, so say where that is.
  if (input_ran_out_) {
    // The video's own declared end against where its packets reached; without a duration of its
    // own (Matroska, WebM), the file's against every stream read, when none was left unread (the
    // file's duration may be a stream's that -an or a segment run never reads).
    const VideoInput& in = *job_.input;
    const AVStream& vs = *in.video_stream();
    AVFormatContext* ic = in.format();
    double declared = 0, reached = 0;
    if (vs.duration != AV_NOPTS_VALUE && vs.duration > 0) {
      declared =
          in.seconds_of((vs.start_time != AV_NOPTS_VALUE ? vs.start_time : 0) + vs.duration, vs.time_base);
      reached = in.packets_end_seconds(vs.index);
    } else {
      bool all_read = true;
      for (unsigned i = 0; i < ic->nb_streams; ++i)
        all_read = all_read && ic->streams[i]->discard < AVDISCARD_ALL;
      if (all_read && ic->duration > 0) declared = double(ic->duration) / AV_TIME_BASE;
      reached = in.packets_end_seconds();
    }
    const double wanted =
        job_.range.end == INT64_MAX ? declared : std::min(declared, in.seconds_of(job_.range.end));
    const double frame = vs.avg_frame_rate.num > 0 ? av_q2d(av_inv_q(vs.avg_frame_rate)) : 0.04;
    if (wanted > 0 && reached < wanted - std::max(0.5, 2 * frame)) {
      stats.input_incomplete = true;
      stats.warnings.push_back(fmt::format(
          "{} ended early: it stops at {:.2f} s of the {:.2f} s it declares ({:.2f} s missing; {} frames "
          "made); the file is truncated or damaged",
          o_.input, reached, wanted, wanted - reached, encoded_));
    }
  }
  if (job_.input->cut_short() || stats.damaged_packets > 0) stats.input_incomplete = true;
  report(VideoPhase::done, encoded_);
  return stats;
}

}  // namespace

bool packet_in_range(const AVPacket& p, AVRational tb, const VideoRange& range, AVRational video_tb) {
  const int64_t ts = p.pts != AV_NOPTS_VALUE ? p.pts : p.dts;
  if (ts == AV_NOPTS_VALUE || range.whole()) return true;
  if (range.begin != INT64_MIN && av_compare_ts(ts, tb, range.begin, video_tb) < 0) return false;
  return range.end == INT64_MAX || av_compare_ts(ts, tb, range.end, video_tb) < 0;
}

void cut_cue_at_range_end(AVPacket& p, const AVStream& stream, const VideoRange& range, AVRational video_tb) {
  const int64_t ts = p.pts != AV_NOPTS_VALUE ? p.pts : p.dts;
  if (stream.codecpar->codec_type != AVMEDIA_TYPE_SUBTITLE || range.end == INT64_MAX ||
      ts == AV_NOPTS_VALUE || p.duration <= 0)
    return;
  const int64_t end =
      av_rescale_q_rnd(range.end, video_tb, stream.time_base, AVRounding(AV_ROUND_UP | AV_ROUND_PASS_MINMAX));
  if (ts < end && ts + p.duration > end) p.duration = end - ts;
}

bool PreparedJob::in_range(const AVPacket& p) const {
  return packet_in_range(p, input->format()->streams[p.stream_index]->time_base, range,
                         input->video_stream()->time_base);
}

void PreparedJob::route(AVPacket* p) {
  if (!in_range(*p)) return;
  cut_cue_at_range_end(*p, *input->format()->streams[p->stream_index], range,
                       input->video_stream()->time_base);
  sink->send_packet(p, zero_us);
}

bool PreparedJob::decode_next(AVFrame* frame, const std::function<void(AVPacket*)>& other) {
  for (;;) {
    if (input->receive(frame)) {
      if (frame->pts != AV_NOPTS_VALUE && frame->pts < range.begin) {
        av_frame_unref(frame);
        continue;
      }
      if (frame->pts != AV_NOPTS_VALUE && frame->pts >= range.end) {
        av_frame_unref(frame);
        reached_range_end = true;
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

VideoStats run_pipeline(PreparedJob& job, const VideoProgressCallback& progress, const CancelToken* cancel) {
  return Pipeline(job, progress, cancel).run();
}

}  // namespace upres
