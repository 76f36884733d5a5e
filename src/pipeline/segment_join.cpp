// Joining segments (upres/segments.hpp): the segments' video packets, copied in order, beside the
// source's other streams through the same whole-file sink as a single run, interleaved by time,
// on the timeline a single run would give them.
//
// Decode timestamps are made afresh for the joined stream: each segment's encoder started its own
// (a few frames before its first presentation time, which overlaps the previous segment's last
// ones). The joined stream's n-th packet in decode order gets the n-d-th presentation time in
// sorted order, d being the smallest delay that keeps every packet's decode time at or before its
// presentation time: what an encoder with that reorder delay writes over one run.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "core/shell_quote.hpp"
#include "media/video_input.hpp"
#include "pipeline/segments_internal.hpp"
#include "pipeline/video_pipeline.hpp"
#include "pipeline/video_sink.hpp"
#include "upres/error.hpp"
#include "upres/files.hpp"

namespace upres {
namespace {

// One segment file, opened for its video packets.
class SegmentReader {
 public:
  explicit SegmentReader(const std::string& path) : path_(path) {
    if (avformat_open_input(&format_, path.c_str(), nullptr, nullptr) < 0 ||
        avformat_find_stream_info(format_, nullptr) < 0)
      throw Error(ErrorCode::invalid_media, fmt::format("{} cannot be read; run that segment again", path));
    for (unsigned i = 0; i < format_->nb_streams; ++i)
      if (format_->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) stream_ = format_->streams[i];
    if (!stream_) throw Error(ErrorCode::invalid_media, fmt::format("{} holds no video", path));
  }
  ~SegmentReader() { avformat_close_input(&format_); }
  SegmentReader(const SegmentReader&) = delete;
  SegmentReader& operator=(const SegmentReader&) = delete;

  const AVStream* stream() const { return stream_; }
  // The next video packet, or false at the end.
  bool next(AVPacket* packet) {
    while (av_read_frame(format_, packet) >= 0) {
      if (packet->stream_index == stream_->index) return true;
      av_packet_unref(packet);
    }
    return false;
  }

