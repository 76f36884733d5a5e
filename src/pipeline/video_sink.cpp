#include "pipeline/video_sink.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>

extern "C" {
#include <libavutil/pixdesc.h>
}

#include "core/assert.hpp"
#include "media/audio_transcoder.hpp"
#include "media/subtitle_converter.hpp"
#include "upres/error.hpp"

namespace upres {
namespace {

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

StreamPlan stream_plan(const AVStream& st) {
  const AVCodecParameters& p = *st.codecpar;
  return {st.index, media_type_name(p.codec_type), avcodec_get_name(p.codec_id), "drop", stream_details(st)};
}

// The video stream's line of the plan.
StreamPlan video_stream_plan(const AVStream& st, const VideoPlan& plan, const VideoEncoderSettings& video,
                             const AVCodecContext& encoder) {
  StreamPlan sp = stream_plan(st);
  sp.action = plan.model.empty() ? "re-encode" : "upscale";
  sp.note = fmt::format("{} -> {}x{} {} {}", sp.note, video.width, video.height, video.codec,
                        av_get_pix_fmt_name(encoder.pix_fmt));
  return sp;
}

// The whole file of today: every kept stream on one timeline that starts at the range's start.
class FileSink final : public VideoSink {
 public:
  // `encoded_video`: the video comes as packets of this stream (joined segments), not frames.
  explicit FileSink(const VideoOptions& options, const AVStream* encoded_video = nullptr)
      : VideoSink(options), encoded_video_(encoded_video) {}

