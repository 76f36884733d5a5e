#include "media/subtitle_converter.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include <fmt/format.h>

namespace upres {

AVCodecID SubtitleConverter::target_codec(const AVOutputFormat& format) {
  const std::string name = format.name;
  if (name == "mp4" || name == "mov") return AV_CODEC_ID_MOV_TEXT;
  if (name == "webm") return AV_CODEC_ID_WEBVTT;
  if (name == "matroska") return AV_CODEC_ID_SUBRIP;
  return AV_CODEC_ID_NONE;
}

bool SubtitleConverter::convertible(const AVStream& source) {
  const AVCodecDescriptor* d = avcodec_descriptor_get(source.codecpar->codec_id);
  return d && (d->props & AV_CODEC_PROP_TEXT_SUB) && avcodec_find_decoder(source.codecpar->codec_id);
}

SubtitleConverter::SubtitleConverter(const AVStream& source, AVCodecID target, VideoOutput& output)
    : output_(output), source_time_base_(source.time_base), packet_(make_packet()) {
  const AVCodec* enc = avcodec_find_encoder(target);
  if (!enc)
    throw Error(ErrorCode::unsupported, fmt::format("no {} subtitle encoder", avcodec_get_name(target)));
  decoder_ = open_stream_decoder(source, "subtitle");
  encoder_.reset(avcodec_alloc_context3(enc));
  encoder_->time_base = {1, 1000};
  // Text decoders describe styles as an ASS header; the encoders read it back.
  if (decoder_->subtitle_header && decoder_->subtitle_header_size > 0) {
    encoder_->subtitle_header = static_cast<uint8_t*>(av_mallocz(size_t(decoder_->subtitle_header_size) + 1));
    std::memcpy(encoder_->subtitle_header, decoder_->subtitle_header, size_t(decoder_->subtitle_header_size));
    encoder_->subtitle_header_size = decoder_->subtitle_header_size;
  }
  check_av(avcodec_open2(encoder_.get(), enc, nullptr), ErrorCode::unsupported,
           fmt::format("cannot open the {} subtitle encoder", enc->name));
  AVStream* st = output.add_encoded_stream(encoder_.get(), &source);
  out_index_ = st->index;
}

void SubtitleConverter::send(const AVPacket* packet) {
  AVSubtitle sub{};
  int got = 0;
  if (avcodec_decode_subtitle2(decoder_.get(), &sub, &got, const_cast<AVPacket*>(packet)) < 0 || !got) return;
  uint8_t buffer[64 * 1024];
  const int64_t start_ms =
      av_rescale_q(packet->pts != AV_NOPTS_VALUE ? packet->pts : packet->dts, source_time_base_, {1, 1000}) +
      sub.start_display_time;
  int64_t duration_ms = int64_t(sub.end_display_time) - sub.start_display_time;
  if (duration_ms <= 0 || sub.end_display_time == UINT32_MAX)
    duration_ms = packet->duration > 0 ? av_rescale_q(packet->duration, source_time_base_, {1, 1000}) : 2000;
  // A cue cut at the end of the range arrives with its packet's duration shortened.
  if (packet->duration > 0)
    duration_ms = std::min(duration_ms, av_rescale_q(packet->duration, source_time_base_, {1, 1000}));
  sub.end_display_time -= sub.start_display_time;
  sub.start_display_time = 0;
  const int size = avcodec_encode_subtitle(encoder_.get(), buffer, sizeof buffer, &sub);
  avsubtitle_free(&sub);
  if (size <= 0) return;
  check_av(av_new_packet(packet_.get(), size), ErrorCode::limit_exceeded, "subtitle packet");
  std::memcpy(packet_->data, buffer, size_t(size));
  packet_->pts = packet_->dts = start_ms;
  packet_->duration = duration_ms;
  output_.write(packet_.get(), {1, 1000}, out_index_);
}

}  // namespace upres
