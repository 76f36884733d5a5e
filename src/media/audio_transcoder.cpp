#include "media/audio_transcoder.hpp"

#include <fmt/format.h>

extern "C" {
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
}

namespace upres {

const AVCodec& find_audio_encoder(const std::string& name) {
  const AVCodec* codec = avcodec_find_encoder_by_name(name.c_str());
  if (!codec || codec->type != AVMEDIA_TYPE_AUDIO) {
    std::string available;
    for (const char* n : {"aac", "libopus", "libvorbis", "libmp3lame", "flac", "ac3"})
      if (avcodec_find_encoder_by_name(n)) available += std::string(available.empty() ? "" : ", ") + n;
    throw Error(ErrorCode::not_found,
                fmt::format("audio encoder '{}' is not available; use copy or one of: {}", name, available));
  }
  return *codec;
}

AudioTranscoder::AudioTranscoder(const AVStream& source, const AudioSettings& settings, VideoOutput& output)
    : output_(output), frame_(make_frame()), filtered_(make_frame()), packet_(make_packet()) {
  decoder_ = open_stream_decoder(source, "audio");

  const AVCodec& enc = find_audio_encoder(settings.codec);
  if (avformat_query_codec(output.format()->oformat, enc.id, FF_COMPLIANCE_NORMAL) != 1)
    throw Error(ErrorCode::invalid_argument, fmt::format("{} cannot hold {} audio; for webm use libopus or "
                                                         "libvorbis, for mp4 and mov use aac",
                                                         output.format()->oformat->name, settings.codec));
  encoder_.reset(avcodec_alloc_context3(&enc));
  AVCodecContext* e = encoder_.get();
  // Keep the source's rate and layout when the encoder takes them.
  int rate = decoder_->sample_rate > 0 ? decoder_->sample_rate : 48000;
  if (enc.supported_samplerates) {
    int best = enc.supported_samplerates[0];
    for (const int* r = enc.supported_samplerates; *r; ++r)
      if (*r == rate) best = rate;
    rate = best;
  }
  e->sample_rate = rate;
  e->sample_fmt = enc.sample_fmts ? enc.sample_fmts[0] : AV_SAMPLE_FMT_FLTP;
  if (decoder_->ch_layout.nb_channels > 0)
    av_channel_layout_copy(&e->ch_layout, &decoder_->ch_layout);
  else
    av_channel_layout_default(&e->ch_layout, 2);
  if (e->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
    av_channel_layout_default(&e->ch_layout, e->ch_layout.nb_channels);
  // An encoder with a list of layouts (libopus: mono to 7.1 in Vorbis order) gets the listed one
  // with the same channels (5.1(side) is coded as 5.1), so that nothing is mixed down; only a
  // layout with more channels than any listed one is.
  if (enc.ch_layouts && !av_channel_layout_check(&e->ch_layout)) av_channel_layout_default(&e->ch_layout, 2);
  if (enc.ch_layouts) {
    bool listed = false;
    const AVChannelLayout* same = nullptr;
    const AVChannelLayout* widest = &enc.ch_layouts[0];
    for (const AVChannelLayout* l = enc.ch_layouts; l->nb_channels; ++l) {
      listed = listed || av_channel_layout_compare(l, &e->ch_layout) == 0;
      if (!same && l->nb_channels == e->ch_layout.nb_channels) same = l;
      if (l->nb_channels > widest->nb_channels) widest = l;
    }
    if (!listed) {
      const AVChannelLayout chosen = *(same ? same : widest);
      av_channel_layout_uninit(&e->ch_layout);
      av_channel_layout_copy(&e->ch_layout, &chosen);
    }
  }
  e->time_base = {1, rate};
  if (settings.bitrate > 0) e->bit_rate = settings.bitrate;
  if (output.format()->oformat->flags & AVFMT_GLOBALHEADER) e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  check_av(avcodec_open2(e, &enc, nullptr), ErrorCode::invalid_argument,
           fmt::format("cannot open the {} audio encoder ({} Hz, {} channels)", settings.codec, rate,
                       e->ch_layout.nb_channels));
  out_index_ = output.add_encoded_stream(e, &source)->index;

  // Filters: volume and loudness, then whatever the encoder takes, in frames of its size.
  graph_.reset(avfilter_graph_alloc());
  char layout[128] = {};
  if (decoder_->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || decoder_->ch_layout.nb_channels == 0) {
    AVChannelLayout d{};
    av_channel_layout_default(&d, std::max(1, decoder_->ch_layout.nb_channels));
    av_channel_layout_describe(&d, layout, sizeof layout);
  } else {
    av_channel_layout_describe(&decoder_->ch_layout, layout, sizeof layout);
  }
  const std::string args = fmt::format("time_base={}/{}:sample_rate={}:sample_fmt={}:channel_layout={}",
                                       source.time_base.num, source.time_base.den, decoder_->sample_rate,
                                       av_get_sample_fmt_name(decoder_->sample_fmt), layout);
  check_av(avfilter_graph_create_filter(&source_, avfilter_get_by_name("abuffer"), "in", args.c_str(),
                                        nullptr, graph_.get()),
           ErrorCode::invalid_media, "cannot create the audio filter source");
  check_av(avfilter_graph_create_filter(&sink_, avfilter_get_by_name("abuffersink"), "out", nullptr, nullptr,
                                        graph_.get()),
           ErrorCode::invalid_media, "cannot create the audio filter sink");
  char out_layout[128] = {};
  av_channel_layout_describe(&e->ch_layout, out_layout, sizeof out_layout);
  std::string chain;
  // Loudness first, then the volume on top of it: both apply.
  if (settings.normalize) chain += "loudnorm=I=-16:TP=-1.5:LRA=11,";
  if (settings.volume_percent != 100) chain += fmt::format("volume={:.4f},", settings.volume_percent / 100);
  chain += fmt::format("aresample={},aformat=sample_fmts={}:channel_layouts={}", rate,
                       av_get_sample_fmt_name(e->sample_fmt), out_layout);
  const int rc = parse_filter_chain(graph_.get(), source_, sink_, chain);
  check_av(rc, ErrorCode::invalid_argument, "audio filters '" + chain + "' cannot be built");
  check_av(avfilter_graph_config(graph_.get(), nullptr), ErrorCode::invalid_argument,
           "audio filters '" + chain + "' cannot be configured");
  if (!(enc.capabilities & AV_CODEC_CAP_VARIABLE_FRAME_SIZE) && e->frame_size > 0)
    av_buffersink_set_frame_size(sink_, unsigned(e->frame_size));
}

AudioTranscoder::~AudioTranscoder() = default;

void AudioTranscoder::send(const AVPacket* packet) {
  if (avcodec_send_packet(decoder_.get(), packet) < 0) return;  // a damaged packet: skip it
  for (;;) {
    const int rc = avcodec_receive_frame(decoder_.get(), frame_.get());
    if (rc < 0) break;
    frame_->pts = frame_->best_effort_timestamp;
    if (av_buffersrc_add_frame_flags(source_, frame_.get(), 0) < 0) av_frame_unref(frame_.get());
    drain_filter();
  }
}

void AudioTranscoder::flush() {
  send(nullptr);
  if (av_buffersrc_add_frame_flags(source_, nullptr, 0) >= 0) drain_filter();
  avcodec_send_frame(encoder_.get(), nullptr);
  drain_encoder();
}

void AudioTranscoder::drain_filter() {
  for (;;) {
    const int rc = av_buffersink_get_frame(sink_, filtered_.get());
    if (rc < 0) break;
    filtered_->pts = av_rescale_q(filtered_->pts, av_buffersink_get_time_base(sink_), encoder_->time_base);
    const int s = avcodec_send_frame(encoder_.get(), filtered_.get());
    av_frame_unref(filtered_.get());
    if (s < 0 && s != AVERROR_EOF)
      throw Error(ErrorCode::invalid_media, "the audio encoder failed: " + av_error_text(s));
    drain_encoder();
  }
}

void AudioTranscoder::drain_encoder() {
  for (;;) {
    const int rc = avcodec_receive_packet(encoder_.get(), packet_.get());
    if (rc < 0) break;
    output_.write(packet_.get(), encoder_->time_base, out_index_);
  }
}

}  // namespace upres