  void open(VideoInput& input, const VideoEncoderSettings& video, VideoPlan& plan) override {
    if (encoded_video_)
      output_->add_encoded_video(encoded_video_, input.video_stream());
    else
      output_->add_video(video, input.video_stream());
    AVFormatContext* ic = input.format();
    copy_index_.assign(ic->nb_streams, -1);
    time_bases_.clear();
    media_types_.clear();
    packets_sent_.assign(ic->nb_streams, 0);
    for (unsigned i = 0; i < ic->nb_streams; ++i) {
      time_bases_.push_back(ic->streams[i]->time_base);
      media_types_.push_back(ic->streams[i]->codecpar->codec_type);
    }
    const VideoOptions& o = options_;
    const AVOutputFormat* of = output_->format()->oformat;
    const std::string ext = o.output.substr(o.output.find_last_of('.') + 1);
    int audio_ordinal = 0;
    // A track asked for that the file lacks is an error, not a silently missing track.
    int audio_count = 0;
    for (unsigned i = 0; i < ic->nb_streams; ++i)
      audio_count += ic->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO;
    if (!o.no_audio)
      for (int track : o.audio_tracks)
        if (track >= audio_count)
          throw Error(
              ErrorCode::invalid_argument,
              audio_count == 0
                  ? fmt::format("--audio-tracks {}: {} has no audio tracks (drop --audio-tracks, or -an)",
                                track, o.input)
                  : fmt::format("--audio-tracks {}: {} has audio tracks 0..{} ({} in all)", track, o.input,
                                audio_count - 1, audio_count));
    for (unsigned i = 0; i < ic->nb_streams; ++i) {
      AVStream* st = ic->streams[i];
      const AVCodecParameters& p = *st->codecpar;
      if (int(i) == input.video_index()) {
        if (encoded_video_) {
          StreamPlan sp = stream_plan(*st);
          sp.action = "join";
          sp.note = "the upscaled segments, copied";
          plan.streams.push_back(sp);
        } else {
          plan.streams.push_back(video_stream_plan(*st, plan, video, *output_->encoder()));
        }
        continue;
      }
      StreamPlan sp = stream_plan(*st);
      auto drop = [&](const std::string& why, bool warn) {
        sp.action = "drop";
        sp.note = why;
        if (warn)
          plan.warnings.push_back(fmt::format("stream #{} ({} {}) dropped: {}", i, sp.type, sp.codec, why));
        st->discard = AVDISCARD_ALL;
      };
      const int fits = avformat_query_codec(of, p.codec_id, FF_COMPLIANCE_NORMAL);
      if (p.codec_type == AVMEDIA_TYPE_AUDIO) {
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
          copy_index_[i] = output_->add_copy(st);
        } else {
          AudioSettings as{o.audio_codec, o.audio_bitrate, o.volume, o.normalize};
          transcoders_[int(i)] = std::make_unique<AudioTranscoder>(*st, as, *output_);
          sp.action = "encode " + o.audio_codec;
        }
      } else if (p.codec_type == AVMEDIA_TYPE_SUBTITLE) {
        if (o.no_subtitles) {
          drop("subtitles disabled", false);
        } else if (fits == 0 && SubtitleConverter::convertible(*st) &&
                   SubtitleConverter::target_codec(*of) != AV_CODEC_ID_NONE) {
          const AVCodecID target = SubtitleConverter::target_codec(*of);
          subtitles_[int(i)] = std::make_unique<SubtitleConverter>(*st, target, *output_);
          sp.action = std::string("convert to ") + avcodec_get_name(target);
          sp.note = fmt::format(".{} cannot hold {} subtitles", ext, sp.codec);
        } else if (fits == 0) {
          drop(fmt::format(
                   ".{} cannot hold {} subtitles (they are pictures, not text); write .mkv to keep them", ext,
                   sp.codec),
               true);
        } else {
          sp.action = "copy";
          copy_index_[i] = output_->add_copy(st);
        }
      } else if (p.codec_type == AVMEDIA_TYPE_ATTACHMENT) {
        if (std::string(of->name) == "matroska") {
          sp.action = "copy";
          copy_index_[i] = output_->add_copy(st);
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

  int64_t zero_us(int64_t range_start_us) const override { return range_start_us; }

  void send_packet(AVPacket* p, int64_t zero) override {
    const int i = p->stream_index;
    const auto t = transcoders_.find(i);
    const auto sc = subtitles_.find(i);
    if (copy_index_[size_t(i)] < 0 && t == transcoders_.end() && sc == subtitles_.end()) return;
    ++packets_sent_[size_t(i)];
    const AVRational tb = time_bases_[size_t(i)];
    const int64_t offset = av_rescale_q(zero, AV_TIME_BASE_Q, tb);
    if (p->pts != AV_NOPTS_VALUE) p->pts -= offset;
    if (p->dts != AV_NOPTS_VALUE) p->dts -= offset;
    if (t != transcoders_.end())
      t->second->send(p);
    else if (sc != subtitles_.end())
      sc->second->send(p);
    else
      output_->write(p, tb, copy_index_[size_t(i)]);
  }

  void finish_packets() override {
    for (auto& [index, t] : transcoders_) t->flush();
  }

  std::vector<int> kept_streams_without_packets() const override {
    std::vector<int> silent;
    for (size_t i = 0; i < copy_index_.size(); ++i) {
      const bool sound = media_types_[i] == AVMEDIA_TYPE_AUDIO;
      const bool kept = copy_index_[i] >= 0 || transcoders_.count(int(i));
      if (sound && kept && packets_sent_[i] == 0) silent.push_back(int(i));
    }
    return silent;
  }

 private:
  const AVStream* encoded_video_;
  std::vector<int> copy_index_;  // input stream -> output stream for copies; -1 otherwise
  std::vector<AVRational> time_bases_;
  std::vector<AVMediaType> media_types_;
  std::vector<int64_t> packets_sent_;  // by input stream
  std::map<int, std::unique_ptr<AudioTranscoder>> transcoders_;
  std::map<int, std::unique_ptr<SubtitleConverter>> subtitles_;
};

// The video alone on the source's timeline; the join copies everything else from the source.
class SegmentSink final : public VideoSink {
 public:
  explicit SegmentSink(const VideoOptions& options) : VideoSink(options) {}

  void open(VideoInput& input, const VideoEncoderSettings& video, VideoPlan& plan) override {
    output_->add_video(video, input.video_stream());
    AVFormatContext* ic = input.format();
    for (unsigned i = 0; i < ic->nb_streams; ++i) {
      AVStream* st = ic->streams[i];
      if (int(i) == input.video_index()) {
        plan.streams.push_back(video_stream_plan(*st, plan, video, *output_->encoder()));
        continue;
      }
      StreamPlan sp = stream_plan(*st);
      sp.note = "a segment holds the video alone; the join copies this stream from the source";
      st->discard = AVDISCARD_ALL;
      plan.streams.push_back(sp);
    }
  }
  int64_t zero_us(int64_t) const override { return 0; }
  void send_packet(AVPacket*, int64_t) override {}
};

}  // namespace

VideoSink::VideoSink(const VideoOptions& options)
    : options_(options), output_(std::make_unique<VideoOutput>(options.output, options.overwrite)) {}

std::vector<StreamPlan> list_streams(const std::string& input) {
  VideoInput in(input, "", 1);
  std::vector<StreamPlan> streams;
  for (unsigned i = 0; i < in.format()->nb_streams; ++i) {
    StreamPlan sp = stream_plan(*in.format()->streams[i]);
    sp.action.clear();
    streams.push_back(sp);
  }
  return streams;
}

std::unique_ptr<VideoSink> make_video_sink(const VideoOptions& options) {
  switch (options.sink) {
    case VideoSinkKind::file: return std::make_unique<FileSink>(options);
    case VideoSinkKind::video_segment: return std::make_unique<SegmentSink>(options);
  }
  UPRES_ASSERT(false);
  return nullptr;
}

std::unique_ptr<VideoSink> make_join_sink(const VideoOptions& options, const AVStream* encoded_video) {
  return std::make_unique<FileSink>(options, encoded_video);
}

const char* video_sink_name(VideoSinkKind kind) {
  return kind == VideoSinkKind::file ? "file" : "video_segment";
}

}  // namespace upres
