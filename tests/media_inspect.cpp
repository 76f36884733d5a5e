#include "media_inspect.hpp"

#include <dirent.h>

#include <algorithm>
#include <cmath>

extern "C" {
#include <libavutil/display.h>
#include <libavutil/mastering_display_metadata.h>
#include <libavutil/pixdesc.h>
}

#include "media/av_common.hpp"
#include "media/color.hpp"
#include "upres/error.hpp"

namespace upres::test {

int MediaInfo::count(const std::string& type) const {
  return int(
      std::count_if(streams.begin(), streams.end(), [&](const StreamInfo& s) { return s.type == type; }));
}

const StreamInfo* MediaInfo::first(const std::string& type) const {
  for (const auto& s : streams)
    if (s.type == type) return &s;
  return nullptr;
}

namespace {

std::map<std::string, std::string> dict(const AVDictionary* d) {
  std::map<std::string, std::string> m;
  for (const AVDictionaryEntry* e = nullptr; (e = av_dict_get(d, "", e, AV_DICT_IGNORE_SUFFIX));)
    m[e->key] = e->value;
  return m;
}

uint64_t fnv1a(const uint8_t* p, int n) {
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

struct Opened {
  InputContextPtr format;
  CodecContextPtr decoder;
  int video = -1;
};

Opened open(const std::string& path) {
  Opened o;
  AVFormatContext* raw = nullptr;
  check_av(avformat_open_input(&raw, path.c_str(), nullptr, nullptr), ErrorCode::invalid_media,
           "open " + path);
  o.format.reset(raw);
  check_av(avformat_find_stream_info(raw, nullptr), ErrorCode::invalid_media, "stream info " + path);
  const AVCodec* codec = nullptr;
  o.video = av_find_best_stream(raw, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
  if (o.video >= 0 && codec) {
    o.decoder.reset(avcodec_alloc_context3(codec));
    avcodec_parameters_to_context(o.decoder.get(), raw->streams[o.video]->codecpar);
    o.decoder->pkt_timebase = raw->streams[o.video]->time_base;
    check_av(avcodec_open2(o.decoder.get(), codec, nullptr), ErrorCode::invalid_media, "decoder");
  }
  return o;
}

}  // namespace

MediaInfo inspect_media(const std::string& path) {
  Opened o = open(path);
  AVFormatContext* fc = o.format.get();
  MediaInfo info;
  info.metadata = dict(fc->metadata);
  info.duration = fc->duration > 0 ? double(fc->duration) / AV_TIME_BASE : 0;
  info.video_index = o.video;
  for (unsigned i = 0; i < fc->nb_streams; ++i) {
    const AVStream* st = fc->streams[i];
    StreamInfo s;
    s.type = av_get_media_type_string(st->codecpar->codec_type)
                 ? av_get_media_type_string(st->codecpar->codec_type)
                 : "data";
    s.codec = avcodec_get_name(st->codecpar->codec_id);
    s.width = st->codecpar->width;
    s.height = st->codecpar->height;
    if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) {
      const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(AVPixelFormat(st->codecpar->format));
      s.pix_fmt = d ? d->name : "";
      s.bits = d ? d->comp[0].depth : 0;
      s.color_space = av_color_space_name(st->codecpar->color_space)
                          ? av_color_space_name(st->codecpar->color_space)
                          : "";
      s.color_range = av_color_range_name(st->codecpar->color_range)
                          ? av_color_range_name(st->codecpar->color_range)
                          : "";
      if (const uint8_t* d = av_stream_get_side_data(st, AV_PKT_DATA_MASTERING_DISPLAY_METADATA, nullptr)) {
        s.stream_mastering = true;
        s.max_luminance = av_q2d(reinterpret_cast<const AVMasteringDisplayMetadata*>(d)->max_luminance);
      }
      if (const uint8_t* d = av_stream_get_side_data(st, AV_PKT_DATA_CONTENT_LIGHT_LEVEL, nullptr)) {
        s.stream_light = true;
        s.max_cll = reinterpret_cast<const AVContentLightMetadata*>(d)->MaxCLL;
      }
      if (const uint8_t* m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, nullptr)) {
        const double ccw = av_display_rotation_get(reinterpret_cast<const int32_t*>(m));
        int cw = int(std::lround(-ccw)) % 360;
        s.rotation = cw < 0 ? cw + 360 : cw;
      }
    }
    if (st->codecpar->codec_type == AVMEDIA_TYPE_AUDIO) {
      s.channels = st->codecpar->ch_layout.nb_channels;
      char layout[128] = {};
      av_channel_layout_describe(&st->codecpar->ch_layout, layout, sizeof layout);
      s.channel_layout = layout;
    }
    s.metadata = dict(st->metadata);
    info.streams.push_back(s);
  }
  PacketPtr pkt = make_packet();
  FramePtr frame = make_frame();
  auto receive = [&] {
    while (avcodec_receive_frame(o.decoder.get(), frame.get()) == 0) {
      const AVStream* st = fc->streams[o.video];
      StreamInfo& v = info.streams[size_t(o.video)];
      if (v.pts.empty()) {
        if (const AVFrameSideData* sd =
                av_frame_get_side_data(frame.get(), AV_FRAME_DATA_MASTERING_DISPLAY_METADATA)) {
          v.frame_mastering = true;
          v.max_luminance =
              av_q2d(reinterpret_cast<const AVMasteringDisplayMetadata*>(sd->data)->max_luminance);
        }
        if (const AVFrameSideData* sd =
                av_frame_get_side_data(frame.get(), AV_FRAME_DATA_CONTENT_LIGHT_LEVEL)) {
          v.frame_light = true;
          v.max_cll = reinterpret_cast<const AVContentLightMetadata*>(sd->data)->MaxCLL;
        }
      }
      info.streams[size_t(o.video)].pts.push_back(double(frame->best_effort_timestamp) *
                                                  av_q2d(st->time_base));
      av_frame_unref(frame.get());
    }
  };
  while (av_read_frame(fc, pkt.get()) >= 0) {
    StreamInfo& s = info.streams[size_t(pkt->stream_index)];
    const AVStream* st = fc->streams[pkt->stream_index];
    ++s.packets;
    s.packet_hashes.push_back(fnv1a(pkt->data, pkt->size));
    if (pkt->pts != AV_NOPTS_VALUE) {
      const double end = double(pkt->pts + std::max<int64_t>(pkt->duration, 0)) * av_q2d(st->time_base);
      s.duration = std::max(s.duration, end);
      if (pkt->stream_index != o.video) s.pts.push_back(double(pkt->pts) * av_q2d(st->time_base));
    }
    if (pkt->stream_index == o.video && o.decoder) {
      avcodec_send_packet(o.decoder.get(), pkt.get());
      receive();
    }
    av_packet_unref(pkt.get());
  }
  if (o.decoder) {
    avcodec_send_packet(o.decoder.get(), nullptr);
    receive();
  }
  return info;
}

double audio_rms(const std::string& path) {
  Opened o = open(path);
  AVFormatContext* fc = o.format.get();
  const int index = av_find_best_stream(fc, AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
  if (index < 0) throw Error(ErrorCode::invalid_media, path + ": no audio");
  const AVStream* st = fc->streams[index];
  const AVCodec* codec = avcodec_find_decoder(st->codecpar->codec_id);
  CodecContextPtr dec(avcodec_alloc_context3(codec));
  avcodec_parameters_to_context(dec.get(), st->codecpar);
  check_av(avcodec_open2(dec.get(), codec, nullptr), ErrorCode::invalid_media, "audio decoder");
  double sum = 0;
  int64_t count = 0;
  PacketPtr pkt = make_packet();
  FramePtr frame = make_frame();
  auto receive = [&] {
    while (avcodec_receive_frame(dec.get(), frame.get()) == 0) {
      const int channels = frame->ch_layout.nb_channels;
      const auto fmt = AVSampleFormat(frame->format);
      const bool planar = av_sample_fmt_is_planar(fmt);
      for (int c = 0; c < channels; ++c)
        for (int n = 0; n < frame->nb_samples; ++n) {
          const int plane = planar ? c : 0, at = planar ? n : n * channels + c;
          double v = 0;
          if (av_get_packed_sample_fmt(fmt) == AV_SAMPLE_FMT_FLT)
            v = reinterpret_cast<const float*>(frame->extended_data[plane])[at];
          else if (av_get_packed_sample_fmt(fmt) == AV_SAMPLE_FMT_S16)
            v = reinterpret_cast<const int16_t*>(frame->extended_data[plane])[at] / 32768.0;
          else
            throw Error(ErrorCode::unsupported, "audio_rms: sample format");
          sum += v * v;
          ++count;
        }
      av_frame_unref(frame.get());
    }
  };
  while (av_read_frame(fc, pkt.get()) >= 0) {
    if (pkt->stream_index == index) {
      avcodec_send_packet(dec.get(), pkt.get());
      receive();
    }
    av_packet_unref(pkt.get());
  }
  avcodec_send_packet(dec.get(), nullptr);
  receive();
  return count ? std::sqrt(sum / double(count)) : 0;
}

Image decode_frame(const std::string& path, int index, std::vector<uint16_t>* luma) {
  Opened o = open(path);
  PacketPtr pkt = make_packet();
  FramePtr frame = make_frame();
  int seen = 0;
  bool flushing = false;
  for (;;) {
    const int rc = avcodec_receive_frame(o.decoder.get(), frame.get());
    if (rc == 0) {
      if (seen++ == index) break;
      av_frame_unref(frame.get());
      continue;
    }
    if (rc == AVERROR_EOF) throw Error(ErrorCode::invalid_media, "frame index past the end");
    if (flushing) continue;
    if (av_read_frame(o.format.get(), pkt.get()) < 0) {
      avcodec_send_packet(o.decoder.get(), nullptr);
      flushing = true;
      continue;
    }
    if (pkt->stream_index == o.video) avcodec_send_packet(o.decoder.get(), pkt.get());
    av_packet_unref(pkt.get());
  }
  Image image;
  frame_to_image(*frame, resolve_color(*frame), image);
  if (luma) {
    const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(AVPixelFormat(frame->format));
    luma->clear();
    for (int y = 0; y < frame->height; ++y)
      for (int x = 0; x < frame->width; ++x) {
        const uint8_t* row = frame->data[0] + ptrdiff_t(y) * frame->linesize[0];
        luma->push_back(d->comp[0].depth > 8 ? reinterpret_cast<const uint16_t*>(row)[x] : row[x]);
      }
  }
  return image;
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") names.push_back(e->d_name);
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace upres::test