 private:
  std::string path_;
  AVFormatContext* format_ = nullptr;
  const AVStream* stream_ = nullptr;
};

bool same_stream_parameters(const AVCodecParameters& a, const AVCodecParameters& b) {
  return a.codec_id == b.codec_id && a.width == b.width && a.height == b.height && a.format == b.format &&
         a.extradata_size == b.extradata_size &&
         (a.extradata_size == 0 || std::memcmp(a.extradata, b.extradata, size_t(a.extradata_size)) == 0);
}

}  // namespace

VideoStats join_segments(const SegmentManifest& m, bool overwrite, const CancelToken* cancel) {
  const auto started = std::chrono::steady_clock::now();
  std::string missing;
  for (const SegmentStatus& s : segment_status(m, true))
    if (s.state != SegmentState::done)
      missing += fmt::format("{}{} ({})", missing.empty() ? "" : ", ", s.segment.index,
                             s.state == SegmentState::pending ? "not run" : s.note);
  if (!missing.empty())
    throw Error(ErrorCode::invalid_argument,
                fmt::format("cannot join {}: segments {} are not finished; run them (`upres segment run {} "
                            "--index N`) or rerun the job",
                            m.work_dir, missing, shell_quote(m.work_dir)));

  // First pass: every packet's presentation time, in decode order, over all segments. All
  // segments must be one stream: the same codec, size, format and parameter sets.
  std::vector<int64_t> pts;  // in the first segment's time base
  AVRational tb{0, 1};
  std::unique_ptr<SegmentReader> first;
  PacketPtr packet = make_packet();
  for (const Segment& seg : m.segments) {
    auto reader = std::make_unique<SegmentReader>(segment_file(m, seg.index));
    if (!first) {
      tb = reader->stream()->time_base;
    } else if (!same_stream_parameters(*first->stream()->codecpar, *reader->stream()->codecpar)) {
      throw Error(ErrorCode::invalid_media,
                  fmt::format("segment {} was encoded differently from segment 0 (another encoder build or "
                              "settings); run it again on a machine like the others",
                              seg.index));
    }
    while (reader->next(packet.get())) {
      if (packet->pts == AV_NOPTS_VALUE)
        throw Error(ErrorCode::invalid_media,
                    fmt::format("segment {} has a packet without a time", seg.index));
      pts.push_back(av_rescale_q(packet->pts, reader->stream()->time_base, tb));
      av_packet_unref(packet.get());
    }
    if (!first) first = std::move(reader);
  }
  if (pts.empty())
    throw Error(ErrorCode::invalid_media, fmt::format("the segments in {} hold no frames", m.work_dir));
  std::vector<int64_t> sorted = pts;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
    throw Error(
        ErrorCode::invalid_media,
        fmt::format("two frames of the segments in {} have the same time (overlapping segments, or a "
                    "source with repeated timestamps); segments cannot join it: run without --work-dir",
                    m.work_dir));
  size_t delay = 0;
  for (size_t n = 0; n < pts.size(); ++n) {
    const size_t rank = size_t(std::lower_bound(sorted.begin(), sorted.end(), pts[n]) - sorted.begin());
    if (n > rank) delay = std::max(delay, n - rank);
  }
  const int64_t step = sorted.size() > 1 ? sorted[1] - sorted[0] : 1;
  auto dts_of = [&](size_t n) {
    return n >= delay ? sorted[n - delay] : sorted[0] - int64_t(delay - n) * step;
  };

  // The output: the job's whole-file sink, its video the first segment's stream.
  VideoOptions o = m.plan.options;
  o.overwrite = overwrite || o.overwrite;
  o.sink = VideoSinkKind::file;
  refuse_overwriting_input(o.input, o.output);
  VideoInput input(o.input, "", 1);
  const AVStream* vs = input.video_stream();
  std::unique_ptr<VideoSink> sink = make_join_sink(o, first->stream());
  VideoPlan plan = m.plan;
  plan.streams.clear();
  sink->open(input, {}, plan);
  sink->write_header(input.format());
  const VideoRange& range = m.plan.range;
  // The single run's zero (video_job.cpp): the range's start as given, else the file's start
  // plus --ss.
  const int64_t zero_us = sink->zero_us(
      o.range.begin != INT64_MIN ? av_rescale_q(range.begin, vs->time_base, AV_TIME_BASE_Q)
                                 : input.start_time_us() + int64_t(std::llround(o.start * AV_TIME_BASE)));
  const int64_t video_offset = av_rescale_q(zero_us, AV_TIME_BASE_Q, tb);
  first.reset();

  // Second pass: video packets and the source's other packets, whichever comes first in time.
  input.format()->streams[input.video_index()]->discard = AVDISCARD_ALL;
  auto in_range = [&](const AVPacket& p) {
    return packet_in_range(p, input.format()->streams[p.stream_index]->time_base, range, vs->time_base);
  };
  PacketPtr other = make_packet();
  bool other_ready = false, source_done = false;
  auto next_other = [&] {
    while (!other_ready && !source_done) {
      if (!input.read_packet(other.get())) {
        source_done = true;
        break;
      }
      if (other->stream_index != input.video_index() && in_range(*other)) {
        cut_cue_at_range_end(*other, *input.format()->streams[other->stream_index], range, vs->time_base);
        other_ready = true;
      } else {
        // Past the range's end by two seconds (interleaving runs audio ahead), nothing more.
        const int64_t ts = other->pts != AV_NOPTS_VALUE ? other->pts : other->dts;
        const AVRational ptb = input.format()->streams[other->stream_index]->time_base;
        if (range.end != INT64_MAX && ts != AV_NOPTS_VALUE &&
            av_compare_ts(ts, ptb, range.end + av_rescale_q(2, {1, 1}, vs->time_base), vs->time_base) > 0)
          source_done = true;
        av_packet_unref(other.get());
      }
    }
  };
  auto write_others_before = [&](int64_t video_dts) {
    for (next_other(); other_ready; next_other()) {
      const int64_t ts = other->dts != AV_NOPTS_VALUE ? other->dts : other->pts;
      const AVRational ptb = input.format()->streams[other->stream_index]->time_base;
      if (video_dts != INT64_MAX && ts != AV_NOPTS_VALUE && av_compare_ts(ts, ptb, video_dts, tb) > 0) return;
      sink->send_packet(other.get(), zero_us);
      av_packet_unref(other.get());
      other_ready = false;
    }
  };
  size_t n = 0;
  for (const Segment& seg : m.segments) {
    SegmentReader reader(segment_file(m, seg.index));
    while (reader.next(packet.get())) {
      if (cancel && cancel->cancelled()) throw Error(ErrorCode::cancelled, "cancelled");
      // The segments must be those the first pass read (a rerun may be replacing one).
      if (n >= pts.size() || av_rescale_q(packet->pts, reader.stream()->time_base, tb) != pts[n])
        throw Error(ErrorCode::invalid_media,
                    fmt::format("segment {} changed while it was being joined; join again", seg.index));
      const int64_t dts = dts_of(n++);
      write_others_before(dts);
      packet->pts = av_rescale_q(packet->pts, reader.stream()->time_base, tb) - video_offset;
      packet->dts = dts - video_offset;
      packet->duration = av_rescale_q(packet->duration, reader.stream()->time_base, tb);
      sink->output().write(packet.get(), tb, 0);
      av_packet_unref(packet.get());
    }
  }
  write_others_before(INT64_MAX);
  sink->finish_packets();
  sink->finish();

  VideoStats stats;
  stats.frames = int64_t(pts.size());
  stats.output_width = m.plan.output_width;
  stats.output_height = m.plan.output_height;
  stats.output_bytes = sink->output().bytes_written();
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  stats.fps = stats.seconds > 0 ? double(stats.frames) / stats.seconds : 0;
  return stats;
}

}  // namespace upres
